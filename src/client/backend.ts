// What the image operations need from a store. The embedded SQLite store provides it today; a gRPC
// proxy to `hoist serve` or to a real containerd provides the same shape (issue: hoist as a client).
import type { ContentStore } from '../content/types.ts';
import type { GcStats, ImageStore, LeaseManager, NamespaceStore } from '../metadata/types.ts';

export interface Backend {
  content: ContentStore;
  images: ImageStore;
  leases: LeaseManager;
  namespaces: NamespaceStore;
  /** Run garbage collection and wait for it (containerd: a synchronous delete). */
  collectGarbage(): Promise<GcStats | undefined>;
  close(): Promise<void> | void;
}
