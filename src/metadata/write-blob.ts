// writeBlob: open a writer (waiting while another process holds the ref), feed it from the resume offset,
// commit. "Already exists" — at open or at commit — is success, as in containerd's content.WriteBlob.
import type { ContentStore, ContentWriter } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isAlreadyExists } from '../core/errors.ts';
import { sleep } from '../core/sleep.ts';

/**
 * Bytes to write: an async iterable of the whole blob (the part before a resume offset is skipped), or a
 * function that opens the source at `offset` (HTTP Range, file position) so resumed bytes are not re-read.
 */
export type BlobSource =
  | AsyncIterable<Uint8Array>
  | ((offset: number) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>);

export interface WriteBlobOptions {
  labels?: Record<string, string>;
  /** How long to wait for another writer of the same ref (HOIST_LOCKED); default 10 minutes. */
  lockWaitMs?: number;
}

export interface WriteBlobResult {
  digest: Digest;
  size: number;
  /** True when the namespace already had the blob (nothing was written). */
  existed: boolean;
}

/**
 * Open a writer, waiting with backoff (16 ms doubling to 2 s) while another writer holds the ref, up to
 * `lockWaitMs`; `onWait` is told once, when the wait starts. The one lock wait of the code base.
 */
export async function openWriterWithRetry(
  store: ContentStore,
  ctx: Context,
  ref: string,
  expected: { digest: Digest; size: number } | undefined,
  lockWaitMs = 10 * 60 * 1000,
  onWait?: () => void,
): Promise<ContentWriter> {
  const deadline = Date.now() + lockWaitMs;
  let backoff = 16;
  for (;;) {
    try {
      return await store.writer(ctx, expected ? { ref, expected } : { ref });
    } catch (err) {
      if (!(err instanceof HoistError && err.code === 'HOIST_LOCKED') || Date.now() >= deadline) throw err;
      if (backoff === 16) onWait?.();
      await sleep(Math.random() * backoff, ctx.signal);
      backoff = Math.min(2048, backoff * 2);
    }
  }
}

const isMismatch = (err: unknown) =>
  err instanceof HoistError && (err.code === 'HOIST_DIGEST_MISMATCH' || err.code === 'HOIST_SIZE_MISMATCH');

async function* skip(source: AsyncIterable<Uint8Array>, bytes: number): AsyncGenerator<Uint8Array> {
  let left = bytes;
  for await (const chunk of source) {
    if (left >= chunk.byteLength) {
      left -= chunk.byteLength;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

export async function writeBlob(
  store: ContentStore,
  ctx: Context,
  ref: string,
  source: BlobSource,
  expected?: { digest: Digest; size: number },
  opts: WriteBlobOptions = {},
): Promise<WriteBlobResult> {
  let writer: ContentWriter;
  try {
    writer = await openWriterWithRetry(store, ctx, ref, expected, opts.lockWaitMs);
  } catch (err) {
    if (expected && isAlreadyExists(err))
      return { digest: expected.digest, size: expected.size, existed: true };
    throw err;
  }
  try {
    let offset = writer.offset;
    if (expected && expected.size > 0 && offset > expected.size) {
      await writer.truncate(0);
      offset = 0;
    }
    if (!expected || expected.size <= 0 || offset < expected.size) {
      const stream = typeof source === 'function' ? await source(offset) : skip(source, offset);
      for await (const chunk of stream) await writer.write(chunk);
    }
    const digest = writer.digest();
    const size = writer.offset;
    try {
      await writer.commit(expected?.size ?? 0, expected?.digest, opts.labels ?? {});
    } catch (err) {
      if (isMismatch(err)) {
        // The store keeps an ingest whose commit failed (containerd does: the caller's expectation may be
        // what is wrong). Here the expectation is the truth, so the bytes are bad: a retry starts afresh.
        await writer.close().catch(() => undefined);
        await store.abort(ctx, ref).catch(() => undefined);
      }
      if (!isAlreadyExists(err)) throw err;
      return { digest, size, existed: true };
    }
    return { digest, size, existed: false };
  } finally {
    // After commit this is a no-op; after a failure it keeps the ingest for a resume and drops the lock.
    await writer.close().catch(() => undefined);
  }
}
