// One layer of an unpack: an active snapshot, the layer applied into it, committed under its chain ID.
//
// Two ways, as containerd 2 has them (its unpacker's parallel mode, containerd issue 8881):
// - on its parent: prepare on the committed parent, apply with the lower layers in view, commit;
// - ahead of its parent (snapshotters with `rebase`, i.e. overlayfs): prepare with no parent and apply
//   while the layers below are still being applied; once the parent is committed, settle what only the
//   lowers could decide (the metadata of parent directories the layer did not list; a symlink or file
//   where the layer needs a directory, or a hardlink to a lower file, means applying it again on its
//   parent) and commit onto the parent. The result is the same tree either way.
// Until the commit the snapshot is active under the unpack's lease: a crash leaves nothing committed.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../api/backend.ts';
import type { CommitOptions, DirectorySnapshotter, Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isAlreadyExists } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { applyLayer, settleLayer } from '../diff/apply.ts';

export interface LayerStep {
  backend: Backend;
  sn: Snapshotter;
  ctx: Context;
  layer: Descriptor;
  diffId: Digest;
  chain: Digest;
  /** The committed chain below (undefined for the base layer). */
  parent: Digest | undefined;
  onWarning?: ((message: string) => void) | undefined;
}

export type LayerOutcome = 'applied' | 'exists';

/** containerd's key shape (`extract-<time>-<random> <chainID>`), so its tools read our snapshots alike. */
function extractKey(chain: Digest): string {
  return `extract-${Date.now()}-${randomBytes(4).toString('hex')} ${chain}`;
}

/** The committed layer's labels: the size of its uncompressed tar, for the image's unpacked SIZE. */
function tarSizeLabels(bytes: number): Record<string, string> {
  return { [Labels.snapshotTarSize]: String(bytes) };
}

/** Commit the active `key` as `chain`; another unpack that committed the same chain first wins. */
async function commitChain(s: LayerStep, key: string, opts: CommitOptions): Promise<LayerOutcome> {
  try {
    await s.sn.commit(s.ctx, s.chain, key, opts);
    return 'applied';
  } catch (err) {
    if (isAlreadyExists(err)) return 'exists';
    throw err;
  }
}

/** Apply the layer's blob from the content store into `dir` (in a worker thread). */
async function applyBlob(
  s: LayerStep,
  target: { dir: string; whiteouts: 'delete' | 'overlay'; parents: string[]; deferLowers?: boolean },
) {
  const stream = await s.backend.content.reader(s.ctx, s.layer.digest);
  // A blob damaged on disk fails gzip's/zstd's checksums or the diffID, as in containerd's applier,
  // which hashes only the uncompressed stream.
  return applyLayer(stream, {
    root: target.dir,
    mediaType: s.layer.mediaType,
    whiteouts: target.whiteouts,
    parents: target.parents,
    expectedDiffId: s.diffId,
    ...(target.deferLowers ? { deferLowers: true } : {}),
    ...(s.ctx.signal ? { signal: s.ctx.signal } : {}),
    ...(s.onWarning ? { onWarning: s.onWarning } : {}),
  });
}

/** Apply the layer on top of its committed parent and commit it as its chain. */
export async function applyOnParent(s: LayerStep): Promise<LayerOutcome> {
  const key = extractKey(s.chain);
  // Protected by the unpack's lease (ctx.lease) while it runs; collectable after a crash.
  // Only the applier writes into it, and it replaces files: a native child may share its parent's (a
  // local snapshotter's option; over the wire it is not sent).
  const mounts = await s.sn.prepare(s.ctx, key, s.parent, { labels: {}, replacesFiles: true });
  let ok = false;
  try {
    // In process for the embedded store, on the daemon over its Diff service (as containerd's unpacker).
    const applied = await s.backend.diff.apply(
      s.ctx,
      s.layer,
      mounts,
      s.onWarning ? { onWarning: s.onWarning } : {},
    );
    if (applied.digest !== s.diffId)
      throw new HoistError(
        'HOIST_DIGEST_MISMATCH',
        `layer diffID mismatch: expected ${s.diffId}, got ${applied.digest}; the unpacked snapshot is discarded`,
        { hint: 'the layer does not match the image config (a corrupt or tampered image); pull it again' },
      );
    const r = await commitChain(s, key, { labels: tarSizeLabels(applied.size) });
    ok = r === 'applied'; // 'exists': ours is redundant, removed below
    return r;
  } finally {
    if (!ok) await s.sn.remove(s.ctx, key).catch(() => undefined);
  }
}

/** A layer applied ahead of its parent: finish() once the parent is committed, or discard(). */
export interface AheadLayer {
  finish(): Promise<LayerOutcome>;
  discard(): Promise<void>;
}

/**
 * Apply the layer before its parent is committed. Only for a snapshotter with `rebase` (the embedded
 * overlayfs): its directories are this process's, so the applier works on them directly, in the mode
 * (deferLowers) that the diff port has no words for.
 */
export async function applyAhead(s: LayerStep & { sn: DirectorySnapshotter }): Promise<AheadLayer> {
  if (s.parent === undefined)
    throw new HoistError('HOIST_INTERNAL', 'a base layer has no parent to wait for');
  const parent = s.parent;
  const key = extractKey(s.chain);
  await s.sn.prepare(s.ctx, key, undefined, { labels: {} });
  const discard = () => s.sn.remove(s.ctx, key).catch(() => undefined);
  let applied: Awaited<ReturnType<typeof applyBlob>>;
  let dir: string;
  try {
    dir = (await s.sn.applyTarget(s.ctx, key)).dir;
    // The layer will sit on a parent: its whiteouts are overlay whiteouts, whatever it has now.
    applied = await applyBlob(s, { dir, whiteouts: 'overlay', parents: [], deferLowers: true });
  } catch (err) {
    await discard();
    throw err;
  }
  if (applied.needsLowers) {
    // A hardlink to a file of a lower layer: only on its parent can it be applied.
    await discard();
    return { finish: () => applyOnParent(s), discard: async () => undefined };
  }
  const { created } = applied;
  return {
    discard,
    async finish() {
      let ok = false;
      try {
        const lowers = await s.sn.dirs(s.ctx, parent);
        const settled = settleLayer(dir, [lowers.dir, ...lowers.parents], created);
        if (!settled) return applyOnParent(s);
        const r = await commitChain(s, key, { labels: tarSizeLabels(applied.size), parent });
        ok = r === 'applied';
        return r;
      } finally {
        if (!ok) await discard();
      }
    },
  };
}
