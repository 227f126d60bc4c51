// convert's `rebuildFromSnapshots`: a layer that is missing and cannot be fetched is regenerated from the
// committed snapshot of its chain, in the first snapshotter that has one. Its diffID changes (a tar of
// the tree is not byte-for-byte the original), which convert reports.
import type { Readable } from 'node:stream';
import type { Backend } from '../api/backend.ts';
import { hasDirectories } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { snapshotLayer } from '../diff/differ.ts';

export function rebuildFromSnapshots(backend: Backend) {
  return async (
    ctx: Context,
    chain: Digest,
    parent: Digest | undefined,
  ): Promise<(() => Promise<Readable>) | undefined> => {
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
          "rebuilding layers from snapshots works on the embedded store: a daemon's snapshot directories are not this process's",
          { hint: 'run the convert on the store itself, not through a daemon' },
        );
      return () => snapshotLayer(sn, ctx, chain, parent);
    }
    return undefined;
  };
}
