// Where the store's disk space goes: blobs reachable from images, shared between images, held only by
// leases, reclaimable by GC, partial ingests (with who is writing them), and snapshots per snapshotter. Linear in the number of
// records plus one closure walk per distinct image target; fine for 10,000 image names.

import type { IngestUsage, LeaseUsage, SnapshotterUsage, StoreUsage } from '../api/maintenance.ts';
import type { SnapshotUsage } from '../api/snapshots.ts';
import type { LocalContentBackend } from '../content/local.ts';
import { Labels } from '../core/labels.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { SnapshotStorage } from '../snapshots/storage.ts';
import { diskUsage } from '../snapshots/usage.ts';
import {
  type GraphRoot,
  isLeaseLive,
  leaseExpiry,
  leaseState,
  loadGraph,
  mark,
  nodeKey,
  type StoreGraph,
  snapshotId,
} from './graph.ts';

/**
 * Usage of every snapshot by node key: cached for committed snapshots, otherwise measured (and cached
 * for committed ones, so the next `system df` is quick). Without a snapshots dir only cached values count.
 */
async function snapshotSizes(
  db: MetadataDb,
  graph: StoreGraph,
  snapshotsDir: string | undefined,
): Promise<Map<string, SnapshotUsage>> {
  const out = new Map<string, SnapshotUsage>();
  const toCache: [number, SnapshotUsage][] = [];
  const storages = new Map<string, SnapshotStorage>();
  for (const [key, node] of graph.snapshots) {
    if (node.size !== null && node.inodes !== null) {
      out.set(key, { size: node.size, inodes: node.inodes });
      continue;
    }
    if (snapshotsDir === undefined) {
      out.set(key, { size: 0, inodes: 0 });
      continue;
    }
    let storage = storages.get(node.snapshotter);
    if (!storage) {
      storage = new SnapshotStorage(snapshotsDir, node.snapshotter);
      storages.set(node.snapshotter, storage);
    }
    // Removed since the graph was read: it no longer uses anything.
    const u = await diskUsage(storage.fs(node.backendId)).catch(() => ({ size: 0, inodes: 0 }));
    out.set(key, u);
    if (node.kind === 'committed' && u.inodes > 0) toCache.push([node.backendId, u]);
  }
  if (toCache.length > 0)
    await db.transaction(() => {
      for (const [id, u] of toCache)
        db.run(
          "UPDATE snapshots SET size = ?, inodes = ? WHERE backend_id = ? AND kind = 'committed'",
          u.size,
          u.inodes,
          id,
        );
    });
  return out;
}

function digestsOf(keys: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const key of keys) out.add(key.slice(key.indexOf('\u0000') + 1));
  return out;
}

/** Distinct digests reachable from one root in namespace `ns` (label refs followed). */
function closure(graph: StoreGraph, ns: string, root: string): Set<string> {
  const seen = new Set<string>([root]);
  const work = [root];
  const blobs = graph.content.get(ns);
  while (work.length > 0) {
    const node = blobs?.get(work.pop()!);
    if (!node) continue;
    for (const r of node.refs) {
      if (seen.has(r)) continue;
      seen.add(r);
      work.push(r);
    }
  }
  return seen;
}

export async function computeUsage(
  db: MetadataDb,
  backend: LocalContentBackend,
  isOwnerAlive: (owner: string) => boolean,
  now: number,
  snapshotsDir?: string,
): Promise<StoreUsage> {
  const graph = loadGraph(db);
  const onDisk = new Map<string, number>();
  let fileBytes = 0;
  for await (const b of backend.walkBlobs()) {
    onDisk.set(b.digest, b.size);
    fileBytes += b.size;
  }
  const sizeOf = (d: string) => onDisk.get(d) ?? 0;

  let records = 0;
  let recordBytes = 0;
  for (const blobs of graph.content.values())
    for (const node of blobs.values()) {
      records++;
      recordBytes += node.size;
    }

  // Per distinct target digest: which blobs it reaches. A blob reached by 2+ targets is "shared".
  const targetsReaching = new Map<string, number>();
  const seenTargets = new Set<string>();
  for (const img of graph.images) {
    if (seenTargets.has(img.target)) continue;
    seenTargets.add(img.target);
    const reach = closure(graph, img.ns, img.target);
    for (const d of reach) targetsReaching.set(d, (targetsReaching.get(d) ?? 0) + 1);
  }
  // Reachable = marked from image targets and image label refs; gc.root content is kept but not "image".
  const imageRoots: GraphRoot[] = [];
  for (const img of graph.images) {
    imageRoots.push({ kind: 'content', ns: img.ns, id: img.target });
    for (const r of img.refs) imageRoots.push({ kind: 'content', ns: img.ns, id: r });
  }
  const gcRootRoots: GraphRoot[] = [];
  for (const [ns, blobs] of graph.content)
    for (const [d, node] of blobs) if (node.root) gcRootRoots.push({ kind: 'content', ns, id: d });
  for (const node of graph.snapshots.values())
    if (node.root)
      gcRootRoots.push({ kind: 'snapshot', ns: node.ns, id: snapshotId(node.snapshotter, node.key) });
  const markedFromImages = mark(graph, imageRoots);
  const markedFromGcRoots = mark(graph, gcRootRoots);
  const fromImages = digestsOf(markedFromImages.content);
  const fromGcRoots = digestsOf(markedFromGcRoots.content);

  let imageBytes = 0;
  for (const d of fromImages) imageBytes += sizeOf(d);
  let sharedBytes = 0;
  for (const [d, n] of targetsReaching) if (n > 1) sharedBytes += sizeOf(d);
  let reclaimableBytes = 0;
  for (const [d, size] of onDisk) if (!fromImages.has(d) && !fromGcRoots.has(d)) reclaimableBytes += size;

  const leaseOfIngest = new Map<string, string[]>();
  for (const lease of graph.leases)
    for (const r of lease.resources) {
      if (r.type !== 'ingests') continue;
      const key = nodeKey(lease.ns, r.id);
      leaseOfIngest.set(key, [...(leaseOfIngest.get(key) ?? []), lease.id]);
    }
  const items: IngestUsage[] = [];
  const ingestBytes = new Map<string, number>();
  for (const ing of graph.ingests) {
    let offset = ing.shared ? ing.total : 0;
    let total = ing.total;
    let updatedAt: Date | undefined;
    if (!ing.shared) {
      try {
        const st = await backend.status(ing.backendRef);
        offset = st.offset;
        total = st.total || total;
        updatedAt = st.updatedAt;
      } catch {
        // Recorded but not created yet (or removed): nothing on disk.
      }
    }
    const owner = graph.locks.get(ing.backendRef);
    const key = nodeKey(ing.ns, ing.ref);
    if (!ing.shared) ingestBytes.set(key, offset);
    items.push({
      namespace: ing.ns,
      ref: ing.ref,
      offset,
      total,
      updatedAt,
      leases: leaseOfIngest.get(key) ?? [],
      owner,
      ownerAlive: owner === undefined ? undefined : isOwnerAlive(owner),
      shared: ing.shared,
    });
  }

  const sizes = await snapshotSizes(db, graph, snapshotsDir);
  const totals = { count: 0, active: 0, bytes: 0, inodes: 0, imageBytes: 0, reclaimableBytes: 0 };
  const bySnapshotter = new Map<string, SnapshotterUsage>();
  for (const [key, node] of graph.snapshots) {
    let per = bySnapshotter.get(node.snapshotter);
    if (!per) {
      per = {
        snapshotter: node.snapshotter,
        count: 0,
        active: 0,
        bytes: 0,
        inodes: 0,
        imageBytes: 0,
        reclaimableBytes: 0,
      };
      bySnapshotter.set(node.snapshotter, per);
    }
    const u = sizes.get(key) ?? { size: 0, inodes: 0 };
    const fromImage = markedFromImages.snapshots.has(key);
    const kept = fromImage || markedFromGcRoots.snapshots.has(key);
    for (const t of [per, totals]) {
      t.count++;
      if (node.kind !== 'committed') t.active++;
      t.bytes += u.size;
      t.inodes += u.inodes;
      if (fromImage) t.imageBytes += u.size;
      if (!kept) t.reclaimableBytes += u.size;
    }
  }

  const leases: LeaseUsage[] = graph.leases.map((lease) => {
    let bytes = 0;
    for (const r of lease.resources) {
      if (r.type === 'content') bytes += sizeOf(r.id);
      else if (r.type === 'ingests') bytes += ingestBytes.get(nodeKey(lease.ns, r.id)) ?? 0;
      else if (r.type.startsWith('snapshots/'))
        bytes += sizes.get(nodeKey(lease.ns, snapshotId(r.type.slice('snapshots/'.length), r.id)))?.size ?? 0;
    }
    const owner = lease.labels[Labels.leaseOwner];
    return {
      namespace: lease.ns,
      id: lease.id,
      createdAt: new Date(lease.createdAt),
      labels: lease.labels,
      resources: lease.resources.length,
      bytes,
      owner,
      ownerAlive: owner === undefined ? undefined : isOwnerAlive(owner),
      expires: leaseExpiry(lease.labels),
      alive: isLeaseLive(lease, now, isOwnerAlive),
      state: leaseState(lease.labels, now, isOwnerAlive),
    };
  });

  const partial = items.filter((i) => !i.shared);
  return {
    blobs: { records, recordBytes, files: onDisk.size, fileBytes },
    imageBytes,
    sharedBytes,
    reclaimableBytes,
    ingests: { count: partial.length, bytes: partial.reduce((n, i) => n + i.offset, 0), items },
    leases,
    snapshots: {
      ...totals,
      bySnapshotter: [...bySnapshotter.values()].sort((a, b) => a.snapshotter.localeCompare(b.snapshotter)),
    },
  };
}
