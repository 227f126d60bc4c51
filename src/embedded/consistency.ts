// `hoist system check`: is the store consistent? The database is intact, every record has what it
// describes on disk (content records their blob of the right size, snapshots their directory), and every
// image's content is present or accounted for (missing blobs with a recorded source to fetch them from,
// like lazily fetched or discarded layers). Leftovers GC reclaims (files no record names, unreferenced
// records) are reported as notes, not failures: a crash between writing a file and recording it leaves
// exactly those, by design.
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConsistencyFinding, ConsistencyOptions, ConsistencyReport } from '../api/maintenance.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { type Digest, DigestVerifier } from '../core/digest.ts';
import { isNotFound } from '../core/errors.ts';
import { checkContent } from '../images/missing.ts';
import { ALL_PLATFORMS } from '../images/walk.ts';
import { SnapshotStorage, snapshotsRoot } from '../snapshots/storage.ts';
import type { LocalStore } from './store.ts';

interface ContentRow {
  ns: string;
  digest: string;
  size: number;
}
interface SnapshotRow {
  ns: string;
  snapshotter: string;
  key: string;
  kind: string;
  backend_id: number;
}

export async function checkConsistency(
  store: LocalStore,
  opts: ConsistencyOptions = {},
): Promise<ConsistencyReport> {
  const problems: ConsistencyFinding[] = [];
  const notes: ConsistencyFinding[] = [];
  const db = store.db;

  // 1. The database itself.
  const integrity = db.all<{ integrity_check: string }>('PRAGMA integrity_check');
  for (const r of integrity)
    if (r.integrity_check !== 'ok')
      problems.push({ kind: 'database-corrupt', subject: 'metadata.db', detail: r.integrity_check });
  for (const r of db.all<{ table: string; rowid: number; parent: string }>('PRAGMA foreign_key_check'))
    problems.push({
      kind: 'dangling-reference',
      subject: `${r.table} row ${r.rowid}`,
      detail: `refers to a missing ${r.parent} record`,
    });

  // 2. Records against the disk, read in one transaction so the records are one consistent view.
  const { content, snapshots, ingests, images } = await db.transaction(() => ({
    content: db.all<ContentRow>('SELECT ns, digest, size FROM content ORDER BY digest, ns'),
    snapshots: db.all<SnapshotRow>('SELECT ns, snapshotter, key, kind, backend_id FROM snapshots'),
    ingests: db.all<{ backend_ref: string }>('SELECT backend_ref FROM ingests'),
    images: db.all<{ ns: string; name: string; target_digest: string }>(
      'SELECT ns, name, target_digest FROM images',
    ),
  }));

  const files = new Map<string, number>();
  for await (const b of store.backend.walkBlobs()) files.set(b.digest, b.size);
  const recorded = new Set<string>();
  let verified = 0;
  for (const row of content) {
    const first = !recorded.has(row.digest);
    recorded.add(row.digest);
    const size = files.get(row.digest);
    if (size === undefined) {
      if (await stillRecorded(store, row))
        // removed by GC since the read: not a problem
        problems.push({
          kind: 'blob-missing',
          namespace: row.ns,
          subject: row.digest,
          detail: `recorded (${row.size} bytes) but content/blobs has no file for it`,
        });
      continue;
    }
    if (size !== row.size) {
      problems.push({
        kind: 'blob-size-mismatch',
        namespace: row.ns,
        subject: row.digest,
        detail: `recorded as ${row.size} bytes, the file has ${size}`,
      });
      continue;
    }
    if (opts.verify && first) {
      const actual = await hashFile(store.backend.blobPath(row.digest as Digest)).catch(() => undefined);
      verified++;
      if (actual !== undefined && actual !== row.digest)
        problems.push({
          kind: 'blob-digest-mismatch',
          namespace: row.ns,
          subject: row.digest,
          detail: `the file's bytes hash to ${actual}`,
        });
    }
  }
  for (const [digest, size] of files)
    if (!recorded.has(digest))
      notes.push({
        kind: 'unrecorded-blob',
        subject: digest,
        detail: `${size} bytes no record names; GC removes it`,
      });

  // Snapshot directories.
  const snapDir = snapshotsRoot(store.root);
  const byDir = new Map<string, SnapshotRow>();
  for (const s of snapshots) byDir.set(`${s.snapshotter}/${s.backend_id}`, s);
  for (const s of snapshots) {
    const dir = new SnapshotStorage(snapDir, s.snapshotter).fs(s.backend_id);
    if (await exists(dir)) continue;
    const still = db.get('SELECT 1 AS x FROM snapshots WHERE backend_id = ?', s.backend_id);
    if (still)
      problems.push({
        kind: 'snapshot-dir-missing',
        namespace: s.ns,
        subject: `${s.snapshotter}/${s.key}`,
        detail: `${s.kind} snapshot whose directory ${dir} is gone`,
      });
  }
  for (const sn of store.snapshotters.keys()) {
    const dir = join(snapDir, sn, 'snapshots');
    for (const id of await readdir(dir).catch(() => [] as string[]))
      if (
        !byDir.has(`${sn}/${id}`) &&
        !db.get('SELECT 1 AS x FROM snapshots WHERE backend_id = ?', Number(id))
      )
        notes.push({
          kind: 'unrecorded-snapshot-dir',
          subject: join(dir, id),
          detail: 'a snapshot directory no record names (an interrupted prepare or removal); GC removes it',
        });
  }

  // Ingest directories no ingest record names (a writer that died before recording, or GC mid-way).
  const ingestRefs = new Set(ingests.map((i) => i.backend_ref));
  for (const d of await store.backend.listIngestDirs())
    if (d.ref === undefined || !ingestRefs.has(d.ref))
      notes.push({
        kind: 'unrecorded-ingest-dir',
        subject: d.key,
        detail: `${d.bytes} bytes of partial data no ingest record names; GC removes it`,
      });

  // 3. Every image: its content present, or accounted for by a source to fetch it from.
  const targets = new Map<string, { ns: string; names: string[] }>();
  for (const im of images) {
    const key = `${im.ns}\u0000${im.target_digest}`;
    const t = targets.get(key) ?? { ns: im.ns, names: [] };
    t.names.push(im.name);
    targets.set(key, t);
  }
  for (const { ns, names } of targets.values()) {
    const name = names.sort()[0]!;
    const ctx = { namespace: ns };
    let target: Descriptor;
    try {
      target = (await store.images.get(ctx, name)).target;
    } catch (err) {
      if (isNotFound(err)) continue; // removed since the read
      throw err;
    }
    const presence = await checkContent(store.content, ctx, target, ALL_PLATFORMS);
    // Missing: no record, or a record whose file is gone (already a problem above; the image lacks it too).
    const lacking = presence.required.filter(
      (d) => presence.missing.includes(d) || (!files.has(d.digest) && !ingestedSince(store, d.digest)),
    );
    if (lacking.length === 0) continue;
    const sources = [...presence.sources].flatMap(([host, repos]) => [...repos].map((r) => `${host}/${r}`));
    const missing = lacking.map((d) => d.digest);
    const bytes = lacking.reduce((a, d) => a + d.size, 0);
    if (missing.includes(target.digest) || sources.length === 0)
      problems.push({
        kind: 'image-content-missing',
        namespace: ns,
        subject: name,
        detail: `${missing.length} blob(s) missing and no source recorded to fetch them from: ${missing.join(', ')}`,
      });
    else
      notes.push({
        kind: 'image-content-fetchable',
        namespace: ns,
        subject: name,
        detail: `${missing.length} blob(s), ${bytes} bytes, not in the store (lazily fetched, other platforms or discarded after unpack); fetched from ${sources.join(', ')} when needed`,
      });
  }

  return {
    ok: problems.length === 0,
    checked: {
      images: targets.size,
      contentRecords: content.length,
      blobFiles: files.size,
      snapshots: snapshots.length,
      ingests: ingests.length,
      verifiedBlobs: verified,
    },
    problems,
    notes,
  };
}

async function stillRecorded(store: LocalStore, row: ContentRow): Promise<boolean> {
  return (
    store.db.get('SELECT 1 AS x FROM content WHERE ns = ? AND digest = ?', row.ns, row.digest) !== undefined
  );
}

/** A blob committed after the file walk (a pull running beside the check): present after all. */
function ingestedSince(store: LocalStore, digest: string): boolean {
  return existsSync(store.backend.blobPath(digest as Digest));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The digest of a file's bytes, streamed (one digest verifier for the whole code base). */
async function hashFile(path: string): Promise<Digest> {
  const v = new DigestVerifier('sha256');
  await pipeline(
    createReadStream(path),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        v.update(chunk);
        cb();
      },
    }),
  );
  return v.digest();
}
