// `hoist image prune`: remove dangling images (no tag), or with `all` every image that is not pinned.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import { HoistError } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { groupByTarget, isDangling } from './names.ts';

export interface PrunedImage {
  target: string;
  names: string[];
}

export async function pruneImages(
  backend: Backend,
  ctx: Context,
  opts: { all?: boolean },
): Promise<PrunedImage[]> {
  const groups = groupByTarget(await backend.images.list(ctx));
  const out: PrunedImage[] = [];
  for (const g of groups) {
    if (g.names.some((n) => n.record.labels[Labels.criPinned] === 'pinned')) continue;
    if (!opts.all && !isDangling(g)) continue;
    const removed: string[] = [];
    for (const n of g.names) {
      try {
        await backend.images.delete(ctx, n.name, { target: g.target });
        removed.push(n.name);
      } catch (err) {
        if (!(err instanceof HoistError && err.code === 'HOIST_NOT_FOUND')) throw err;
      }
    }
    if (removed.length) out.push({ target: g.target, names: removed });
  }
  return out;
}
