// Mark & sweep garbage collection over the metadata records and the backend files, plus lease pruning.
//
// Race safety across processes: mark, the record sweep AND the deletion of backend files all happen inside
// one SQLite write transaction. Content writers publish blobs (rename into blobs/) and record "the backend
// already has it" inside write transactions too, so no process can record a blob GC is deleting.
// Snapshot directories can be large: their records are deleted inside the transaction and the files
// after the commit (backend ids are never reused once a deletion commits; src/snapshots/storage.ts).

import type { PrunedLease, StoreUsage } from '../api/maintenance.ts';
import type { GarbageCollector, GcStats } from '../api/metadata.ts';
import { ingestKey, type LocalContentBackend } from '../content/local.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { removeTree, SnapshotStorage, storagesUnder } from '../snapshots/storage.ts';
import { diskUsage } from '../snapshots/usage.ts';
import { gcRoots, leaseExpiry, loadGraph, mark, nodeKey } from './graph.ts';
import { computeUsage } from './usage.ts';

export interface CollectorDeps {
  db: MetadataDb;
  backend: LocalContentBackend;
  isOwnerAlive: (owner: string) => boolean;
  /** `<root>/snapshots`: where snapshot directories live (absent: records only, no directories). */
  snapshotsDir?: string;
}

interface KeptRecords {
  keepDigests: Set<string>;
  keepIngestDirs: Set<string>;
  removedIngestKeys: Set<string>;
  doomedDirs: { dir: string; size: number | null }[];
}

export class Collector implements GarbageCollector {
  #db: MetadataDb;
  #backend: LocalContentBackend;
  #isOwnerAlive: (owner: string) => boolean;
  #snapshotsDir: string | undefined;

  constructor(deps: CollectorDeps) {
    this.#db = deps.db;
    this.#backend = deps.backend;
    this.#isOwnerAlive = deps.isOwnerAlive;
    this.#snapshotsDir = deps.snapshotsDir;
  }

  async collect(opts: { now?: Date } = {}): Promise<GcStats> {
    const started = performance.now();
    const now = (opts.now ?? new Date()).getTime();
    const db = this.#db;
    const stats: GcStats = {
      removedContent: 0,
      removedBytes: 0,
      removedIngests: 0,
      removedIngestBytes: 0,
      removedLeases: 0,
      removedSnapshots: 0,
      removedSnapshotBytes: 0,
      durationMs: 0,
    };
    // Records first, committed; then, still in the write turn, the files no record names any more.
    const doomedSnapshotDirs = await db.withWriteTurn(async () => {
      const kept = await this.#collectRecords(stats, now);
      await this.#collectFiles(stats, kept);
      return kept.doomedDirs;
    });
    // 3. Snapshot directories, after the commit (they can be large). Unrecorded now: a failure here
    // leaves a directory that the next collection or cleanup removes.
    for (const { dir, size } of doomedSnapshotDirs) {
      stats.removedSnapshotBytes += size ?? (await diskUsage(dir).catch(() => ({ size: 0 }))).size;
      await removeTree(dir).catch(() => undefined);
    }
    stats.durationMs = performance.now() - started;
    return stats;
  }

  /** Delete the records no root reaches, in one transaction; what is kept, for the file sweep. */
  #collectRecords(stats: GcStats, now: number): Promise<KeptRecords> {
    const db = this.#db;
    return db.transaction(async () => {
      const graph = loadGraph(db);
      const marked = mark(graph, gcRoots(graph, now, this.#isOwnerAlive));

      // 0. Snapshot directories with no record at all (crash leftovers), before any record goes.
      // size: the cached usage of a committed snapshot, else measured before deletion.
      const doomedDirs: { dir: string; size: number | null }[] = [];
      if (this.#snapshotsDir !== undefined)
        for (const storage of await storagesUnder(this.#snapshotsDir))
          for (const dir of await storage.collectOrphans(db, this.#isOwnerAlive))
            doomedDirs.push({ dir, size: null });

      // 1. Records. Expired leases themselves stay (pruneLeases removes them); they just root nothing.
      const keepDigests = new Set<string>();
      for (const [ns, blobs] of graph.content) {
        for (const d of blobs.keys()) {
          if (marked.content.has(nodeKey(ns, d))) keepDigests.add(d);
          else db.run('DELETE FROM content WHERE ns = ? AND digest = ?', ns, d);
        }
      }
      const keepIngestDirs = new Set<string>();
      const removedIngestKeys = new Set<string>();
      for (const ing of graph.ingests) {
        if (marked.ingests.has(nodeKey(ing.ns, ing.ref))) {
          keepIngestDirs.add(ingestKey(ing.backendRef));
          // A shared ingest's blob has no record yet but must survive until the ingest commits.
          if (ing.expected) keepDigests.add(ing.expected);
        } else {
          db.run('DELETE FROM ingests WHERE ns = ? AND ref = ?', ing.ns, ing.ref);
          removedIngestKeys.add(ingestKey(ing.backendRef));
        }
      }
      for (const [backendRef, owner] of graph.locks) {
        if (this.#isOwnerAlive(owner)) keepIngestDirs.add(ingestKey(backendRef));
        else db.run('DELETE FROM ingest_locks WHERE backend_ref = ? AND owner = ?', backendRef, owner);
      }
      // Snapshots no root reaches. A kept snapshot keeps its parents, so chains stay whole; the deferred
      // foreign key would refuse the commit otherwise, so check it now, before any file is touched.
      const storages = new Map<string, SnapshotStorage>();
      for (const [key, node] of graph.snapshots) {
        if (marked.snapshots.has(key)) continue;
        db.run('DELETE FROM snapshots WHERE backend_id = ?', node.backendId);
        stats.removedSnapshots++;
        if (this.#snapshotsDir === undefined) continue;
        let storage = storages.get(node.snapshotter);
        if (!storage) {
          storage = new SnapshotStorage(this.#snapshotsDir, node.snapshotter);
          storages.set(node.snapshotter, storage);
        }
        // Backend ids are never reused once a deletion commits: the directory can go after the commit.
        doomedDirs.push({ dir: storage.dir(node.backendId), size: node.size });
      }
      if (stats.removedSnapshots > 0 && db.all('PRAGMA foreign_key_check(snapshots)').length > 0)
        throw new HoistError(
          'HOIST_INTERNAL',
          'garbage collection would leave snapshots without their parents; nothing was removed',
        );

      return { keepDigests, keepIngestDirs, removedIngestKeys, doomedDirs };
    });
  }

  /**
   * 2. Backend files no namespace records. After the records' commit, so a kill in between leaves files
   * without records (the next collection takes them; `system check` notes them) rather than records
   * whose files are gone (which check rightly calls missing blobs).
   */
  async #collectFiles(stats: GcStats, kept: KeptRecords): Promise<void> {
    const { keepDigests, keepIngestDirs, removedIngestKeys } = kept;
    const doomed: Digest[] = [];
    for await (const blob of this.#backend.walkBlobs())
      if (!keepDigests.has(blob.digest)) doomed.push(blob.digest);
    for (const d of doomed) {
      stats.removedBytes += await this.#backend.deleteBlob(d);
      stats.removedContent++;
    }
    for (const dir of await this.#backend.listIngestDirs()) {
      if (keepIngestDirs.has(dir.key)) continue;
      await this.#backend.removeIngestDir(dir.key);
      removedIngestKeys.add(dir.key);
      stats.removedIngestBytes += dir.bytes;
    }
    stats.removedIngests = removedIngestKeys.size;
  }

  /**
   * Delete leases that are expired or whose owner process is dead. A lease whose hoist.io/owner is alive is
   * never removed, whatever its expiry says: a running pull keeps its data.
   */
  async pruneLeases(opts: { now?: Date } = {}): Promise<PrunedLease[]> {
    const now = (opts.now ?? new Date()).getTime();
    const db = this.#db;
    return db.transaction(() => {
      const removed: PrunedLease[] = [];
      for (const lease of loadGraph(db).leases) {
        const owner = lease.labels[Labels.leaseOwner];
        if (owner !== undefined && this.#isOwnerAlive(owner)) continue;
        // Say "expired" whenever the expiry passed (the truer reason for the user); "owner-dead" only when
        // prune takes the lease early because its owner is provably gone.
        const exp = leaseExpiry(lease.labels);
        const reason: PrunedLease['reason'] | undefined =
          exp !== undefined && exp.getTime() <= now
            ? 'expired'
            : owner !== undefined
              ? 'owner-dead'
              : undefined;
        if (!reason) continue;
        db.run('DELETE FROM leases WHERE ns = ? AND id = ?', lease.ns, lease.id);
        removed.push({ namespace: lease.ns, id: lease.id, labels: lease.labels, reason });
      }
      return removed;
    });
  }

  /** Disk usage broken down by what keeps it (images, leases, partial ingests, snapshots) and what GC would free. */
  async usage(opts: { now?: Date } = {}): Promise<StoreUsage> {
    return computeUsage(
      this.#db,
      this.#backend,
      this.#isOwnerAlive,
      (opts.now ?? new Date()).getTime(),
      this.#snapshotsDir,
    );
  }
}
