// `hoist rmi`: a name removes that name; an ID removes every name of the image (all three CRI names
// at once), unless the image is tagged in several repositories and --force is not given.
import type { Backend } from '../api/backend.ts';
import type { GcStats } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import { HoistError } from '../core/errors.ts';
import { repositoriesOf } from './names.ts';
import { resolveImage } from './resolve.ts';

export interface RemoveOptions {
  force?: boolean;
  /** Skip the garbage collection that normally runs before returning. */
  async?: boolean;
}

export interface RemoveResult {
  /** Names removed, per argument, in order. */
  removed: { arg: string; names: string[]; target: string }[];
  /** Images (targets) that no name refers to any more: gone, as docker's `Deleted:` says. */
  deleted: string[];
  gc?: GcStats;
}

export async function removeImages(
  backend: Backend,
  ctx: Context,
  args: string[],
  opts: RemoveOptions = {},
): Promise<RemoveResult> {
  const result: RemoveResult = { removed: [], deleted: [] };
  // Resolve everything first, so one bad argument removes nothing.
  const plans: { arg: string; names: string[]; target: string }[] = [];
  for (const arg of args) {
    const r = await resolveImage(backend.images, ctx, arg);
    if (r.name !== undefined) {
      plans.push({ arg, names: [r.name], target: r.group.target });
      continue;
    }
    const repos = repositoriesOf(r.group);
    if (repos.length > 1 && !opts.force) {
      throw new HoistError(
        'HOIST_FAILED_PRECONDITION',
        `image ${r.group.target.slice(7, 19)} is referenced in multiple repositories (${repos.join(', ')}); nothing was removed`,
        { hint: 'remove it by name, or pass -f to remove every name' },
      );
    }
    // Delete the ID alias first: an interrupted removal must not strand a `sha256:<id>` record that
    // keeps gigabytes alive with no visible name (containerd#13875).
    const names = [...r.group.names].sort((a, b) => (a.kind === 'id' ? -1 : 0) - (b.kind === 'id' ? -1 : 0));
    plans.push({ arg, names: names.map((n) => n.name), target: r.group.target });
  }
  for (const plan of plans) {
    const done: string[] = [];
    for (const name of plan.names) {
      try {
        await backend.images.delete(ctx, name, { target: plan.target as never });
        done.push(name);
      } catch (err) {
        if (!(err instanceof HoistError && err.code === 'HOIST_NOT_FOUND')) throw err;
      }
    }
    result.removed.push({ arg: plan.arg, names: done, target: plan.target });
  }
  for (const target of new Set(plans.map((p) => p.target)))
    if ((await backend.images.listByTarget(ctx, target as never)).length === 0) result.deleted.push(target);
  if (!opts.async) {
    const stats = await backend.collectGarbage();
    if (stats) result.gc = stats;
  }
  return result;
}
