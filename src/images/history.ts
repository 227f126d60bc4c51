// `hoist image history`: an image's build steps as docker lists them, from its config's `history` (newest
// first), each step that made a layer paired with that layer of the manifest in order.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { invalidArgument } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { layerSize } from './layer-size.ts';
import { resolveImage } from './resolve.ts';
import { chainIds } from './rootfs.ts';
import { type PlatformSummary, summarize } from './summary.ts';

export interface HistoryEntry {
  /** The image's ID on the newest step, as docker; undefined (`<missing>`) on the steps below it. */
  id?: string;
  created?: Date;
  createdBy: string;
  comment: string;
  /**
   * The step's layer, when it made one: `size` its blob's, `unpackedSize` its uncompressed tar's (docker's
   * SIZE) when the image is unpacked here.
   */
  layer?: { digest: string; size: number; mediaType: string; unpackedSize?: number };
  emptyLayer: boolean;
}

interface RawStep {
  created?: unknown;
  created_by?: unknown;
  comment?: unknown;
  empty_layer?: unknown;
}

export async function imageHistory(backend: Backend, ctx: Context, input: string): Promise<HistoryEntry[]> {
  const { group } = await resolveImage(backend.images, ctx, input);
  const s = await summarize(backend.content, ctx, group.names[0]!.record.target);
  const p = s.primary;
  if (!p?.imageConfig) throw invalidArgument(`${input}: the image's config is not in the store`);
  const tarSizes = await layerTarSizes(backend, ctx, p);
  const layers = p.layers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    ...(tarSizes[i] !== undefined ? { unpackedSize: tarSizes[i] } : {}),
  }));
  const raw = Array.isArray(p.imageConfig.history) ? (p.imageConfig.history as RawStep[]) : [];
  const entries: HistoryEntry[] = [];
  for (const h of raw) {
    const empty = h.empty_layer === true;
    const layer = empty ? undefined : layers.shift();
    const created = typeof h.created === 'string' ? new Date(h.created) : undefined;
    entries.push({
      ...(created && !Number.isNaN(created.getTime()) ? { created } : {}),
      createdBy: typeof h.created_by === 'string' ? h.created_by : '',
      comment: typeof h.comment === 'string' ? h.comment : '',
      ...(layer ? { layer } : {}),
      emptyLayer: empty,
    });
  }
  // Layers the history does not account for (no history at all, or a short one) still show, one step each.
  for (const layer of layers) entries.push({ createdBy: '', comment: '', layer, emptyLayer: false });
  entries.reverse();
  if (entries[0]) entries[0].id = group.target;
  return entries;
}

/**
 * Each layer's size (layer-size.ts), in the snapshotter the image's config says it is unpacked in; none
 * when the image is not unpacked here.
 */
async function layerTarSizes(
  backend: Backend,
  ctx: Context,
  p: PlatformSummary,
): Promise<(number | undefined)[]> {
  const diffIds = (p.imageConfig?.rootfs?.diff_ids ?? []) as Digest[];
  if (diffIds.length !== p.layers.length) return [];
  const labels = (await backend.content.info(ctx, p.config.digest).catch(() => undefined))?.labels ?? {};
  const key = Object.keys(labels).find((k) => k.startsWith(Labels.gcRefSnapshot));
  const sn = key === undefined ? undefined : backend.snapshotters.get(key.slice(Labels.gcRefSnapshot.length));
  if (!sn) return [];
  // Read-only: a layer without the recorded size is measured, not labelled (unpack records it).
  return Promise.all(chainIds(diffIds).map((chain) => layerSize(sn, ctx, chain).catch(() => undefined)));
}
