// `hoist image check`: for each image, what it requires, what is present, and whether it is unpacked in
// each snapshotter (like `ctr images check`, plus the list of missing blobs with --verbose).
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { checkContent } from './missing.ts';
import { groupByTarget, type ImageGroup } from './names.ts';
import { resolveImage } from './resolve.ts';
import { isUnpacked } from './unpack.ts';
import type { PlatformSelector } from './walk.ts';

export interface CheckRow {
  name: string;
  mediaType: string;
  digest: Digest;
  complete: boolean;
  /** No manifest for the platform could be read. */
  unavailable: boolean;
  present: number;
  required: number;
  presentBytes: number;
  requiredBytes: number;
  missing: { digest: Digest; mediaType: string; size: number }[];
  /** snapshotter name → unpacked? */
  unpacked: Record<string, boolean>;
  sources: string[];
}

async function checkGroup(
  backend: Backend,
  ctx: Context,
  group: ImageGroup,
  name: string,
  sel: PlatformSelector,
): Promise<CheckRow> {
  const target = group.names[0]!.record.target;
  const presence = await checkContent(backend.content, ctx, target, sel);
  const walk = presence.walk;
  const unpacked: Record<string, boolean> = {};
  const config = walk.manifests[0]?.manifest.config.digest;
  for (const [sn, snapshotter] of backend.snapshotters ?? []) {
    unpacked[sn] = config !== undefined && (await isUnpacked(backend, ctx, snapshotter, config));
  }
  return {
    name,
    mediaType: target.mediaType,
    digest: target.digest,
    complete: presence.missing.length === 0 && walk.manifests.length > 0,
    unavailable: walk.manifests.length === 0,
    present: presence.required.length - presence.missing.length,
    required: presence.required.length,
    presentBytes: presence.presentBytes,
    requiredBytes: presence.requiredBytes,
    missing: presence.missing.map((d) => ({ digest: d.digest, mediaType: d.mediaType, size: d.size })),
    unpacked,
    sources: [...presence.sources].flatMap(([host, repos]) => [...repos].map((r) => `${host}/${r}`)),
  };
}

/** Check the named images, or every image (one row per image, named by its first tag) when none given. */
export async function checkImages(
  backend: Backend,
  ctx: Context,
  names: string[],
  sel: PlatformSelector,
): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  if (names.length === 0) {
    for (const g of groupByTarget(await backend.images.list(ctx)))
      rows.push(await checkGroup(backend, ctx, g, g.names[0]!.name, sel));
    return rows;
  }
  for (const n of names) {
    const r = await resolveImage(backend.images, ctx, n);
    rows.push(await checkGroup(backend, ctx, r.group, r.name ?? r.group.names[0]!.name, sel));
  }
  return rows;
}
