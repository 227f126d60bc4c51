// What an image needs and what the store lacks: the basis of `image check`, and of save, push and
// convert refusing (or re-fetching) before they start instead of failing halfway.
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { type PlatformSelector, type WalkResult, walkImage } from './walk.ts';

export interface ContentPresence {
  /** Every descriptor the selected image consists of (index, manifests, configs, layers). */
  required: Descriptor[];
  missing: Descriptor[];
  presentBytes: number;
  requiredBytes: number;
  /** `containerd.io/distribution.source.<host>` labels found on the image's blobs: host → repositories. */
  sources: Map<string, Set<string>>;
  walk: WalkResult;
}

export async function checkContent(
  content: ContentStore,
  ctx: Context,
  target: Descriptor,
  sel: PlatformSelector,
): Promise<ContentPresence> {
  const walk = await walkImage(content, ctx, target, sel);
  const out: ContentPresence = {
    required: walk.all,
    missing: [],
    presentBytes: 0,
    requiredBytes: 0,
    sources: new Map(),
    walk,
  };
  for (const d of walk.all) {
    out.requiredBytes += d.size;
    try {
      const info = await content.info(ctx, d.digest);
      out.presentBytes += d.size;
      for (const [k, v] of Object.entries(info.labels)) {
        if (!k.startsWith(Labels.distributionSource)) continue;
        const host = k.slice(Labels.distributionSource.length);
        const set = out.sources.get(host) ?? new Set<string>();
        for (const repo of v.split(',')) if (repo) set.add(repo);
        out.sources.set(host, set);
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      out.missing.push(d);
    }
  }
  return out;
}
