// `mount` and `unmount`: an image's tree read-only at a directory, through a view snapshot whose key
// derives from the mount point (so unmount finds it from the directory alone) and which is a GC root
// while mounted (so its parents stay).
import type { Backend } from '../api/backend.ts';
import type { Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { sha256 } from '../core/digest.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { unpackImage } from '../images/unpack.ts';
import type { PlatformSelector } from '../images/walk.ts';
import { mountAll, unmount } from '../snapshots/mount.ts';

const mountKey = (dir: string) => `hoist-mount-${sha256(dir).slice(7, 39)}`;

/** Checked before anything is resolved or unpacked. */
export function assertCanMount(): void {
  if (process.getuid?.() !== 0)
    throw new HoistError('HOIST_DENIED', 'image mount needs root (mount(2) is privileged)', {
      hint: 'run as root, or use `hoist image unpack NAME --to DIR` for a plain copy',
    });
}

export async function mountImage(
  backend: Backend,
  ctx: Context,
  sn: Snapshotter,
  target: Descriptor,
  dir: string,
  platforms: PlatformSelector,
  opts: { onWarning?: (message: string) => void; fetchMissing: (ctx: Context) => Promise<void> },
): Promise<void> {
  const [r] = await unpackImage(backend, ctx, target, { snapshotter: sn.name, platforms, ...opts });
  const key = mountKey(dir);
  const mounts = await sn.view(ctx, key, r!.chainId, {
    labels: { [Labels.gcRoot]: 'mounted', 'hoist.io/mountpoint': dir, 'hoist.io/snapshotter': sn.name },
  });
  try {
    await mountAll(mounts, dir);
  } catch (err) {
    await sn.remove(ctx, key).catch(() => undefined);
    throw err;
  }
}

export async function unmountImage(
  backend: Backend,
  ctx: Context,
  dir: string,
  snapshotter: string | undefined,
): Promise<void> {
  await unmount(dir);
  const key = mountKey(dir);
  for (const sn of backend.snapshotters.values()) {
    if (snapshotter && sn.name !== snapshotter) continue;
    try {
      await sn.remove(ctx, key);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
