// What the image operations need from a store. The embedded SQLite store provides it today; a gRPC
// proxy to `hoist serve` or to a real containerd provides the same shape (issue: hoist as a client).
import type { ContentStore } from './content.ts';
import type { DiffService } from './diff.ts';
import type { ConsistencyOptions, ConsistencyReport, PrunedLease, StoreUsage } from './maintenance.ts';
import type { GcStats, ImageStore, LeaseManager, NamespaceStore } from './metadata.ts';
import type { Snapshotter } from './snapshots.ts';

/**
 * Store-wide housekeeping. The embedded store does it itself; over gRPC hoist serve's maintenance service
 * does it, and a containerd (which has no such service) fails each call with HOIST_NOT_IMPLEMENTED.
 */
export interface Maintenance {
  usage(): Promise<StoreUsage>;
  /** Remove expired leases and leases whose owner process is gone; never a live owner's lease. */
  pruneLeases(): Promise<PrunedLease[]>;
  /** Is the store consistent: records against the disk, images' content present or fetchable. */
  check(opts?: ConsistencyOptions): Promise<ConsistencyReport>;
}

export interface Backend {
  content: ContentStore;
  images: ImageStore;
  leases: LeaseManager;
  namespaces: NamespaceStore;
  /** Snapshotters by name (`overlayfs`, `native`). */
  snapshotters: ReadonlyMap<string, Snapshotter>;
  /** Applying and computing layers over snapshots' mounts: in process, or on the daemon (Diff service). */
  diff: DiffService;
  /** Run garbage collection and wait for it (containerd: a synchronous delete). */
  collectGarbage(): Promise<GcStats | undefined>;
  maintenance: Maintenance;
  /** The daemon's socket when working through one (containerd's API); undefined for the embedded store. */
  readonly address: string | undefined;
  /** A daemon's own version (containerd's Version service); undefined for the embedded store. */
  serverVersion(): Promise<{ version: string; revision: string } | undefined>;
  close(): Promise<void> | void;
}
