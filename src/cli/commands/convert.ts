// `hoist image convert SRC DST` (nerdctl's flags): re-encode layers and/or switch to OCI media types,
// fetching what the image lacks from where it came from, or rebuilding it from unpacked snapshots.
import type { Command } from 'commander';
import { invalidArgument } from '../../core/errors.ts';
import type { ConvertOptions } from '../../hoist/options.ts';
import { type PlatformFlags, platformChoice, platformOptions } from '../platform-flags.ts';
import { progressFromFlags } from '../progress/progress.ts';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';

interface ConvertFlags extends PlatformFlags, RegistryFlags {
  zstd?: boolean;
  zstdCompressionLevel?: string;
  gzip?: boolean;
  uncompress?: boolean;
  oci?: boolean;
  rebuildFromSnapshots?: boolean;
  fetch?: boolean;
  quiet?: boolean;
}

function compressionOf(flags: ConvertFlags): ConvertOptions['compression'] {
  const chosen = [flags.zstd && 'zstd', flags.gzip && 'gzip', flags.uncompress && 'none'].filter(Boolean);
  if (chosen.length > 1) throw invalidArgument('choose one of --zstd, --gzip, --uncompress');
  return (chosen[0] || undefined) as ConvertOptions['compression'];
}

async function convertAction(src: string, dst: string, flags: ConvertFlags, command: Command): Promise<void> {
  const s = session(command);
  const compression = compressionOf(flags);
  if (!compression && !flags.oci)
    throw invalidArgument('nothing to convert', 'give --zstd, --gzip, --uncompress and/or --oci');
  let zstdLevel: number | undefined;
  if (flags.zstdCompressionLevel !== undefined) {
    zstdLevel = Number(flags.zstdCompressionLevel);
    if (!Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 22)
      throw invalidArgument(`invalid --zstd-compression-level ${flags.zstdCompressionLevel}: use 1 to 22`);
  }
  const progress = progressFromFlags({ quiet: flags.quiet === true });
  const hoist = await s.hoist();
  const result = await hoist
    .convert(src, dst, {
      ...platformChoice(flags),
      ...registryChoice(flags),
      ...(compression ? { compression } : {}),
      ...(zstdLevel !== undefined ? { zstdLevel } : {}),
      oci: flags.oci === true,
      rebuildFromSnapshots: flags.rebuildFromSnapshots === true,
      fetch: flags.fetch !== false,
      onProgress: (key, state) => progress.update(key, state),
      ...(s.signal ? { signal: s.signal } : {}),
    })
    .finally(() => progress.done());
  for (const r of result.rebuilt) {
    process.stderr.write(
      `rebuilt layer ${r.layer} from its snapshot: diffID ${r.oldDiffId} is now ${r.newDiffId}\n`,
    );
  }
  if (flags.quiet) {
    process.stdout.write(`${result.target.digest}\n`);
    return;
  }
  process.stdout.write(
    `converted ${src} → ${result.name} (${result.target.digest}): ${result.reencoded} layer(s) re-encoded, ${result.kept} kept${result.rebuilt.length > 0 ? `, ${result.rebuilt.length} rebuilt from snapshots` : ''}\n`,
  );
}

export function registerConvertCommand(image: Command): void {
  const cmd = image
    .command('convert')
    .description('Convert an image: layer compression (zstd, gzip, none) and/or Docker → OCI media types')
    .argument('<source>', 'image name or ID')
    .argument('<destination>', 'new name (may equal the source: the name moves atomically)')
    .option('--zstd', 'compress layers with zstd (implies OCI media types)')
    .option('--zstd-compression-level <n>', 'zstd level 1-22 (default 3)')
    .option('--gzip', 'compress layers with gzip')
    .option('--uncompress', 'store layers uncompressed')
    .option('--oci', 'use OCI media types (convert Docker schema 2)')
    .option(
      '--rebuild-from-snapshots',
      'regenerate layers that cannot be fetched from their unpacked snapshots (their diffIDs change)',
    )
    .option('--no-fetch', 'fail on missing blobs instead of fetching them from their registry')
    .option('-q, --quiet', 'print only the new digest');
  registryOptions(platformOptions(cmd)).action(convertAction);
}
