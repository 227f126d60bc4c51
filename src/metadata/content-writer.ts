// The namespaced content writers handed out by MetadataContentStore.writer(): one that streams bytes into
// a backend ingest, and a "shared" one for a blob the backend already has (commit only records it; a
// write first copies the blob into an ingest of its own, as containerd's metadata writer does).
// Committing moves the blob into blobs/ INSIDE the metadata write transaction, so a garbage collection
// in another process (which sweeps files while holding that lock) can never delete a just-published blob.
// One writer per backend ref across processes: ingest_locks, owner = process identity.

import type { ContentWriter } from '../api/content.ts';
import type { LocalContentBackend, LocalIngestWriter } from '../content/local.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { alreadyExists, failedPrecondition, HoistError, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { sleep } from '../core/sleep.ts';
import { nowNs } from '../core/time.ts';
import { describeOwner } from '../leases/owner.ts';
import { addLeaseResource, ensureNamespace, labelsJson, removeLeaseResource } from './common.ts';
import type { MetadataDb } from './db.ts';

export interface WriterTarget {
  db: MetadataDb;
  backend: LocalContentBackend;
  owner: string;
  isOwnerAlive: (owner: string) => boolean;
  ctx: Context;
  ns: string;
  ref: string;
  backendRef: string;
}

export interface LockHolder {
  owner: string;
  since: number;
}

/**
 * Take the lock on a backend ref, in the caller's write transaction: returns the holder when a live
 * writer (this process's included) has it; a dead owner's lock is taken over.
 */
export function tryIngestLock(
  db: MetadataDb,
  backendRef: string,
  owner: string,
  isOwnerAlive: (owner: string) => boolean,
): LockHolder | undefined {
  const lock = db.get<{ owner: string; since: number }>(
    'SELECT owner, since FROM ingest_locks WHERE backend_ref = ?',
    backendRef,
  );
  if (lock && (lock.owner === owner || isOwnerAlive(lock.owner)))
    return { owner: lock.owner, since: Number(lock.since) };
  db.run(
    'INSERT OR REPLACE INTO ingest_locks (backend_ref, owner, since) VALUES (?, ?, ?)',
    backendRef,
    owner,
    Date.now(),
  );
  return undefined;
}

export function lockedError(ref: string, holder: LockHolder): HoistError {
  return new HoistError(
    'HOIST_LOCKED',
    `ref ${ref} locked by ${describeOwner(holder.owner)} since ${new Date(holder.since).toISOString()}: unavailable`,
    { hint: 'another writer has this ingest open; wait for it, or retry when it finishes' },
  );
}

/**
 * A ref in use is tried again a few times before the caller hears "unavailable", as containerd's
 * local store does (10 tries, a random 0–2^n ms apart: about half a second, at most one): a client that
 * closes a write stream and reopens the ref at once must not see the lock its first stream is still
 * releasing. Longer waits for another pull are the caller's (openWriterWithRetry).
 */
export async function retryWhileLocked<T extends { kind: string }>(
  signal: AbortSignal | undefined,
  attempt: () => Promise<T>,
): Promise<T> {
  let result = await attempt();
  for (let n = 0; result.kind === 'locked' && n < 10; n++) {
    await sleep(Math.random() * 2 ** n, signal);
    result = await attempt();
  }
  return result;
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

/**
 * The backend already has the blob (from another namespace): nothing to transfer, commit records it. A
 * write (or a truncate) first copies the blob into an ingest of this ref's own, under the ref's lock, and
 * from then on the writer is an ordinary one (containerd's createAndCopy): a client may append to a
 * shared blob to make another.
 */
export class SharedContentWriter implements ContentWriter {
  readonly ref: string;
  #t: WriterTarget;
  #expected: Digest;
  #size: number;
  #finished = false;
  #own: IngestContentWriter | undefined;

  constructor(target: WriterTarget, expected: Digest, size: number) {
    this.ref = target.ref;
    this.#t = target;
    this.#expected = expected;
    this.#size = size;
  }

  get offset(): number {
    return this.#own ? this.#own.offset : this.#size;
  }

  #live(): void {
    if (this.#finished) throw failedPrecondition(`writer for ${this.ref} is closed: failed precondition`);
  }

  /** Copy the first `bytes` of the shared blob into this ref's own ingest and write there from now on. */
  async #unshare(bytes: number): Promise<IngestContentWriter> {
    const t = this.#t;
    const plan = await retryWhileLocked(t.ctx.signal, () =>
      t.db.transaction(async () => {
        if (!t.db.get('SELECT 1 AS x FROM ingests WHERE ns = ? AND ref = ?', t.ns, t.ref))
          throw notFound(`ingest ref ${JSON.stringify(t.ref)}: not found`);
        const holder = tryIngestLock(t.db, t.backendRef, t.owner, t.isOwnerAlive);
        if (holder) return { kind: 'locked' as const, holder };
        // GC keeps a shared ingest's blob while its record lives, so the blob is there to copy.
        t.db.run('UPDATE ingests SET shared = 0, total = 0 WHERE ns = ? AND ref = ?', t.ns, t.ref);
        return { kind: 'own' as const };
      }),
    );
    if (plan.kind === 'locked') throw lockedError(t.ref, plan.holder);
    try {
      // The final size is unknown once the client appends: no total. Bytes an earlier writer of this
      // ref left behind are not this blob's.
      const backend = await t.backend.openWriter(t.backendRef, { total: 0 });
      const own = new IngestContentWriter(t, backend);
      try {
        if (own.offset > 0) await own.truncate(0);
        if (bytes > 0)
          for await (const chunk of await t.backend.reader(this.#expected, { length: bytes }))
            await own.write(chunk as Buffer);
      } catch (err) {
        await own.close();
        throw err;
      }
      return own;
    } catch (err) {
      await releaseIngestLock(t.db, t.backendRef, t.owner);
      throw err;
    }
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#live();
    if (!this.#own) {
      if (chunk.byteLength === 0) return;
      this.#own = await this.#unshare(this.#size);
    }
    await this.#own.write(chunk);
  }

  digest(): Digest {
    return this.#own ? this.#own.digest() : this.#expected;
  }

  async commit(size: number, expected?: Digest, labels: Record<string, string> = {}): Promise<void> {
    this.#live();
    if (this.#own) {
      this.#finished = true;
      return this.#own.commit(size, expected, labels);
    }
    validateLabels(labels, 'info.Labels');
    if (size > 0 && size !== this.#size)
      throw new HoistError(
        'HOIST_SIZE_MISMATCH',
        `unexpected commit size ${this.#size}, expected ${size}: failed precondition`,
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
      return recordBlob(t, this.#expected, this.#size, labels);
    });
    if (!created) throw alreadyExists(`content ${this.#expected}: already exists`);
  }

  async close(): Promise<void> {
    this.#finished = true;
    await this.#own?.close();
  }

  async truncate(size: 0): Promise<void> {
    this.#live();
    if (this.#own) return this.#own.truncate(size);
    this.#own = await this.#unshare(size);
  }
}
