// A committed layer's share of an image's SIZE. Unpack records the bytes of the layer's uncompressed tar
// on its snapshot (`hoist.io/uncompressed-size`: exact and free while applying). A layer committed before
// hoist kept that label, or by another tool, has none: its snapshot's disk usage stands in (what
// containerd's and nerdctl's sizes are made of; it counts blocks, a tar counts headers, so the two differ
// by a little per file), and unpack records it, so the walk is done once.
import type { Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';

/** The layer's size, undefined when `chain` is not a committed snapshot of `sn`. */
export async function layerSize(
  sn: Snapshotter,
  ctx: Context,
  chain: string,
  opts: { record?: boolean } = {},
): Promise<number | undefined> {
  let info: Awaited<ReturnType<Snapshotter['stat']>>;
  try {
    info = await sn.stat(ctx, chain);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (info.kind !== 'committed') return undefined;
  const recorded = Number(info.labels[Labels.snapshotTarSize] ?? Number.NaN);
  if (Number.isSafeInteger(recorded) && recorded >= 0) return recorded;
  const { size } = await sn.usage(ctx, chain);
  if (opts.record) {
    const key = Labels.snapshotTarSize;
    // Best effort: the size is known either way, and a snapshot removed meanwhile needs no label.
    await sn
      .update(ctx, { name: chain, labels: { [key]: String(size) } }, [`labels.${key}`])
      .catch(() => undefined);
  }
  return size;
}
