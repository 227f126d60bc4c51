// Fetch one descriptor into the content store: resume a partial ingest at its offset, wait for another
// process that is fetching the same blob, verify before commit. The only path registry bytes take to disk.
import type { ContentStore, ContentWriter } from '../api/content.ts';
import { WriteBatches } from '../content/write-batches.ts';
import type { Context } from '../core/context.ts';
import { checkDocumentSize, type Descriptor } from '../core/descriptor.ts';
import { HoistError } from '../core/errors.ts';
import { refKeyPrefix } from '../core/mediatypes.ts';
import { openWriterWithRetry } from '../metadata/write-blob.ts';
import type { Fetcher } from '../remotes/types.ts';

export type BlobStatus =
  | 'waiting'
  | 'downloading'
  | 'verifying'
  | 'done'
  | 'exists'
  | 'failed'
  | 'unpacking'
  | 'unpacked';

export interface BlobProgress {
  status: BlobStatus;
  current?: number;
  total?: number;
  detail?: string;
}

export type ProgressFn = (key: string, state: BlobProgress) => void;

/** Downloaded bytes between two progress reports (a report per 64 KiB socket read cost ~10 ms a pull). */
const PROGRESS_EVERY_BYTES = 1 << 20;

/** containerd's ingest ref for a descriptor (remotes.MakeRefKey), so a retry resumes the same ingest. */
export function refKey(desc: Descriptor): string {
  return `${refKeyPrefix(desc.mediaType)}${desc.digest}`;
}

/** Merge labels into a blob already in the store (e.g. a second distribution source). */
export async function mergeLabels(
  content: ContentStore,
  ctx: Context,
  desc: Descriptor,
  labels: Record<string, string>,
): Promise<void> {
  if (Object.keys(labels).length === 0) return;
  const info = await content.info(ctx, desc.digest);
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    const old = info.labels[k];
    if (k.startsWith('containerd.io/distribution.source.') && old && old !== v) {
      const repos = new Set([...old.split(','), ...v.split(',')]);
      merged[k] = [...repos].sort().join(',');
    } else if (old !== v) merged[k] = v;
  }
  const paths = Object.keys(merged).map((k) => `labels.${k}`);
  if (paths.length > 0) await content.update(ctx, { digest: desc.digest, labels: merged }, paths);
}

/**
 * Fetch `desc` unless present. Returns 'exists' or 'done'. On cancellation the partial ingest is kept
 * (closed, not aborted) so the next attempt resumes; on a digest mismatch it is aborted. A resumed download
 * that fails verification is fetched once more from the start: the bytes kept from an earlier run (a crash,
 * a bad disk, an earlier faulty mirror) may be what is wrong, not what the registry sends now.
 */
export async function fetchBlob(
  content: ContentStore,
  ctx: Context,
  fetcher: Fetcher,
  desc: Descriptor,
  labels: Record<string, string>,
  progress?: ProgressFn,
): Promise<'exists' | 'done'> {
  // Before anything is opened: a document over the cap is never fetched, not even in part.
  checkDocumentSize(desc);
  const state = { mayRestart: true, mirrored: false, skipMirrors: false };
  const first = await fetchOnce(content, ctx, fetcher, desc, labels, progress, state);
  if (first !== 'restart') return first;
  // A peer's (mirror's) bytes are the likely culprit: the second time, only the upstream is asked.
  const again = await fetchOnce(content, ctx, fetcher, desc, labels, progress, {
    mayRestart: false,
    mirrored: false,
    skipMirrors: state.mirrored,
  });
  if (again === 'restart') throw new HoistError('HOIST_INTERNAL', `${desc.digest}: restarted twice`);
  return again;
}

async function fetchOnce(
  content: ContentStore,
  ctx: Context,
  fetcher: Fetcher,
  desc: Descriptor,
  labels: Record<string, string>,
  progress: ProgressFn | undefined,
  state: { mayRestart: boolean; mirrored: boolean; skipMirrors: boolean },
): Promise<'exists' | 'done' | 'restart'> {
  const key = refKey(desc);
  let writer: ContentWriter;
  try {
    // Another process fetching this blob holds the ref: wait for it (as long as it lives) to commit,
    // and then the blob "already exists".
    writer = await openWriterWithRetry(
      content,
      ctx,
      key,
      { digest: desc.digest, size: desc.size },
      Infinity,
      () => progress?.(key, { status: 'waiting', total: desc.size, detail: 'another pull is fetching it' }),
    );
  } catch (err) {
    if (!(err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS')) throw err;
    await mergeLabels(content, ctx, desc, labels);
    progress?.(key, { status: 'exists', current: desc.size, total: desc.size });
    return 'exists';
  }
  let committed = false;
  let resumedFrom = 0;
  try {
    let offset = writer.offset;
    if (offset > desc.size) {
      await writer.truncate(0);
      offset = 0;
    }
    resumedFrom = offset;
    if (offset < desc.size) {
      progress?.(key, { status: 'downloading', current: offset, total: desc.size });
      const stream = await fetcher.fetch(desc, {
        offset,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(state.skipMirrors ? { skipMirrors: true } : {}),
      });
      const batches = new WriteBatches(writer);
      let reported = offset;
      try {
        for await (const chunk of stream as AsyncIterable<Uint8Array>) {
          if (offset + chunk.byteLength > desc.size) {
            throw new HoistError(
              'HOIST_SIZE_MISMATCH',
              `${desc.digest}: the registry sent more than the ${desc.size} bytes the manifest declares`,
            );
          }
          await batches.add(chunk);
          offset += chunk.byteLength;
          if (offset - reported >= PROGRESS_EVERY_BYTES || offset === desc.size) {
            reported = offset;
            progress?.(key, { status: 'downloading', current: offset, total: desc.size });
          }
        }
        await batches.flush();
      } finally {
        if ((stream as { mirrored?: boolean }).mirrored) state.mirrored = true;
        stream.destroy();
        // Never close the writer under a write still in flight (cancellation, a bad body).
        await batches.quiesce();
      }
    }
    progress?.(key, { status: 'verifying', current: offset, total: desc.size });
    try {
      await writer.commit(desc.size, desc.digest, labels);
    } catch (err) {
      if (!(err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS')) throw err;
      await mergeLabels(content, ctx, desc, labels);
    }
    committed = true;
    progress?.(key, { status: 'done', current: desc.size, total: desc.size });
    return 'done';
  } catch (err) {
    if (
      err instanceof HoistError &&
      (err.code === 'HOIST_DIGEST_MISMATCH' || err.code === 'HOIST_SIZE_MISMATCH')
    ) {
      // Bad bytes must not be resumed from: drop them.
      await writer.close().catch(() => undefined);
      await content.abort(ctx, key).catch(() => undefined);
      committed = true;
      const suspect = state.mirrored || (resumedFrom > 0 && err.code === 'HOIST_DIGEST_MISMATCH');
      if (state.mayRestart && suspect && !ctx.signal?.aborted) {
        progress?.(key, {
          status: 'downloading',
          current: 0,
          total: desc.size,
          detail: state.mirrored
            ? 'a mirror sent bytes that did not verify; again from the registry'
            : 'resumed data did not verify; again from the start',
        });
        return 'restart';
      }
    }
    progress?.(key, { status: 'failed', detail: (err as Error).message });
    throw err;
  } finally {
    if (!committed) await writer.close().catch(() => undefined);
  }
}
