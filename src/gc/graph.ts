// The object graph GC walks, loaded from the metadata database in one pass, and the mark phase over it.
// Nodes: content (ns, digest), ingests (ns, ref) and snapshots (ns, `<snapshotter>/<key>`, containerd's
// node key). Edges: image → target, `containerd.io/gc.ref.content*` labels, ingest → expected digest,
// `containerd.io/gc.ref.snapshot.<snapshotter>[/<x>]` labels (content or snapshot → snapshot), and
// snapshot → parent.
import type { LeaseState } from '../api/maintenance.ts';
import { isDigest } from '../core/digest.ts';
import { isContentRefLabel, Labels } from '../core/labels.ts';
import { parseLabels } from '../metadata/common.ts';
import type { MetadataDb } from '../metadata/db.ts';

export interface ContentNode {
  size: number;
  /** Digests named by gc.ref.content labels (same namespace). */
  refs: string[];
  /** Snapshots (`<snapshotter>/<key>`) named by gc.ref.snapshot labels (same namespace). */
  snapshots: string[];
  /** Has containerd.io/gc.root. */
  root: boolean;
}

export interface SnapshotNode {
  ns: string;
  snapshotter: string;
  key: string;
  kind: string;
  /** Its directory: <root>/snapshots/<snapshotter>/snapshots/<backendId>. */
  backendId: number;
  parent: string | null;
  /** Digests named by its gc.ref.content labels. */
  refs: string[];
  /** Other snapshots (`<snapshotter>/<key>`) named by its gc.ref.snapshot labels. */
  snapshots: string[];
  root: boolean;
  /** Cached usage (committed snapshots whose usage was computed), else null. */
  size: number | null;
  inodes: number | null;
}

export interface ImageNode {
  ns: string;
  name: string;
  target: string;
  refs: string[];
}

export interface LeaseNode {
  ns: string;
  id: string;
  createdAt: number;
  labels: Record<string, string>;
  resources: { type: string; id: string }[];
}

export interface IngestNode {
  ns: string;
  ref: string;
  backendRef: string;
  expected: string | null;
  shared: boolean;
  total: number;
  expiresAt: number | null;
}

export interface StoreGraph {
  /** ns → digest → node. */
  content: Map<string, Map<string, ContentNode>>;
  images: ImageNode[];
  leases: LeaseNode[];
  ingests: IngestNode[];
  /** nodeKey(ns, `<snapshotter>/<key>`) → node. */
  snapshots: Map<string, SnapshotNode>;
  /** backend ref → lock owner. */
  locks: Map<string, string>;
}

export const nodeKey = (ns: string, id: string) => `${ns}\u0000${id}`;

/** containerd's snapshot node id. */
export const snapshotId = (snapshotter: string, key: string) => `${snapshotter}/${key}`;

function contentRefs(labels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) if (isContentRefLabel(k) && isDigest(v)) out.push(v);
  return out;
}

/** Targets of `containerd.io/gc.ref.snapshot.<snapshotter>[/<x>]` labels, as `<snapshotter>/<key>`. */
function snapshotRefs(labels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!k.startsWith(Labels.gcRefSnapshot) || v === '') continue;
    const snapshotter = k.slice(Labels.gcRefSnapshot.length).split('/')[0]!;
    if (snapshotter !== '') out.push(snapshotId(snapshotter, v));
  }
  return out;
}

/** Read every record GC cares about. Call inside a transaction for a consistent view. */
export function loadGraph(db: MetadataDb): StoreGraph {
  const content = new Map<string, Map<string, ContentNode>>();
  for (const r of db.iterate<{ ns: string; digest: string; size: number; labels: string }>(
    'SELECT ns, digest, size, labels FROM content',
  )) {
    let m = content.get(r.ns);
    if (!m) {
      m = new Map();
      content.set(r.ns, m);
    }
    // Most blobs (layers) have no GC labels: skip JSON parsing for them.
    const labels = r.labels.includes('containerd.io/gc.') ? parseLabels(r.labels) : {};
    m.set(r.digest, {
      size: Number(r.size),
      refs: contentRefs(labels),
      snapshots: snapshotRefs(labels),
      root: Labels.gcRoot in labels,
    });
  }
  const images: ImageNode[] = [];
  for (const r of db.iterate<{ ns: string; name: string; target_digest: string; labels: string }>(
    'SELECT ns, name, target_digest, labels FROM images',
  )) {
    const refs = r.labels.includes('containerd.io/gc.') ? contentRefs(parseLabels(r.labels)) : [];
    images.push({ ns: r.ns, name: r.name, target: r.target_digest, refs });
  }
  const leases = new Map<string, LeaseNode>();
  // created_at is in nanoseconds (migration 3); the graph keeps milliseconds.
  for (const r of db.iterate<{ ns: string; id: string; labels: string; created_at: number }>(
    'SELECT ns, id, labels, created_at / 1000000 AS created_at FROM leases',
  )) {
    leases.set(nodeKey(r.ns, r.id), {
      ns: r.ns,
      id: r.id,
      createdAt: Number(r.created_at),
      labels: parseLabels(r.labels),
      resources: [],
    });
  }
  for (const r of db.iterate<{ ns: string; lease_id: string; type: string; id: string }>(
    'SELECT ns, lease_id, type, id FROM lease_resources',
  )) {
    leases.get(nodeKey(r.ns, r.lease_id))?.resources.push({ type: r.type, id: r.id });
  }
  const ingests: IngestNode[] = [];
  for (const r of db.iterate<{
    ns: string;
    ref: string;
    backend_ref: string;
    expected: string | null;
    shared: number;
    total: number;
    expires_at: number | null;
  }>('SELECT ns, ref, backend_ref, expected, shared, total, expires_at FROM ingests')) {
    ingests.push({
      ns: r.ns,
      ref: r.ref,
      backendRef: r.backend_ref,
      expected: r.expected,
      shared: r.shared === 1,
      total: Number(r.total),
      expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    });
  }
  const locks = new Map<string, string>();
  for (const r of db.iterate<{ backend_ref: string; owner: string }>(
    'SELECT backend_ref, owner FROM ingest_locks',
  ))
    locks.set(r.backend_ref, r.owner);
  const snapshots = new Map<string, SnapshotNode>();
  for (const r of db.iterate<{
    ns: string;
    snapshotter: string;
    key: string;
    kind: string;
    backend_id: number;
    parent: string | null;
    labels: string;
    size: number | null;
    inodes: number | null;
  }>('SELECT ns, snapshotter, key, kind, backend_id, parent, labels, size, inodes FROM snapshots')) {
    const labels = r.labels.includes('containerd.io/gc.') ? parseLabels(r.labels) : {};
    snapshots.set(nodeKey(r.ns, snapshotId(r.snapshotter, r.key)), {
      ns: r.ns,
      snapshotter: r.snapshotter,
      key: r.key,
      kind: r.kind,
      backendId: Number(r.backend_id),
      parent: r.parent,
      refs: contentRefs(labels),
      snapshots: snapshotRefs(labels),
      root: Labels.gcRoot in labels,
      size: r.size === null ? null : Number(r.size),
      inodes: r.inodes === null ? null : Number(r.inodes),
    });
  }
  return { content, images, leases: [...leases.values()], ingests, snapshots, locks };
}

/** The `containerd.io/gc.expire` time of a lease; undefined when absent or unparsable (never expires). */
export function leaseExpiry(labels: Record<string, string>): Date | undefined {
  const v = labels[Labels.gcExpire];
  if (v === undefined) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * What GC and prune do with a lease. `running`: its owner process lives; kept whatever the expiry says.
 * `orphaned`: its owner died before it expired; GC keeps its data until the expiry (a resume may still
 * want it), `system prune` reclaims it now. `expired`: roots nothing; GC reclaims its data, prune deletes
 * it. `held`: no owner process (made by `lease create` or a client), kept until removed or expired.
 */
export function leaseState(
  labels: Record<string, string>,
  now: number,
  isOwnerAlive: (owner: string) => boolean,
): LeaseState {
  const owner = labels[Labels.leaseOwner];
  if (owner !== undefined && isOwnerAlive(owner)) return 'running';
  const exp = leaseExpiry(labels);
  if (exp !== undefined && exp.getTime() <= now) return 'expired';
  return owner === undefined ? 'held' : 'orphaned';
}

/** A lease is a root while unexpired, or while the process named by its hoist.io/owner label lives. */
export function isLeaseLive(
  lease: LeaseNode,
  now: number,
  isOwnerAlive: (owner: string) => boolean,
): boolean {
  return leaseState(lease.labels, now, isOwnerAlive) !== 'expired';
}

export interface Marked {
  /** nodeKey(ns, digest) of reachable content records (or referenced digests without a record). */
  content: Set<string>;
  /** nodeKey(ns, ref) of live ingests. */
  ingests: Set<string>;
  /** nodeKey(ns, `<snapshotter>/<key>`) of reachable snapshot records. */
  snapshots: Set<string>;
}

/**
 * A root or reachable object; flat ones are kept without following their label references (a flat
 * snapshot still keeps its parents). Snapshot ids are `<snapshotter>/<key>`.
 */
export type GraphRoot = { kind: 'content' | 'ingest' | 'snapshot'; ns: string; id: string; flat?: boolean };

/** Tricolour-free mark: a worklist over content and snapshot nodes; flat nodes are not expanded. */
export function mark(graph: StoreGraph, roots: Iterable<GraphRoot>): Marked {
  const marked: Marked = { content: new Set(), ingests: new Set(), snapshots: new Set() };
  const expanded = new Set<string>();
  // Snapshots: 'flat' = parents followed; 'full' = parents and labels followed.
  const snapshotState = new Map<string, 'flat' | 'full'>();
  const work: { kind: 'content' | 'snapshot'; ns: string; id: string; flat: boolean }[] = [];
  const visitContent = (ns: string, d: string, flat: boolean) => {
    const key = nodeKey(ns, d);
    marked.content.add(key);
    if (!flat && !expanded.has(key)) {
      expanded.add(key);
      work.push({ kind: 'content', ns, id: d, flat: false });
    }
  };
  const visitSnapshot = (ns: string, id: string, flat: boolean) => {
    const key = nodeKey(ns, id);
    if (!graph.snapshots.has(key)) return;
    marked.snapshots.add(key);
    const state = snapshotState.get(key);
    if (state === 'full' || (flat && state === 'flat')) return;
    snapshotState.set(key, flat ? 'flat' : 'full');
    work.push({ kind: 'snapshot', ns, id, flat });
  };
  const ingestsByKey = new Map(graph.ingests.map((i) => [nodeKey(i.ns, i.ref), i]));
  for (const root of roots) {
    if (root.kind === 'content') visitContent(root.ns, root.id, root.flat === true);
    else if (root.kind === 'snapshot') visitSnapshot(root.ns, root.id, root.flat === true);
    else {
      const key = nodeKey(root.ns, root.id);
      const ing = ingestsByKey.get(key);
      if (!ing) continue;
      marked.ingests.add(key);
      if (ing.expected && !root.flat) visitContent(ing.ns, ing.expected, false);
    }
  }
  while (work.length > 0) {
    const item = work.pop()!;
    const { ns } = item;
    if (item.kind === 'content') {
      const node = graph.content.get(ns)?.get(item.id);
      if (!node) continue;
      for (const ref of node.refs) visitContent(ns, ref, false);
      for (const ref of node.snapshots) visitSnapshot(ns, ref, false);
      continue;
    }
    const node = graph.snapshots.get(nodeKey(ns, item.id));
    if (!node) continue;
    if (node.parent !== null) visitSnapshot(ns, snapshotId(node.snapshotter, node.parent), item.flat);
    if (item.flat) continue;
    for (const ref of node.refs) visitContent(ns, ref, false);
    for (const ref of node.snapshots) visitSnapshot(ns, ref, false);
  }
  return marked;
}

/**
 * All GC roots: images, live leases' resources (content, ingests, snapshots), gc.root content and
 * snapshots, unexpired (or actively written) ingests.
 */
export function* gcRoots(
  graph: StoreGraph,
  now: number,
  isOwnerAlive: (owner: string) => boolean,
): Generator<GraphRoot> {
  for (const img of graph.images) {
    yield { kind: 'content', ns: img.ns, id: img.target };
    for (const ref of img.refs) yield { kind: 'content', ns: img.ns, id: ref };
  }
  for (const lease of graph.leases) {
    if (!isLeaseLive(lease, now, isOwnerAlive)) continue;
    const flat = (lease.labels[Labels.gcFlat] ?? '') !== '';
    for (const r of lease.resources) {
      if (r.type === 'content') yield { kind: 'content', ns: lease.ns, id: r.id, flat };
      else if (r.type === 'ingests') yield { kind: 'ingest', ns: lease.ns, id: r.id, flat };
      else if (r.type.startsWith('snapshots/'))
        yield {
          kind: 'snapshot',
          ns: lease.ns,
          id: snapshotId(r.type.slice('snapshots/'.length), r.id),
          flat,
        };
    }
  }
  for (const [ns, blobs] of graph.content)
    for (const [d, node] of blobs) if (node.root) yield { kind: 'content', ns, id: d };
  for (const node of graph.snapshots.values())
    if (node.root) yield { kind: 'snapshot', ns: node.ns, id: snapshotId(node.snapshotter, node.key) };
  for (const ing of graph.ingests) {
    const owner = graph.locks.get(ing.backendRef);
    // An ingest a live process is writing right now is never swept from under it.
    if ((ing.expiresAt !== null && ing.expiresAt > now) || (owner !== undefined && isOwnerAlive(owner)))
      yield { kind: 'ingest', ns: ing.ns, id: ing.ref };
  }
}
