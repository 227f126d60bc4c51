// Getting at an image's files: `hoist unpack` (into a snapshotter), `hoist image unpack --to DIR`
// (a plain directory, like umoci), `hoist image mount` / `image unmount` (a read-only view).
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import type { Context } from '../../core/context.ts';
import { sha256 } from '../../core/digest.ts';
import { HoistError, isNotFound } from '../../core/errors.ts';
import { Labels } from '../../core/labels.ts';
import { hostPlatform } from '../../core/platform.ts';
import { extractImage } from '../../images/extract.ts';
import { resolveImage } from '../../images/resolve.ts';
import { snapshotterFor, unpackImage } from '../../images/unpack.ts';
import { onePlatform } from '../../images/walk.ts';
import { holdLease } from '../../leases/keeper.ts';
import { mountAll, unmount } from '../../snapshots/mount.ts';
import { fetchMissing } from '../fetch-missing.ts';
import { humanSize } from '../output/units.ts';
import { type PlatformFlags, platformOptions, platformSelector } from '../platform-flags.ts';
import { type RegistryFlags, registryOptions } from '../registry-flags.ts';
import { type Session, session } from '../session.ts';
import { type UnpackFlags, unpackChoice, unpackOptions } from '../unpack-flags.ts';

interface UnpackCommandFlags extends PlatformFlags, UnpackFlags, RegistryFlags {
  to?: string;
  fetch?: boolean;
  quiet?: boolean;
}

async function targetOf(s: Session, name: string) {
  const b = await s.backend();
  const r = await resolveImage(b.images, s.ctx, name);
  return { backend: b, target: r.group.names[0]!.record.target, name: r.name ?? r.group.names[0]!.name };
}

const warn = (msg: string) => process.stderr.write(`warning: ${msg}\n`);

async function unpackAction(name: string, flags: UnpackCommandFlags, command: Command): Promise<void> {
  const s = session(command);
  const { backend, target, name: display } = await targetOf(s, name);
  if (flags.to) {
    const dir = resolvePath(flags.to);
    // The lease keeps fetched layers from a concurrent GC until they are extracted.
    const lease = await holdLease(backend.leases, s.ctx, {
      purpose: 'extract',
      ref: target.digest,
      expiryMs: 3600_000,
    });
    const lctx: Context = { ...s.ctx, lease: lease.id };
    const r = await (async () => {
      try {
        await fetchMissing(s, backend, target, flags)(lctx);
        return await extractImage(backend, lctx, target, dir, {
          platforms: platformSelector(flags),
          onWarning: warn,
        });
      } finally {
        await lease.release();
      }
    })();
    if (!flags.quiet)
      process.stderr.write(`unpacked ${display} into ${dir}: ${r.layers} layers, ${humanSize(r.bytes)}\n`);
    return;
  }
  const { snapshotter, discardLayers } = unpackChoice(flags, s.config);
  const results = await unpackImage(backend, s.ctx, target, {
    snapshotter,
    platforms: platformSelector(flags),
    discardLayers,
    onWarning: warn,
    fetchMissing: fetchMissing(s, backend, target, flags),
  });
  if (discardLayers) await backend.collectGarbage();
  for (const r of results) {
    process.stdout.write(
      `unpacked ${display} (${r.manifest}) into ${snapshotter}: ${r.chainId} (${r.applied} applied, ${r.existed} already unpacked)\n`,
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

/** The view snapshot key for a mount point: stable, so unmount finds it from the directory alone. */
const mountKey = (dir: string) => `hoist-mount-${sha256(dir).slice(7, 39)}`;

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
    if (process.getuid?.() !== 0) {
      throw new HoistError('HOIST_DENIED', 'image mount needs root (mount(2) is privileged)', {
        hint: 'run as root, or use `hoist image unpack NAME --to DIR` for a plain copy',
      });
    }
    const s = session(command);
    const dir = resolvePath(dirArg);
    const { backend, target } = await targetOf(s, name);
    const sn = snapshotterFor(backend, flags.snapshotter ?? s.config.snapshotter);
    const platforms = flags.platform ? platformSelector(flags) : onePlatform(hostPlatform());
    const [r] = await unpackImage(backend, s.ctx, target, {
      snapshotter: sn.name,
      platforms,
      onWarning: warn,
      fetchMissing: fetchMissing(s, backend, target, flags),
    });
    const key = mountKey(dir);
    // gc.root keeps the view (and so its parents) while mounted; unmount removes it.
    const mounts = await sn.view(s.ctx, key, r!.chainId, {
      labels: { [Labels.gcRoot]: 'mounted', 'hoist.io/mountpoint': dir, 'hoist.io/snapshotter': sn.name },
    });
    try {
      await mountAll(mounts, dir);
    } catch (err) {
      await sn.remove(s.ctx, key).catch(() => undefined);
      throw err;
    }
    process.stdout.write(`${dir}\n`);
  });

  image
    .command('unmount')
    .alias('umount')
    .description('Unmount an image mounted with `image mount` and drop its view')
    .argument('<dir>', 'mount point')
    .option('--snapshotter <name>', 'snapshotter used for the mount (default: config `snapshotter`)')
    .action(async (dirArg: string, flags: UnpackCommandFlags, command: Command) => {
      const s = session(command);
      const dir = resolvePath(dirArg);
      const backend = await s.backend();
      await unmount(dir);
      const key = mountKey(dir);
      for (const sn of backend.snapshotters?.values() ?? []) {
        if (flags.snapshotter && sn.name !== flags.snapshotter) continue;
        try {
          await sn.remove(s.ctx, key);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    });
}
