// `hoist image history`: an image's build steps as docker lists them, from its config's `history` (newest
// first), each step that made a layer paired with that layer of the manifest in order.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import { invalidArgument } from '../core/errors.ts';
import { resolveImage } from './resolve.ts';
import { summarize } from './summary.ts';

export interface HistoryEntry {
  /** The image's ID on the newest step, as docker; undefined (`<missing>`) on the steps below it. */
  id?: string;
  created?: Date;
  createdBy: string;
  comment: string;
  /** The step's layer, when it made one. */
  layer?: { digest: string; size: number; mediaType: string };
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
  const layers = [...p.layers];
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
      ...(layer ? { layer: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType } } : {}),
      emptyLayer: empty,
    });
  }
  // Layers the history does not account for (no history at all, or a short one) still show, one step each.
  for (const layer of layers)
    entries.push({
      createdBy: '',
      comment: '',
      layer: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType },
      emptyLayer: false,
    });
  entries.reverse();
  if (entries[0]) entries[0].id = group.target;
  return entries;
}
