// `hoist snapshot prepare KEY --from IMAGE` (a writable snapshot on top of an image) and
// `hoist commit KEY NAME` (a new image from what changed in it).
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { HoistError } from '../../core/errors.ts';
import { mountAll } from '../../snapshots/mount.ts';
import { type PlatformFlags, platformChoice } from '../platform-flags.ts';
import { type RegistryFlags, registryChoice } from '../registry-flags.ts';
import { session } from '../session.ts';

interface PrepareFlags extends PlatformFlags, RegistryFlags {
  from?: string;
  mount?: string;
  snapshotter?: string;
  fetch?: boolean;
}

interface CommitFlags {
  message?: string;
  author?: string;
  snapshotter?: string;
}

const warn = (msg: string) => process.stderr.write(`warning: ${msg}\n`);

export function registerPrepareCommand(snap: Command): void {
  snap
    .command('prepare')
    .description('Create a writable snapshot on top of an image (--from) or a committed snapshot')
    .argument('<key>', 'name of the new active snapshot')
    .argument('[parent]', 'committed parent snapshot (instead of --from)')
    .option('--from <image>', 'start from this image (unpacked first if needed)')
    .option('--mount <dir>', 'mount the snapshot read-write at this directory (root only)')
    .option('--platform <os/arch[/variant]>', 'platform of the image (default: this host)')
    .option('--plain-http', 'talk HTTP to the registry when layers must be fetched')
    .option('--no-fetch', 'fail on missing layers instead of fetching them')
    .action(async (key: string, parent: string | undefined, flags: PrepareFlags, command: Command) => {
      const s = session(command);
      const all = { ...command.parent?.opts(), ...flags } as PrepareFlags;
      if (all.mount && process.getuid?.() !== 0)
        throw new HoistError('HOIST_DENIED', '--mount needs root (mount(2) is privileged)', {
          hint: 'without --mount, the native snapshotter prints a directory you can change directly',
        });
      const hoist = await s.hoist();
      const mounts = await hoist.prepare(key, {
        ...platformChoice(all),
        ...registryChoice(all),
        ...(parent ? { parent } : {}),
        ...(all.from ? { from: all.from } : {}),
        ...(all.snapshotter ? { snapshotter: all.snapshotter } : {}),
        fetch: all.fetch !== false,
        onWarning: warn,
        ...(s.signal ? { signal: s.signal } : {}),
      });
      if (all.mount) {
        await mountAll(mounts, resolvePath(all.mount));
        process.stdout.write(`${resolvePath(all.mount)}\n`);
        return;
      }
      // A bind mount is the snapshot's whole tree (native, or an overlay base): a directory to change.
      // An overlay mount is only usable mounted: say how (the upper directory alone is not the tree).
      const m = mounts[0]!;
      if (m.type === 'bind' || m.type === 'rbind') {
        process.stdout.write(`${m.source}\n`);
        return;
      }
      process.stdout.write(`mount -t ${m.type} ${m.source} -o ${m.options.join(',')} DIR\n`);
    });
}

export function registerCommitCommand(program: Command): void {
  program
    .command('commit')
    .description('Create an image from the changes in a snapshot prepared with `snapshot prepare --from`')
    .argument('<key>', 'the active snapshot')
    .argument('<name>', 'name of the new image')
    .option('-m, --message <text>', 'history comment')
    .option('--author <name>', 'author recorded in the config')
    .option('--snapshotter <name>', 'overlayfs or native (default: config `snapshotter`)')
    .action(async (key: string, name: string, flags: CommitFlags, command: Command) => {
      const s = session(command);
      const hoist = await s.hoist();
      const r = await hoist.commit(key, name, {
        ...(flags.message ? { message: flags.message } : {}),
        ...(flags.author ? { author: flags.author } : {}),
        ...(flags.snapshotter ? { snapshotter: flags.snapshotter } : {}),
        ...(s.signal ? { signal: s.signal } : {}),
      });
      process.stdout.write(`${r.name} ${r.target.digest}\n`);
    });
}
