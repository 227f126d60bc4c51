// The maintenance port: what a store reports and does about its own disk and consistency. hoist's own
// (containerd has no such service): the embedded store computes it, `hoist serve` serves it
// (hoist.services.maintenance.v1), the gRPC client asks for it.

export interface PrunedLease {
  namespace: string;
  id: string;
  labels: Record<string, string>;
  /** Why it went: its expiry passed, or its owner process is gone. */
  reason: 'expired' | 'owner-dead';
}

export interface IngestUsage {
  namespace: string;
  ref: string;
  offset: number;
  total: number;
  updatedAt: Date | undefined;
  /** Leases (in the same namespace) that hold this ingest. */
  leases: string[];
  /** Process holding the writer lock, if any, and whether it still runs. */
  owner: string | undefined;
  ownerAlive: boolean | undefined;
  shared: boolean;
}

export interface LeaseUsage {
  namespace: string;
  id: string;
  createdAt: Date;
  labels: Record<string, string>;
  resources: number;
  /** Bytes of its content resources (on disk) plus its ingests' written bytes. */
  bytes: number;
  owner: string | undefined;
  ownerAlive: boolean | undefined;
  expires: Date | undefined;
  /** Still a GC root (unexpired, or its owner is alive). */
  alive: boolean;
  /** What GC and prune do with it (gc/graph.ts leaseState). */
  state: LeaseState;
}

/**
 * running: its owner process lives. orphaned: its owner died before it expired (GC keeps it until the
 * expiry, prune reclaims it now). expired: reclaimable. held: no owner process; kept until removed or expired.
 */
export type LeaseState = 'running' | 'orphaned' | 'expired' | 'held';

export interface SnapshotterUsage {
  snapshotter: string;
  /** Snapshot records (all namespaces), and how many of them are active or views. */
  count: number;
  active: number;
  bytes: number;
  inodes: number;
  /** Bytes of snapshots reachable from images (image config → gc.ref.snapshot label → parents). */
  imageBytes: number;
  /** Bytes of snapshots no image and no gc.root object keeps (held only by leases, or garbage). */
  reclaimableBytes: number;
}

export interface StoreUsage {
  blobs: {
    /** Content records over all namespaces, and the sum of their sizes. */
    records: number;
    recordBytes: number;
    /** Files in blobs/ and their total size (each blob stored once however many namespaces use it). */
    files: number;
    fileBytes: number;
  };
  /** Bytes of distinct blobs on disk reachable from any image. */
  imageBytes: number;
  /** Bytes of blobs reachable from more than one distinct image target. */
  sharedBytes: number;
  /** Bytes on disk not reachable from images or gc.root content (leases and partial data included). */
  reclaimableBytes: number;
  ingests: { count: number; bytes: number; items: IngestUsage[] };
  leases: LeaseUsage[];
  /** Totals over all snapshotters, then per snapshotter (native snapshots are full copies). */
  snapshots: Omit<SnapshotterUsage, 'snapshotter'> & { bySnapshotter: SnapshotterUsage[] };
}

export interface ConsistencyFinding {
  /** Stable identifier of the kind of finding (for scripts). */
  kind:
    | 'database-corrupt'
    | 'dangling-reference'
    | 'blob-missing'
    | 'blob-size-mismatch'
    | 'blob-digest-mismatch'
    | 'image-content-missing'
    | 'image-content-fetchable'
    | 'snapshot-dir-missing'
    | 'unrecorded-blob'
    | 'unrecorded-snapshot-dir'
    | 'unrecorded-ingest-dir';
  namespace?: string;
  /** What it is about: a digest, an image name, a snapshot key, a path. */
  subject: string;
  detail: string;
}

export interface ConsistencyReport {
  ok: boolean;
  checked: {
    images: number;
    contentRecords: number;
    blobFiles: number;
    snapshots: number;
    ingests: number;
    /** Blobs whose bytes were re-hashed (--verify). */
    verifiedBlobs: number;
  };
  /** Inconsistencies: data the store claims to have and does not, or a damaged database. */
  problems: ConsistencyFinding[];
  /** Accounted for: fetchable content, and leftovers the next GC (`hoist system prune`) removes. */
  notes: ConsistencyFinding[];
}

export interface ConsistencyOptions {
  /** Re-hash every blob (reads every byte; without it only sizes are compared). */
  verify?: boolean;
}
