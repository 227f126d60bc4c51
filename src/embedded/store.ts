// The embedded store: one root directory holding the backend blobs and the SQLite metadata.
//   <root>/content/     blobs and ingests (src/content/local.ts)
//   <root>/metadata.db  namespaces, images, content records, ingests, leases, locks (src/metadata)
//   <root>/snapshots/   one directory per snapshotter (src/snapshots), records in metadata.db
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DirectorySnapshotter } from '../api/snapshots.ts';
import { LocalContentBackend } from '../content/local.ts';
import { Collector } from '../gc/collector.ts';
import { currentOwner, isOwnerAlive } from '../leases/owner.ts';
import { MetadataContentStore } from '../metadata/content.ts';
import { MetadataDb } from '../metadata/db.ts';
import { SqliteImageStore } from '../metadata/images.ts';
import { SqliteLeaseManager } from '../metadata/leases.ts';
import { SqliteNamespaceStore } from '../metadata/namespaces.ts';
import { snapshotUsageCheck } from '../metadata/snapshots.ts';
import type { WriteQueueOptions } from '../metadata/write-queue.ts';
import { openSnapshotters } from '../snapshots/index.ts';
import { snapshotsRoot } from '../snapshots/storage.ts';

export interface LocalStore {
  readonly root: string;
  readonly content: MetadataContentStore;
  readonly images: SqliteImageStore;
  readonly leases: SqliteLeaseManager;
  readonly namespaces: SqliteNamespaceStore;
  /** `native` and `overlayfs`, keyed by name. */
  readonly snapshotters: ReadonlyMap<string, DirectorySnapshotter>;
  /** collect(), pruneLeases(), usage(). */
  readonly gc: Collector;
  readonly db: MetadataDb;
  /** The raw blob store (for fsck-like tools and tests; normal code goes through `content`). */
  readonly backend: LocalContentBackend;
  /** This store's process identity, used for ingest locks. */
  readonly owner: string;
  close(): void;
}

export interface OpenStoreOptions {
  /** Process identity written into ingest locks; tests use a fabricated one to play a dead process. */
  owner?: string;
  isOwnerAlive?: (owner: string) => boolean;
  busyTimeoutMs?: number;
  /** The metadata write queue's options (tests: hooks). */
  writeQueue?: WriteQueueOptions;
}

export async function openLocalStore(root: string, opts: OpenStoreOptions = {}): Promise<LocalStore> {
  await mkdir(root, { recursive: true });
  const backend = new LocalContentBackend(join(root, 'content'));
  await backend.init();
  const db = await MetadataDb.open(join(root, 'metadata.db'), {
    ...(opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }),
    ...(opts.writeQueue === undefined ? {} : { writeQueue: opts.writeQueue }),
  });
  const owner = opts.owner ?? currentOwner();
  const alive = opts.isOwnerAlive ?? isOwnerAlive;
  const namespaces = new SqliteNamespaceStore(db);
  namespaces.addUsageCheck(snapshotUsageCheck(db));
  return {
    root,
    db,
    backend,
    owner,
    content: new MetadataContentStore({ db, backend, owner, isOwnerAlive: alive }),
    images: new SqliteImageStore(db),
    leases: new SqliteLeaseManager(db),
    namespaces,
    snapshotters: openSnapshotters(root, db, { owner, isOwnerAlive: alive }),
    gc: new Collector({ db, backend, isOwnerAlive: alive, snapshotsDir: snapshotsRoot(root) }),
    close: () => db.close(),
  };
}
