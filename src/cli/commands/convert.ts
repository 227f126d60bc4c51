// `hoist image convert SRC DST` (nerdctl's flags): re-encode layers and/or switch to OCI media types,
// fetching what the image lacks from where it came from, or rebuilding it from unpacked snapshots.
import type { Command } from 'commander';
import type { Backend } from '../../api/backend.ts';
import { hasDirectories } from '../../api/snapshots.ts';
import { convertImage } from '../../convert/convert.ts';
import type { Context } from '../../core/context.ts';
import type { Digest } from '../../core/digest.ts';
import { HoistError, invalidArgument, isNotFound } from '../../core/errors.ts';
import type { Compression } from '../../core/mediatypes.ts';
import { formatReference, parseDockerRef } from '../../core/reference.ts';
import { snapshotLayer } from '../../diff/differ.ts';
import { resolveImage } from '../../images/resolve.ts';
import { fetchMissing } from '../fetch-missing.ts';
import { type PlatformFlags, platformOptions, platformSelector } from '../platform-flags.ts';
import { type RegistryFlags, registryOptions } from '../registry-flags.ts';
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

function compressionOf(flags: ConvertFlags): Compression | undefined {
  const chosen = [flags.zstd && 'zstd', flags.gzip && 'gzip', flags.uncompress && 'none'].filter(Boolean);
  if (chosen.length > 1) throw invalidArgument('choose one of --zstd, --gzip, --uncompress');
  return (chosen[0] || undefined) as Compression | undefined;
}

/** A layer's tar rebuilt from the committed snapshot of its chain, in the first snapshotter that has it. */
function rebuildFrom(backend: Backend) {
  return async (ctx: Context, chain: Digest, parent: Digest | undefined) => {
    for (const sn of backend.snapshotters.values()) {
      try {
        const info = await sn.stat(ctx, chain);
        if (info.kind !== 'committed') continue;
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      if (!hasDirectories(sn))
        throw new HoistError(
          'HOIST_NOT_IMPLEMENTED',
          "--rebuild-from-snapshots works on the embedded store: a daemon's snapshot directories are not this process's",
          { hint: 'run the convert without --address, on the store itself' },
        );
      return () => snapshotLayer(sn, ctx, chain, parent);
    }
    return undefined;
  };
}

async function convertAction(src: string, dst: string, flags: ConvertFlags, command: Command): Promise<void> {
  const s = session(command);
  const backend = await s.backend();
  const compression = compressionOf(flags);
  if (!compression && !flags.oci)
    throw invalidArgument('nothing to convert', 'give --zstd, --gzip, --uncompress and/or --oci');
  let zstdLevel: number | undefined;
  if (flags.zstdCompressionLevel !== undefined) {
    zstdLevel = Number(flags.zstdCompressionLevel);
    if (!Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 22)
      throw invalidArgument(`invalid --zstd-compression-level ${flags.zstdCompressionLevel}: use 1 to 22`);
  }
  const resolved = await resolveImage(backend.images, s.ctx, src);
  const source = resolved.group.names[0]!.record.target;
  const dstName = formatReference(parseDockerRef(dst));
  const result = await convertImage(backend, s.ctx, source, dstName, {
    platforms: platformSelector(flags),
    ...(compression ? { compression } : {}),
    ...(zstdLevel !== undefined ? { zstdLevel } : {}),
    oci: flags.oci === true,
    fetchMissing: fetchMissing(s, backend, source, flags),
    ...(flags.rebuildFromSnapshots ? { rebuildLayer: rebuildFrom(backend) } : {}),
  });
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
    `converted ${src} → ${dstName} (${result.target.digest}): ${result.reencoded} layer(s) re-encoded, ${result.kept} kept${result.rebuilt.length > 0 ? `, ${result.rebuilt.length} rebuilt from snapshots` : ''}\n`,
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
