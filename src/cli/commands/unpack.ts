// Getting at an image's files: `hoist unpack` (into a snapshotter), `hoist image unpack --to DIR`
// (a plain directory, like umoci), `hoist image mount` / `image unmount` (a read-only view).
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { humanSize } from '../output/units.ts';
import { type PlatformFlags, platformChoice, platformOptions } from '../platform-flags.ts';
import { progressFromFlags } from '../progress/progress.ts';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';
import { type UnpackFlags, unpackChoice, unpackOptions } from '../unpack-flags.ts';

interface UnpackCommandFlags extends PlatformFlags, UnpackFlags, RegistryFlags {
  to?: string;
  fetch?: boolean;
  quiet?: boolean;
}

const warn = (msg: string) => process.stderr.write(`warning: ${msg}\n`);

async function unpackAction(name: string, flags: UnpackCommandFlags, command: Command): Promise<void> {
  const s = session(command);
  const progress = progressFromFlags({ quiet: flags.quiet === true });
  const common = {
    ...platformChoice(flags),
    ...registryChoice(flags),
    fetch: flags.fetch !== false,
    onProgress: (key: string, state: Parameters<typeof progress.update>[1]) => progress.update(key, state),
    onWarning: warn,
    ...(s.signal ? { signal: s.signal } : {}),
  };
  const choice = unpackChoice(flags);
  const hoist = await s.hoist();
  if (flags.to) {
    const dir = resolvePath(flags.to);
    const r = await hoist.extract(name, dir, common).finally(() => progress.done());
    if (!flags.quiet)
      process.stderr.write(`unpacked ${r.name} into ${dir}: ${r.layers} layers, ${humanSize(r.bytes)}\n`);
    return;
  }
  const r = await hoist.unpack(name, { ...common, ...choice }).finally(() => progress.done());
  for (const u of r.results) {
    process.stdout.write(
      `unpacked ${r.name} (${u.manifest}) into ${r.snapshotter}: ${u.chainId} (${u.applied} applied, ${u.existed} already unpacked)\n`,
    );
  }
}

function unpackCommand(cmd: Command, withTo: boolean): void {
  cmd.argument('<image>', 'name or ID');
  unpackOptions(cmd, false);
  if (withTo)
    cmd.option('--to <dir>', 'write the root filesystem into this (new or empty) directory instead');
  cmd
    .option('-q, --quiet', 'no summary')
    .option('--no-fetch', 'fail on missing layers instead of fetching them from their registry');
  registryOptions(cmd);
  platformOptions(cmd, false).action(unpackAction);
}

export function registerUnpackCommands(program: Command, image: Command): void {
  unpackCommand(
    program.command('unpack').description('Unpack an image in the store into a snapshotter'),
    false,
  );
  unpackCommand(
    image
      .command('unpack')
      .description(
        'Unpack an image into a snapshotter, or with --to into a plain directory (no root needed)',
      ),
    true,
  );

  const mount = image
    .command('mount')
    .description('Mount an image read-only at a directory (root only)')
    .argument('<image>', 'name or ID')
    .argument('<dir>', 'mount point (must exist)')
    .option('--snapshotter <name>', 'overlayfs or native (default: config `snapshotter`)')
    .option('--platform <os/arch[/variant]>', 'platform (default: this host)')
    .option('--no-fetch', 'fail on missing layers instead of fetching them from their registry');
  registryOptions(mount);
  mount.action(async (name: string, dirArg: string, flags: UnpackCommandFlags, command: Command) => {
    const s = session(command);
    const dir = resolvePath(dirArg);
    const hoist = await s.hoist();
    await hoist.mount(name, dir, {
      ...registryChoice(flags),
      ...(flags.snapshotter ? { snapshotter: flags.snapshotter } : {}),
      ...(flags.platform ? { platform: flags.platform } : {}),
      fetch: flags.fetch !== false,
      onWarning: warn,
      ...(s.signal ? { signal: s.signal } : {}),
    });
    process.stdout.write(`${dir}\n`);
  });

  image
    .command('unmount')
    .alias('umount')
    .description('Unmount an image mounted with `image mount` and drop its view')
    .argument('<dir>', 'mount point')
    .option('--snapshotter <name>', 'snapshotter used for the mount (default: whichever has it)')
    .action(async (dirArg: string, flags: UnpackCommandFlags, command: Command) => {
      const hoist = await session(command).hoist();
      await hoist.unmount(resolvePath(dirArg), flags.snapshotter ? { snapshotter: flags.snapshotter } : {});
    });
}
