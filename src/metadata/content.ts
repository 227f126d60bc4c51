// ContentStore with containerd's metadata semantics over the shared backend: a blob is visible in a
// namespace only once recorded there; ingests are recorded (and leased) before any byte hits the disk;
// one writer per ingest across processes (ingest_locks, owner = process identity).
import type { Readable } from 'node:stream';
import type {
  ContentInfo,
  ContentStore,
  ContentWriter,
  IngestStatus,
  WriterOptions,
} from '../api/content.ts';
import type { LocalContentBackend } from '../content/local.ts';
import type { Context } from '../core/context.ts';
import { type Digest, parseDigest } from '../core/digest.ts';
import { alreadyExists, failedPrecondition, HoistError, invalidArgument, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { nowNs } from '../core/time.ts';
import { describeOwner } from '../leases/owner.ts';
import {
  addLeaseResource,
  date,
  ensureNamespace,
  labelsJson,
  namespaceOf,
  nsColumn,
  parseLabels,
  requireContextLease,
} from './common.ts';
import {
  IngestContentWriter,
  lockedError,
  releaseIngestLock,
  retryWhileLocked,
  SharedContentWriter,
  tryIngestLock,
  type WriterTarget,
} from './content-writer.ts';
import type { MetadataDb } from './db.ts';
import { compileFilters, mapField } from './filters.ts';

export { type BlobSource, writeBlob } from './write-blob.ts';

/** containerd: an ingest outside any lease is a GC root for 24 hours. */
export const UNLEASED_INGEST_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_READ_BLOB_MAX = 16 << 20;

export interface ContentStoreDeps {
  db: MetadataDb;
  backend: LocalContentBackend;
  /** This process's identity (src/leases/owner.ts), written into ingest locks. */
  owner: string;
  isOwnerAlive: (owner: string) => boolean;
}

interface ContentRow {
  digest: string;
  size: number;
  labels: string;
  created_at: string;
  updated_at: string;
}

const CONTENT_COLUMNS = `digest, size, labels, ${nsColumn('created_at')}, ${nsColumn('updated_at')}`;

interface IngestRow {
  ref: string;
  backend_ref: string;
  expected: string | null;
  total: number;
  shared: number;
  created_at: string;
}

const INGEST_COLUMNS = `ref, backend_ref, expected, total, shared, ${nsColumn('created_at')}`;

function toInfo(r: ContentRow): ContentInfo {
  return {
    digest: r.digest as Digest,
    size: Number(r.size),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    labels: parseLabels(r.labels),
  };
}

const contentNotFound = (d: string) => notFound(`content digest ${d}: not found`);
const ingestNotFound = (ref: string) => notFound(`ingest ref ${JSON.stringify(ref)}: not found`);

export class MetadataContentStore implements ContentStore {
  #db: MetadataDb;
  #backend: LocalContentBackend;
  #owner: string;
  #isOwnerAlive: (owner: string) => boolean;

  constructor(deps: ContentStoreDeps) {
    this.#db = deps.db;
    this.#backend = deps.backend;
    this.#owner = deps.owner;
    this.#isOwnerAlive = deps.isOwnerAlive;
  }

  #row(ns: string, d: Digest): ContentRow | undefined {
    return this.#db.get<ContentRow>(
      `SELECT ${CONTENT_COLUMNS} FROM content WHERE ns = ? AND digest = ?`,
      ns,
      d,
    );
  }

  async info(ctx: Context, digest: Digest): Promise<ContentInfo> {
    const ns = namespaceOf(ctx);
    const row = this.#row(ns, parseDigest(digest));
    if (!row) throw contentNotFound(digest);
    return toInfo(row);
  }

  async update(
    ctx: Context,
    info: { digest: Digest; labels: Record<string, string> },
    fieldpaths: string[] = [],
  ): Promise<ContentInfo> {
    const ns = namespaceOf(ctx);
    const d = parseDigest(info.digest);
    return this.#db.transaction(() => {
      const row = this.#row(ns, d);
      if (!row) throw contentNotFound(d);
      let labels = parseLabels(row.labels);
      if (fieldpaths.length === 0) labels = { ...info.labels };
      for (const path of fieldpaths) {
        if (path === 'labels') labels = { ...info.labels };
        else if (path.startsWith('labels.')) {
          const key = path.slice('labels.'.length);
          const v = info.labels[key];
          if (v === undefined || v === '') delete labels[key];
          else labels[key] = v;
        } else
          throw invalidArgument(
            `cannot update ${JSON.stringify(path)} field on content info ${JSON.stringify(d)}: invalid argument`,
          );
      }
      validateLabels(labels, 'info.Labels');
      const now = nowNs();
      this.#db.run(
        'UPDATE content SET labels = ?, updated_at = ? WHERE ns = ? AND digest = ?',
        labelsJson(labels),
        now,
        ns,
        d,
      );
      return toInfo({ ...row, labels: labelsJson(labels), updated_at: String(now) });
    });
  }

  async list(ctx: Context, filters?: string[]): Promise<ContentInfo[]> {
    const ns = namespaceOf(ctx);
    const filter = compileFilters(filters);
    const out: ContentInfo[] = [];
    for (const row of this.#db.iterate<ContentRow>(
      `SELECT ${CONTENT_COLUMNS} FROM content WHERE ns = ? ORDER BY digest`,
      ns,
    )) {
      const info = toInfo(row);
      const ok = filter.match((path) => {
        if (path.length === 1 && path[0] === 'digest') return info.digest;
        if (path.length === 1 && path[0] === 'size') return String(info.size);
        if (path[0] === 'labels') return mapField(info.labels, path.slice(1));
        return undefined;
      });
      if (ok) out.push(info);
    }
    return out;
  }

  async delete(ctx: Context, digest: Digest): Promise<void> {
    const ns = namespaceOf(ctx);
    const d = parseDigest(digest);
    await this.#db.transaction(() => {
      const { changes } = this.#db.run('DELETE FROM content WHERE ns = ? AND digest = ?', ns, d);
      if (changes === 0) throw contentNotFound(d);
      if (ctx.lease)
        this.#db.run(
          "DELETE FROM lease_resources WHERE ns = ? AND lease_id = ? AND type = 'content' AND id = ?",
          ns,
          ctx.lease,
          d,
        );
    });
  }

  async reader(ctx: Context, digest: Digest, opts?: { offset?: number; length?: number }): Promise<Readable> {
    const ns = namespaceOf(ctx);
    const d = parseDigest(digest);
    if (!this.#row(ns, d)) throw contentNotFound(d);
    try {
      return await this.#backend.reader(d, opts);
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_NOT_FOUND')
        throw notFound(
          `content digest ${d}: not found`,
          'the blob is recorded but its file is missing from the store; pull the image again',
        );
      throw err;
    }
  }

  async readBlob(ctx: Context, digest: Digest, maxBytes = DEFAULT_READ_BLOB_MAX): Promise<Buffer> {
    const info = await this.info(ctx, digest);
    if (info.size > maxBytes)
      throw failedPrecondition(
        `content ${digest} is ${info.size} bytes, more than the ${maxBytes} bytes allowed for a manifest or config: failed precondition`,
      );
    const chunks: Buffer[] = [];
    for await (const chunk of await this.reader(ctx, digest)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async writer(ctx: Context, opts: WriterOptions): Promise<ContentWriter> {
    const ns = namespaceOf(ctx);
    if (!opts.ref) throw invalidArgument('ref must not be empty: invalid argument');
    const expected = opts.expected
      ? { digest: parseDigest(opts.expected.digest), size: opts.expected.size }
      : undefined;
    const ref = opts.ref;
    const backendRef = `${ns}/${ref}`;
    const db = this.#db;
    const attempt = () =>
      db.transaction(async () => {
        // Deadlines (expires_at, a lock's since) are in milliseconds; the ingest's stamp in nanoseconds.
        const nowMs = Date.now();
        const now = nowNs();
        const lease = requireContextLease(db, ns, ctx);
        ensureNamespace(db, ns, now);
        const upsertIngest = (shared: boolean, total: number) => {
          db.run(
            `INSERT INTO ingests (ns, ref, backend_ref, expected, total, shared, expires_at, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (ns, ref) DO UPDATE SET backend_ref = excluded.backend_ref, expected = excluded.expected,
             total = excluded.total, shared = excluded.shared, expires_at = excluded.expires_at`,
            ns,
            ref,
            backendRef,
            expected?.digest ?? null,
            total,
            shared ? 1 : 0,
            lease ? null : nowMs + UNLEASED_INGEST_TTL_MS,
            now,
          );
          if (lease) addLeaseResource(db, ns, lease, 'ingests', ref);
        };
        if (expected) {
          if (this.#row(ns, expected.digest)) {
            if (lease) addLeaseResource(db, ns, lease, 'content', expected.digest);
            return { kind: 'exists' as const };
          }
          // Checked inside the write transaction: GC sweeps files under the same lock, so the blob stays.
          const size = await this.#backend.blobSize(expected.digest);
          if (size !== undefined && (expected.size <= 0 || size === expected.size)) {
            upsertIngest(true, size);
            return { kind: 'shared' as const, size };
          }
        }
        // No lock, or its owner died: take it over. The ingest record goes in before the directory exists.
        const holder = tryIngestLock(db, backendRef, this.#owner, this.#isOwnerAlive);
        if (holder) return { kind: 'locked' as const, holder };
        upsertIngest(false, expected?.size ?? 0);
        return { kind: 'write' as const };
      });
    const plan = await retryWhileLocked(ctx.signal, attempt);
    const target: WriterTarget = {
      db,
      backend: this.#backend,
      owner: this.#owner,
      isOwnerAlive: this.#isOwnerAlive,
      ctx,
      ns,
      ref,
      backendRef,
    };
    switch (plan.kind) {
      case 'exists':
        throw alreadyExists(`content ${expected?.digest}: already exists`);
      case 'locked':
        throw lockedError(ref, plan.holder);
      case 'shared':
        return new SharedContentWriter(target, expected!.digest, plan.size);
      case 'write':
        try {
          const total = expected && expected.size > 0 ? expected.size : 0;
          return new IngestContentWriter(target, await this.#backend.openWriter(backendRef, { total }));
        } catch (err) {
          await releaseIngestLock(db, backendRef, this.#owner);
          throw err;
        }
    }
  }

  #ingest(ns: string, ref: string): IngestRow | undefined {
    return this.#db.get<IngestRow>(`SELECT ${INGEST_COLUMNS} FROM ingests WHERE ns = ? AND ref = ?`, ns, ref);
  }

  async #statusOf(row: IngestRow): Promise<IngestStatus> {
    const base = { ref: row.ref, ...(row.expected ? { expected: row.expected as Digest } : {}) };
    if (row.shared) {
      const at = date(row.created_at);
      return { ...base, offset: Number(row.total), total: Number(row.total), startedAt: at, updatedAt: at };
    }
    const st = await this.#backend.status(row.backend_ref);
    return {
      ...base,
      offset: st.offset,
      total: st.total || Number(row.total),
      startedAt: st.startedAt,
      updatedAt: st.updatedAt,
    };
  }

  async status(ctx: Context, ref: string): Promise<IngestStatus> {
    const ns = namespaceOf(ctx);
    const row = this.#ingest(ns, ref);
    if (!row) throw ingestNotFound(ref);
    try {
      return await this.#statusOf(row);
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_NOT_FOUND') throw ingestNotFound(ref);
      throw err;
    }
  }

  async listStatuses(ctx: Context, filters?: string[]): Promise<IngestStatus[]> {
    const ns = namespaceOf(ctx);
    const filter = compileFilters(filters);
    const rows = this.#db.all<IngestRow>(
      `SELECT ${INGEST_COLUMNS} FROM ingests WHERE ns = ? ORDER BY ref`,
      ns,
    );
    const out: IngestStatus[] = [];
    for (const row of rows) {
      const ok = filter.match((path) => {
        if (path.length !== 1) return undefined;
        if (path[0] === 'ref') return row.ref;
        if (path[0] === 'expected') return row.expected ?? undefined;
        return undefined;
      });
      if (!ok) continue;
      try {
        out.push(await this.#statusOf(row));
      } catch (err) {
        // containerd skips ingests whose backend writer does not exist (yet).
        if (!(err instanceof HoistError && err.code === 'HOIST_NOT_FOUND')) throw err;
      }
    }
    return out;
  }

  async abort(ctx: Context, ref: string): Promise<void> {
    const ns = namespaceOf(ctx);
    const db = this.#db;
    await db.transaction(async () => {
      const row = this.#ingest(ns, ref);
      if (!row) throw ingestNotFound(ref);
      const lock = db.get<{ owner: string; since: number }>(
        'SELECT owner, since FROM ingest_locks WHERE backend_ref = ?',
        row.backend_ref,
      );
      if (lock && (lock.owner === this.#owner || this.#isOwnerAlive(lock.owner)))
        throw new HoistError(
          'HOIST_LOCKED',
          `ref ${ref} locked by ${describeOwner(lock.owner)} since ${new Date(Number(lock.since)).toISOString()}: unavailable`,
          { hint: 'a writer is still open on this ingest; close it (or wait for it) before aborting' },
        );
      db.run('DELETE FROM ingests WHERE ns = ? AND ref = ?', ns, ref);
      db.run("DELETE FROM lease_resources WHERE ns = ? AND type = 'ingests' AND id = ?", ns, ref);
      db.run('DELETE FROM ingest_locks WHERE backend_ref = ?', row.backend_ref);
      // Removed under the write lock, so a writer in another process cannot recreate it in between.
      if (!row.shared) await this.#backend.abort(row.backend_ref);
    });
  }
}
