// The content store interface (containerd's content.Store, namespaced through the metadata layer).
// Implemented by the embedded store (src/content + src/metadata) and, later, by a gRPC proxy.
import type { Readable } from 'node:stream';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';

export interface ContentInfo {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

export interface IngestStatus {
  /** The user's ref, e.g. `layer-sha256:…`. */
  ref: string;
  /** Bytes written so far. */
  offset: number;
  /** Expected total size, 0 when unknown. */
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

export interface WriterOptions {
  /** Required, identifies the ingest so it can be resumed (containerd: `ref must not be empty`). */
  ref: string;
  /** Expected digest and size when known: enables "already exists" and shared-content shortcuts. */
  expected?: { digest: Digest; size: number };
}

export interface ContentWriter {
  readonly ref: string;
  /** Where writing resumes: bytes already in the ingest (re-hashed on open). */
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Digest of everything written so far. */
  digest(): Digest;
  /**
   * Verify (size when > 0, digest when given), fsync, atomically rename into blobs/, record the blob in
   * the namespace with labels, add it to the context's lease. Throws HOIST_ALREADY_EXISTS if the
   * namespace already had it (callers treat that as success), HOIST_DIGEST_MISMATCH / SIZE_MISMATCH.
   */
  commit(size: number, expected?: Digest, labels?: Record<string, string>): Promise<void>;
  /** Stop writing, keep the ingest so a later writer with the same ref resumes. Releases the lock. */
  close(): Promise<void>;
  /** Only 0 is supported: discard what was written. */
  truncate(size: 0): Promise<void>;
}

export interface ContentStore {
  /** `content digest <d>: not found` when the namespace has no record. */
  info(ctx: Context, digest: Digest): Promise<ContentInfo>;
  /** fieldpaths: none or `labels` replace all labels; `labels.<k>` sets one (empty value deletes). */
  update(
    ctx: Context,
    info: { digest: Digest; labels: Record<string, string> },
    fieldpaths?: string[],
  ): Promise<ContentInfo>;
  /** containerd filter syntax on `digest`, `size`, `labels.<k>`; several filters are OR-ed. */
  list(ctx: Context, filters?: string[]): Promise<ContentInfo[]>;
  /** Removes the namespace's record; bytes go at the next GC when no namespace references them. */
  delete(ctx: Context, digest: Digest): Promise<void>;
  /** A stream of the blob from `offset`; NotFound when not visible in the namespace. */
  reader(ctx: Context, digest: Digest, opts?: { offset?: number; length?: number }): Promise<Readable>;
  /** The whole blob in memory, refused above `maxBytes` (manifests and configs only). */
  readBlob(ctx: Context, digest: Digest, maxBytes?: number): Promise<Buffer>;
  /**
   * Open a writer. Throws HOIST_ALREADY_EXISTS when `expected.digest` is already recorded in the
   * namespace (and adds it to the lease), HOIST_LOCKED when another live writer holds the ref.
   * If the blob exists in another namespace the writer is "shared": offset == size, commit only records.
   */
  writer(ctx: Context, opts: WriterOptions): Promise<ContentWriter>;
  status(ctx: Context, ref: string): Promise<IngestStatus>;
  listStatuses(ctx: Context, filters?: string[]): Promise<IngestStatus[]>;
  abort(ctx: Context, ref: string): Promise<void>;
}
