// The one descriptor walker: from an image's target down through index → manifests → config and layers.
// Pull, check, size, save and GC labelling all see an image through this file.
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import {
  type Descriptor,
  type Index,
  MAX_DOCUMENT_BYTES,
  type Manifest,
  parseManifestOrIndex,
} from '../core/descriptor.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { normalizePlatform, type Platform, platformRank } from '../core/platform.ts';

/** Manifests and indexes are small; refuse anything that would make us buffer a large blob. */
export const MAX_MANIFEST_BYTES = MAX_DOCUMENT_BYTES;

export type PlatformSelector = { kind: 'all' } | { kind: 'one'; platform: Platform };

export const ALL_PLATFORMS: PlatformSelector = { kind: 'all' };

export function onePlatform(platform: Platform): PlatformSelector {
  return { kind: 'one', platform: normalizePlatform(platform) };
}

/**
 * Which manifests of an index to keep. For one platform: the best match only (exact variant first),
 * as containerd's platforms.Only + limit 1 does. Manifests without a platform (attestations) are dropped
 * for a single platform and kept for all.
 */
export function selectManifests(index: Index, sel: PlatformSelector): Descriptor[] {
  const manifests = index.manifests.filter((m) => isManifest(m.mediaType) || isIndex(m.mediaType));
  if (sel.kind === 'all') return manifests;
  let best: Descriptor | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const m of manifests) {
    if (!m.platform) continue;
    const rank = platformRank(sel.platform, m.platform);
    if (rank < bestRank) {
      best = m;
      bestRank = rank;
    }
  }
  return best ? [best] : [];
}

/** Children of a manifest: config first, then layers, in order. */
export function manifestChildren(manifest: Manifest): Descriptor[] {
  return [manifest.config, ...manifest.layers];
}

export interface ParsedNode {
  desc: Descriptor;
  kind: 'index' | 'manifest';
  index?: Index;
  manifest?: Manifest;
}

/** Read and parse a manifest or index from the content store. */
export async function readNode(
  content: ContentStore,
  ctx: Context,
  desc: Descriptor,
  ref = String(desc.digest),
): Promise<ParsedNode> {
  const bytes = await content.readBlob(ctx, desc.digest, MAX_MANIFEST_BYTES);
  const parsed = parseManifestOrIndex(bytes, desc.mediaType, ref);
  return parsed.kind === 'index'
    ? { desc, kind: 'index', index: parsed.index }
    : { desc, kind: 'manifest', manifest: parsed.manifest };
}

export interface PlatformManifest {
  /** The manifest descriptor (with the platform the index gave it, if any). */
  desc: Descriptor;
  manifest: Manifest;
  /** Index descriptors above it, root first. */
  parents: Descriptor[];
}

export interface WalkResult {
  /** Manifests reached (and readable) under the selector. */
  manifests: PlatformManifest[];
  /** Every descriptor that is part of the selected image: indexes, manifests, configs, layers. */
  all: Descriptor[];
  /** Index/manifest descriptors that could not be read (missing from the store). */
  missingNodes: Descriptor[];
}

/**
 * Walk the image under `target` in the local content store. Missing manifests are reported, not thrown,
 * so callers (check, save, convert) can say exactly what is missing.
 */
export async function walkImage(
  content: ContentStore,
  ctx: Context,
  target: Descriptor,
  sel: PlatformSelector,
  ref?: string,
): Promise<WalkResult> {
  const result: WalkResult = { manifests: [], all: [], missingNodes: [] };
  const seen = new Set<string>();
  const visit = async (desc: Descriptor, parents: Descriptor[]): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    result.all.push(desc);
    if (!isIndex(desc.mediaType) && !isManifest(desc.mediaType)) return;
    let node: ParsedNode;
    try {
      node = await readNode(content, ctx, desc, ref);
    } catch (err) {
      if ((err as { code?: string }).code === 'HOIST_NOT_FOUND') {
        result.missingNodes.push(desc);
        return;
      }
      throw err;
    }
    if (node.kind === 'index') {
      for (const child of selectManifests(node.index!, sel)) await visit(child, [...parents, desc]);
      return;
    }
    result.manifests.push({ desc, manifest: node.manifest!, parents });
    for (const child of manifestChildren(node.manifest!)) {
      if (seen.has(child.digest)) continue;
      seen.add(child.digest);
      result.all.push(child);
    }
  };
  await visit(target, []);
  return result;
}
