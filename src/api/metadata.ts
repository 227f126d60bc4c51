// Interfaces of the metadata services (containerd's images.Store, leases.Manager, namespaces.Store).
// The embedded implementation is SQLite (src/metadata); a gRPC proxy implements the same interfaces.
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';

/** containerd's image record: a name pointing at a target. One image with many names = many records, one target. */
export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageStore {
  get(ctx: Context, name: string): Promise<ImageRecord>;
  /** containerd filters on `name`, `target.digest`, `target.mediatype`, `labels.<k>`; OR across strings. */
  list(ctx: Context, filters?: string[]): Promise<ImageRecord[]>;
  /** Records sharing one target digest (indexed). */
  listByTarget(ctx: Context, target: Digest): Promise<ImageRecord[]>;
  create(ctx: Context, image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>): Promise<ImageRecord>;
  /** fieldpaths: `labels`, `labels.<k>`, `target`, `annotations`, `annotations.<k>`; none = all. */
  update(
    ctx: Context,
    image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>,
    fieldpaths?: string[],
  ): Promise<ImageRecord>;
  /** `image "<name>": not found`. With `target`, deletes only if the record still points there. */
  delete(ctx: Context, name: string, opts?: { target?: Digest }): Promise<void>;
  /**
   * A token that changes whenever the namespace's images may have changed, for callers that cache what
   * they derive from list(); undefined when the store cannot tell (then do not cache).
   */
  version(ctx: Context): string | undefined;
}

export interface Lease {
  id: string;
  createdAt: Date;
  labels: Record<string, string>;
}

/** `content` (id = digest), `ingests` (id = ref), `snapshots/<snapshotter>` (id = key). */
export interface LeaseResource {
  id: string;
  type: string;
}

export interface LeaseManager {
  create(ctx: Context, opts?: { id?: string; labels?: Record<string, string> }): Promise<Lease>;
  delete(ctx: Context, id: string): Promise<void>;
  list(ctx: Context, filters?: string[]): Promise<Lease[]>;
  /** Replace or set labels (used to renew `containerd.io/gc.expire`). */
  setLabels(ctx: Context, id: string, labels: Record<string, string>): Promise<Lease>;
  addResource(ctx: Context, id: string, resource: LeaseResource): Promise<void>;
  deleteResource(ctx: Context, id: string, resource: LeaseResource): Promise<void>;
  listResources(ctx: Context, id: string): Promise<LeaseResource[]>;
}

export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

export interface NamespaceStore {
  list(): Promise<Namespace[]>;
  get(name: string): Promise<Namespace>;
  create(name: string, labels?: Record<string, string>): Promise<Namespace>;
  setLabel(name: string, key: string, value: string): Promise<Namespace>;
  /** Refuses a namespace that still has images, blobs or snapshots (containerd's message). */
  delete(name: string): Promise<void>;
}

export interface GcStats {
  removedContent: number;
  removedBytes: number;
  removedIngests: number;
  removedIngestBytes: number;
  removedLeases: number;
  /** Snapshot records removed, and the bytes of snapshot directories deleted (orphans included). */
  removedSnapshots: number;
  removedSnapshotBytes: number;
  durationMs: number;
}

export interface GarbageCollector {
  /** Mark from roots and sweep, synchronously with respect to the caller (returns when done). */
  collect(): Promise<GcStats>;
}
