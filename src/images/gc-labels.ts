// The `containerd.io/gc.ref.content.*` labels an index or manifest carries so that GC keeps what it refers
// to: `m.<i>` for an index's manifests, `config` and `l.<i>` for a manifest's config and layers. The key
// shapes are containerd's (what `ctr images pull/import` write), so a store hoist writes is read the same
// way by both. Pull and load label through here.
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor, Manifest } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { Labels } from '../core/labels.ts';

/** Labels for an index keeping `children` (the manifests actually present or selected), in order. */
export function indexRefLabels(children: Descriptor[]): Record<string, string> {
  const refs: Record<string, string> = {};
  children.forEach((c, i) => {
    refs[`${Labels.gcRefContent}.m.${i}`] = c.digest;
  });
  return refs;
}

/** Labels for a manifest: its config and every layer. */
export function manifestRefLabels(manifest: Manifest): Record<string, string> {
  const refs: Record<string, string> = { [`${Labels.gcRefContent}.config`]: manifest.config.digest };
  manifest.layers.forEach((l, i) => {
    refs[`${Labels.gcRefContent}.l.${i}`] = l.digest;
  });
  return refs;
}

/** Set (merge) the labels on a blob, leaving its other labels alone. */
export async function applyRefLabels(
  content: ContentStore,
  ctx: Context,
  digest: Digest,
  refs: Record<string, string>,
): Promise<void> {
  const keys = Object.keys(refs);
  if (keys.length === 0) return;
  await content.update(
    ctx,
    { digest, labels: refs },
    keys.map((k) => `labels.${k}`),
  );
}
