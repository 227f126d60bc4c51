// What the image operations need from a store. The embedded SQLite store provides it today; a gRPC
// proxy to `hoist serve` or to a real containerd provides the same shape (issue: hoist as a client).
import type { ContentStore } from '../content/types.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import type { PrunedLease } from '../gc/collector.ts';
import type { ConsistencyOptions, ConsistencyReport } from '../gc/consistency.ts';
import type { StoreUsage } from '../gc/usage.ts';
import type { GcStats, ImageStore, LeaseManager, NamespaceStore } from '../metadata/types.ts';
import type { Mount, Snapshotter } from '../snapshots/types.ts';

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
  /**
   * Apply a layer on the daemon into the mounts of an active snapshot (containerd's Diff.Apply), returning
   * the diffID it computed. Absent for the embedded store, which applies in process.
   */
  applyLayer?(ctx: Context, layer: Descriptor, mounts: Mount[]): Promise<Digest>;
  /**
   * Compute and store, on the daemon, the layer between two snapshots' mounts (containerd's Diff.Diff):
   * the compressed blob's descriptor. Absent for the embedded store, which diffs in process.
   */
  diffLayer?(ctx: Context, left: Mount[], right: Mount[], mediaType: string): Promise<Descriptor>;
  /** Run garbage collection and wait for it (containerd: a synchronous delete). */
  collectGarbage(): Promise<GcStats | undefined>;
  maintenance: Maintenance;
  close(): Promise<void> | void;
}
