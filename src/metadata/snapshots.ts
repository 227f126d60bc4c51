// Snapshot records in the metadata database (migration 2): one row per snapshot, per namespace and
// snapshotter, with its backend directory id. The snapshotters (src/snapshots) own the directories and
// call these inside their transactions; GC reads the table directly (src/gc/graph.ts).
import type { SnapshotInfo, SnapshotKind, SnapshotUsage } from '../api/snapshots.ts';
import { date, labelsJson, nsColumn, parseLabels } from './common.ts';
import type { MetadataDb } from './db.ts';
import type { NamespaceUsageCheck } from './namespaces.ts';

export interface SnapshotRecord {
  backendId: number;
  namespace: string;
  snapshotter: string;
  key: string;
  kind: SnapshotKind;
  parent: string | undefined;
  labels: Record<string, string>;
  /** Cached usage (committed snapshots, once computed). */
  usage: SnapshotUsage | undefined;
  createdAt: Date;
  updatedAt: Date;
}

interface SnapshotRow {
  backend_id: number;
  ns: string;
  snapshotter: string;
  key: string;
  kind: SnapshotKind;
  parent: string | null;
  labels: string;
  size: number | null;
  inodes: number | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = `backend_id, ns, snapshotter, key, kind, parent, labels, size, inodes, ${nsColumn('created_at')}, ${nsColumn('updated_at')}`;

function toRecord(r: SnapshotRow): SnapshotRecord {
  return {
    backendId: Number(r.backend_id),
    namespace: r.ns,
    snapshotter: r.snapshotter,
    key: r.key,
    kind: r.kind,
    parent: r.parent ?? undefined,
    labels: parseLabels(r.labels),
    usage:
      r.size === null || r.inodes === null ? undefined : { size: Number(r.size), inodes: Number(r.inodes) },
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

export function toSnapshotInfo(r: SnapshotRecord): SnapshotInfo {
  const info: SnapshotInfo = {
    kind: r.kind,
    name: r.key,
    labels: r.labels,
    created: r.createdAt,
    updated: r.updatedAt,
  };
  if (r.parent !== undefined) info.parent = r.parent;
  return info;
}

/** The records of one snapshotter. Writes must run inside db.transaction(). */
export class SnapshotRecords {
  readonly snapshotter: string;
  #db: MetadataDb;

  constructor(db: MetadataDb, snapshotter: string) {
    this.#db = db;
    this.snapshotter = snapshotter;
  }

  get(ns: string, key: string): SnapshotRecord | undefined {
    const row = this.#db.get<SnapshotRow>(
      `SELECT ${COLUMNS} FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?`,
      ns,
      this.snapshotter,
      key,
    );
    return row ? toRecord(row) : undefined;
  }

  *list(ns: string): Generator<SnapshotRecord> {
    for (const row of this.#db.iterate<SnapshotRow>(
      `SELECT ${COLUMNS} FROM snapshots WHERE ns = ? AND snapshotter = ? ORDER BY key`,
      ns,
      this.snapshotter,
    ))
      yield toRecord(row);
  }

  /** Backend ids of `key`'s parents, nearest first (not including `key` itself). */
  parentIds(ns: string, key: string): number[] {
    return this.#db
      .all<{ backend_id: number }>(
        `WITH RECURSIVE chain (key, parent, backend_id, depth) AS (
           SELECT key, parent, backend_id, 0 FROM snapshots WHERE ns = ?1 AND snapshotter = ?2 AND key = ?3
           UNION ALL
           SELECT s.key, s.parent, s.backend_id, c.depth + 1 FROM snapshots s
             JOIN chain c ON s.ns = ?1 AND s.snapshotter = ?2 AND s.key = c.parent
         )
         SELECT backend_id FROM chain WHERE depth > 0 ORDER BY depth`,
        ns,
        this.snapshotter,
        key,
      )
      .map((r) => Number(r.backend_id));
  }

  hasChildren(ns: string, key: string): boolean {
    return (
      this.#db.get(
        'SELECT 1 AS x FROM snapshots WHERE ns = ? AND snapshotter = ? AND parent = ? LIMIT 1',
        ns,
        this.snapshotter,
        key,
      ) !== undefined
    );
  }

  /** Insert an active or view snapshot; returns its backend id. */
  insert(
    ns: string,
    s: { key: string; kind: 'active' | 'view'; parent: string | undefined; labels: Record<string, string> },
    now: bigint,
  ): number {
    this.#db.run(
      `INSERT INTO snapshots (ns, snapshotter, key, kind, parent, labels, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ns,
      this.snapshotter,
      s.key,
      s.kind,
      s.parent ?? null,
      labelsJson(s.labels),
      now,
      now,
    );
    return this.get(ns, s.key)!.backendId;
  }

  /**
   * Rename the active `key` to the committed `name` (same backend directory); labels are replaced. A
   * `parent` rebases it (the caller checked it is committed and that `key` had none).
   */
  commit(
    ns: string,
    key: string,
    name: string,
    labels: Record<string, string>,
    now: bigint,
    parent?: string,
  ): void {
    this.#db.run(
      `UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, size = NULL, inodes = NULL,
         parent = coalesce(?, parent), created_at = ?, updated_at = ? WHERE ns = ? AND snapshotter = ? AND key = ?`,
      name,
      labelsJson(labels),
      parent ?? null,
      now,
      now,
      ns,
      this.snapshotter,
      key,
    );
  }

  delete(ns: string, key: string): void {
    this.#db.run(
      'DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?',
      ns,
      this.snapshotter,
      key,
    );
  }

  setLabels(ns: string, key: string, labels: Record<string, string>, now: bigint): void {
    this.#db.run(
      'UPDATE snapshots SET labels = ?, updated_at = ? WHERE ns = ? AND snapshotter = ? AND key = ?',
      labelsJson(labels),
      now,
      ns,
      this.snapshotter,
      key,
    );
  }

  /** Every backend id this snapshotter has a record for, over all namespaces. */
  backendIds(): Set<number> {
    const out = new Set<number>();
    for (const r of this.#db.iterate<{ backend_id: number }>(
      'SELECT backend_id FROM snapshots WHERE snapshotter = ?',
      this.snapshotter,
    ))
      out.add(Number(r.backend_id));
    return out;
  }
}

/** Remember a committed snapshot's usage (only if that backend id is still a committed snapshot). */
export async function cacheSnapshotUsage(
  db: MetadataDb,
  backendId: number,
  usage: SnapshotUsage,
): Promise<void> {
  await db.transaction(() => {
    db.run(
      "UPDATE snapshots SET size = ?, inodes = ? WHERE backend_id = ? AND kind = 'committed'",
      usage.size,
      usage.inodes,
      backendId,
    );
  });
}

/** Namespace deletion is refused while it has snapshots (containerd: `snapshots on "<sn>" snapshotter`). */
export function snapshotUsageCheck(db: MetadataDb): NamespaceUsageCheck {
  return (ns) =>
    db
      .all<{ snapshotter: string }>(
        'SELECT DISTINCT snapshotter FROM snapshots WHERE ns = ? ORDER BY snapshotter',
        ns,
      )
      .map((r) => `snapshots on ${JSON.stringify(r.snapshotter)} snapshotter`);
}
