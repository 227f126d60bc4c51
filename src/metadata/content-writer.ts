// The namespaced content writers handed out by MetadataContentStore.writer(): one that streams bytes into
// a backend ingest, and a "shared" one for a blob the backend already has (commit only records it).
// Committing moves the blob into blobs/ INSIDE the metadata write transaction, so a garbage collection
// in another process (which sweeps files while holding that lock) can never delete a just-published blob.

import type { ContentWriter } from '../api/content.ts';
import type { LocalContentBackend, LocalIngestWriter } from '../content/local.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { alreadyExists, failedPrecondition, HoistError, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { nowNs } from '../core/time.ts';
import { addLeaseResource, ensureNamespace, labelsJson, removeLeaseResource } from './common.ts';
import type { MetadataDb } from './db.ts';

export interface WriterTarget {
  db: MetadataDb;
  backend: LocalContentBackend;
  owner: string;
  ctx: Context;
  ns: string;
  ref: string;
  backendRef: string;
}

/** Release this process's lock on a backend ref (no-op if someone took it over). */
export async function releaseIngestLock(db: MetadataDb, backendRef: string, owner: string): Promise<void> {
  await db.transaction(() => {
    db.run('DELETE FROM ingest_locks WHERE backend_ref = ? AND owner = ?', backendRef, owner);
  });
}

/**
 * Record a committed blob in the namespace and retire the ingest, in the caller's transaction.
 * Returns false when the namespace already had the blob (it is still added to the context's lease).
 */
function recordBlob(t: WriterTarget, d: Digest, size: number, labels: Record<string, string>): boolean {
  const { db, ns, ctx } = t;
  const now = nowNs();
  // The namespace may have been deleted while the writer was open; it comes back with the blob.
  ensureNamespace(db, ns, now);
  db.run('DELETE FROM ingests WHERE ns = ? AND ref = ?', ns, t.ref);
  db.run('DELETE FROM ingest_locks WHERE backend_ref = ? AND owner = ?', t.backendRef, t.owner);
  // The lease may have been deleted meanwhile: the commit still succeeds, unleased.
  const lease =
    ctx.lease && db.get('SELECT 1 AS x FROM leases WHERE ns = ? AND id = ?', ns, ctx.lease)
      ? ctx.lease
      : undefined;
  if (lease) {
    removeLeaseResource(db, ns, lease, 'ingests', t.ref);
    addLeaseResource(db, ns, lease, 'content', d);
  }
  if (db.get('SELECT 1 AS x FROM content WHERE ns = ? AND digest = ?', ns, d)) return false;
  db.run(
    'INSERT INTO content (ns, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    ns,
    d,
    size,
    labelsJson(labels),
    now,
    now,
  );
  return true;
}

/** Streams into a backend ingest; holds the cross-process lock on the backend ref until close/commit. */
export class IngestContentWriter implements ContentWriter {
  readonly ref: string;
  #t: WriterTarget;
  #backend: LocalIngestWriter;
  #finished = false;

  constructor(target: WriterTarget, backend: LocalIngestWriter) {
    this.ref = target.ref;
    this.#t = target;
    this.#backend = backend;
  }

  get offset(): number {
    return this.#backend.offset;
  }

  #live(): void {
    if (this.#finished) throw failedPrecondition(`writer for ${this.ref} is closed: failed precondition`);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#live();
    this.#t.ctx.signal?.throwIfAborted();
    await this.#backend.write(chunk);
  }

  digest(): Digest {
    return this.#backend.digest();
  }

  async commit(size: number, expected?: Digest, labels: Record<string, string> = {}): Promise<void> {
    this.#live();
    validateLabels(labels, 'info.Labels');
    const t = this.#t;
    this.#finished = true;
    let created = false;
    let d: Digest | undefined;
    try {
      // Slow part (fsync) outside the transaction; the publish (rename) inside it.
      d = await this.#backend.verify(size, expected);
      const digest = d;
      const bytes = this.#backend.offset;
      created = await t.db.transaction(async () => {
        await this.#backend.publish(digest);
        return recordBlob(t, digest, bytes, labels);
      });
    } finally {
      if (!this.#backend.closed) await this.#backend.close().catch(() => undefined);
      await releaseIngestLock(t.db, t.backendRef, t.owner);
    }
    if (!created) throw alreadyExists(`content ${d}: already exists`);
  }

  async close(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    try {
      await this.#backend.close();
    } finally {
      await releaseIngestLock(this.#t.db, this.#t.backendRef, this.#t.owner);
    }
  }

  async truncate(size: 0): Promise<void> {
    this.#live();
    await this.#backend.truncate(size);
  }
}

/** The backend already has the blob (from another namespace): nothing to transfer, commit records it. */
export class SharedContentWriter implements ContentWriter {
  readonly ref: string;
  readonly offset: number;
  #t: WriterTarget;
  #expected: Digest;
  #finished = false;

  constructor(target: WriterTarget, expected: Digest, size: number) {
    this.ref = target.ref;
    this.#t = target;
    this.#expected = expected;
    this.offset = size;
  }

  async write(): Promise<void> {
    throw failedPrecondition(
      `ingest ${this.ref} is complete: ${this.#expected} is already in the store, commit it: failed precondition`,
    );
  }

  digest(): Digest {
    return this.#expected;
  }

  async commit(size: number, expected?: Digest, labels: Record<string, string> = {}): Promise<void> {
    if (this.#finished) throw failedPrecondition(`writer for ${this.ref} is closed: failed precondition`);
    validateLabels(labels, 'info.Labels');
    if (size > 0 && size !== this.offset)
      throw new HoistError(
        'HOIST_SIZE_MISMATCH',
        `unexpected commit size ${this.offset}, expected ${size}: failed precondition`,
      );
    if (expected !== undefined && expected !== this.#expected)
      throw new HoistError(
        'HOIST_DIGEST_MISMATCH',
        `unexpected commit digest ${this.#expected}, expected ${expected}: failed precondition`,
      );
    this.#finished = true;
    const t = this.#t;
    const created = await t.db.transaction(async () => {
      // GC keeps a shared ingest's blob while the ingest record lives; if the record expired, check.
      if ((await t.backend.blobSize(this.#expected)) === undefined)
        throw notFound(
          `content ${this.#expected}: not found`,
          'the blob was garbage-collected while this writer was open; fetch it again',
        );
      return recordBlob(t, this.#expected, this.offset, labels);
    });
    if (!created) throw alreadyExists(`content ${this.#expected}: already exists`);
  }

  async close(): Promise<void> {
    this.#finished = true;
  }

  async truncate(): Promise<void> {
    throw failedPrecondition(
      `ingest ${this.ref} shares an existing blob and cannot be truncated: failed precondition`,
    );
  }
}
