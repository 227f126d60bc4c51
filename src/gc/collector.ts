// Mark & sweep garbage collection over the metadata records and the backend files, plus lease pruning.
//
// Race safety across processes: mark, the record sweep AND the deletion of backend files all happen inside
// one SQLite write transaction. Content writers publish blobs (rename into blobs/) and record "the backend
// already has it" inside write transactions too, so no process can record a blob GC is deleting.
import { ingestKey, type LocalContentBackend } from '../content/local.ts';
import type { Digest } from '../core/digest.ts';
import { Labels } from '../core/labels.ts';
import type { MetadataDb } from '../metadata/db.ts';
import type { GarbageCollector, GcStats } from '../metadata/types.ts';
import { gcRoots, leaseExpiry, loadGraph, mark, nodeKey } from './graph.ts';
import { computeUsage, type StoreUsage } from './usage.ts';

export interface CollectorDeps {
  db: MetadataDb;
  backend: LocalContentBackend;
  isOwnerAlive: (owner: string) => boolean;
}

export interface PrunedLease {
  namespace: string;
  id: string;
  labels: Record<string, string>;
  /** Why it went: its expiry passed, or its owner process is gone. */
  reason: 'expired' | 'owner-dead';
}

export class Collector implements GarbageCollector {
  #db: MetadataDb;
  #backend: LocalContentBackend;
  #isOwnerAlive: (owner: string) => boolean;

  constructor(deps: CollectorDeps) {
    this.#db = deps.db;
    this.#backend = deps.backend;
    this.#isOwnerAlive = deps.isOwnerAlive;
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
      durationMs: 0,
    };
    await db.transaction(async () => {
      const graph = loadGraph(db);
      const marked = mark(graph, gcRoots(graph, now, this.#isOwnerAlive));

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

      // 2. Backend files no namespace records (still under the write lock).
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
    });
    stats.durationMs = performance.now() - started;
    return stats;
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
        let reason: PrunedLease['reason'] | undefined;
        if (owner !== undefined) {
          if (this.#isOwnerAlive(owner)) continue;
          reason = 'owner-dead';
        } else {
          const exp = leaseExpiry(lease.labels);
          if (exp !== undefined && exp.getTime() <= now) reason = 'expired';
        }
        if (!reason) continue;
        db.run('DELETE FROM leases WHERE ns = ? AND id = ?', lease.ns, lease.id);
        removed.push({ namespace: lease.ns, id: lease.id, labels: lease.labels, reason });
      }
      return removed;
    });
  }

  /** Disk usage broken down by what keeps it (images, leases, partial ingests) and what GC would free. */
  async usage(opts: { now?: Date } = {}): Promise<StoreUsage> {
    return computeUsage(this.#db, this.#backend, this.#isOwnerAlive, (opts.now ?? new Date()).getTime());
  }
}
