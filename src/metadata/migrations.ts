// Schema migrations, applied in order by MetadataDb.open; `PRAGMA user_version` records the last one.
// Never edit a released migration: append a new one.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'namespaces, images, content, ingests, leases, ingest locks',
    sql: `
      CREATE TABLE namespaces (
        name TEXT PRIMARY KEY,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      );

      CREATE TABLE images (
        ns TEXT NOT NULL REFERENCES namespaces(name),
        name TEXT NOT NULL,
        target_digest TEXT NOT NULL,
        target_media_type TEXT NOT NULL,
        target_size INTEGER NOT NULL,
        target_annotations TEXT NOT NULL DEFAULT '{}',
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (ns, name)
      );
      CREATE INDEX images_by_target ON images (ns, target_digest);

      CREATE TABLE content (
        ns TEXT NOT NULL REFERENCES namespaces(name),
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (ns, digest)
      );
      CREATE INDEX content_by_digest ON content (digest);

      -- shared = 1: the blob already existed in the backend, no bytes are written (containerd's
      -- "expected" ingest); expires_at is set only for ingests outside a lease.
      CREATE TABLE ingests (
        ns TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
        ref TEXT NOT NULL,
        backend_ref TEXT NOT NULL,
        expected TEXT,
        total INTEGER NOT NULL DEFAULT 0,
        shared INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (ns, ref)
      );
      CREATE INDEX ingests_by_backend_ref ON ingests (backend_ref);

      CREATE TABLE leases (
        ns TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE,
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        PRIMARY KEY (ns, id)
      );

      CREATE TABLE lease_resources (
        ns TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (ns, lease_id, type, id),
        FOREIGN KEY (ns, lease_id) REFERENCES leases (ns, id) ON DELETE CASCADE
      );
      CREATE INDEX lease_resources_by_resource ON lease_resources (ns, type, id);

      -- One writer per backend ingest across processes; owner = <boot-id>/<pid>/<start-ticks>.
      CREATE TABLE ingest_locks (
        backend_ref TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        since INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'snapshots',
    sql: `
      -- One row per snapshot, named per namespace like containerd's metadata snapshotter. backend_id names
      -- the directory <root>/snapshots/<snapshotter>/snapshots/<backend_id> (never reused: AUTOINCREMENT).
      -- parent is the key of a committed snapshot in the same namespace and snapshotter; the deferred
      -- foreign key lets GC delete a whole chain in any order within one transaction, and still refuses
      -- to commit a transaction that would leave a child without its parent.
      -- size/inodes: usage cached for committed snapshots (NULL until first computed).
      CREATE TABLE snapshots (
        backend_id INTEGER PRIMARY KEY AUTOINCREMENT,
        ns TEXT NOT NULL REFERENCES namespaces(name),
        snapshotter TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
        parent TEXT,
        labels TEXT NOT NULL DEFAULT '{}',
        size INTEGER,
        inodes INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (ns, snapshotter, key),
        FOREIGN KEY (ns, snapshotter, parent) REFERENCES snapshots (ns, snapshotter, key)
          DEFERRABLE INITIALLY DEFERRED
      );
      CREATE INDEX snapshots_by_parent ON snapshots (ns, snapshotter, parent);
      CREATE INDEX snapshots_by_snapshotter ON snapshots (snapshotter, backend_id);
    `,
  },
  {
    version: 3,
    description: 'timestamps in nanoseconds',
    sql: `
      -- containerd keeps nanoseconds and its clients compare them with their own clock (src/core/time.ts):
      -- the times the API returns are now int64 nanoseconds since the epoch. Read them as text
      -- (CAST(... AS TEXT)): they are beyond a JS number's exact range. ingests.expires_at and
      -- ingest_locks.since stay milliseconds: deadlines compared with Date.now(), never sent to clients.
      UPDATE namespaces SET created_at = created_at * 1000000;
      UPDATE images SET created_at = created_at * 1000000, updated_at = updated_at * 1000000;
      UPDATE content SET created_at = created_at * 1000000, updated_at = updated_at * 1000000;
      UPDATE ingests SET created_at = created_at * 1000000;
      UPDATE leases SET created_at = created_at * 1000000;
      UPDATE snapshots SET created_at = created_at * 1000000, updated_at = updated_at * 1000000;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
