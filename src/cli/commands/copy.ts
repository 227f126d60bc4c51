// `hoist copy SRC DST` (skopeo copy / crane copy) and `hoist manifest inspect REF` (docker manifest
// inspect / crane manifest): images at registries, in archives and in OCI layouts, without unpacking.
import type { Command } from 'commander';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';

interface CopyFlags extends RegistryFlags {
  platform?: string;
  quiet?: boolean;
}

interface ManifestFlags extends RegistryFlags {
  platform?: string;
  raw?: boolean;
}

export function registerCopyCommand(program: Command): void {
  const cmd = program
    .command('copy')
    .alias('cp')
    .description(
      'Copy an image between registries, archives and OCI layouts: docker://REF (or REF), docker-archive:PATH[:REF], oci-archive:PATH[:TAG], oci:DIR[:TAG]',
    )
    .argument('<source>', 'where the image is')
    .argument('<destination>', 'where to put it')
    .option(
      '--platform <os/arch[/variant]>',
      'only this platform of a multi-platform image (default: every one)',
    )
    .option('-q, --quiet', 'print only the digest copied');
  registryOptions(cmd);
  cmd.action(async (source: string, destination: string, flags: CopyFlags, command: Command) => {
    const s = session(command);
    const hoist = await s.hoist();
    const started = Date.now();
    const r = await hoist.copy(source, destination, {
      ...registryChoice(flags),
      ...(flags.platform ? { platform: flags.platform } : {}),
      ...(s.signal ? { signal: s.signal } : {}),
    });
    if (flags.quiet) {
      process.stdout.write(`${r.target.digest}\n`);
      return;
    }
    const b = r.blobs;
    const blobs = b ? `: ${b.copied} copied, ${b.mounted} mounted, ${b.exists} already present` : '';
    process.stderr.write(
      `copied ${source} to ${destination} (${r.target.digest})${blobs}, ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
    );
  });
}

export function registerManifestCommands(program: Command): void {
  const manifest = program.command('manifest').description('Manifests and indexes at a registry');
  const cmd = manifest
    .command('inspect')
    .description('Print the manifest or index a reference names at its registry, as JSON')
    .argument('<reference>', 'registry reference (name:tag or name@digest)')
    .option('--platform <os/arch[/variant]>', "from an index, that platform's manifest")
    .option('--raw', 'the bytes exactly as the registry serves them (their digest is the reference digest)');
  registryOptions(cmd);
  cmd.action(async (reference: string, flags: ManifestFlags, command: Command) => {
    const s = session(command);
    const hoist = await s.hoist();
    const { bytes } = await hoist.manifest(reference, {
      ...registryChoice(flags),
      ...(flags.platform ? { platform: flags.platform } : {}),
      ...(s.signal ? { signal: s.signal } : {}),
    });
    // docker manifest inspect indents by three spaces.
    process.stdout.write(
      flags.raw ? bytes : `${JSON.stringify(JSON.parse(bytes.toString('utf8')), null, 3)}\n`,
    );
  });
}
