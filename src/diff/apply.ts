// The layer applier's front: applyLayer() hands a layer blob to a worker thread (apply-worker.ts), which
// decompresses it, parses the tar and writes the files with synchronous file-system calls (apply-job.ts).
//
// Why a worker: the tree of a real image is tens of thousands of files, about six system calls each.
// On the main thread every fs.promises call is a round trip through libuv's thread pool and back (the
// syscall count of one pull showed ~30 thread hand-offs per file); in a worker, synchronous calls cost
// only the syscall, and the main thread stays free for downloads, hashing and the database. Several
// workers let layers apply at once (parallel unpack); `max_concurrent_unpacks` bounds them.
import { ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { workerThreads } from '../core/builtins.ts';
import type { Digest } from '../core/digest.ts';
import { type ErrorCode, HoistError } from '../core/errors.ts';
import { Limiter } from '../core/limiter.ts';
import type { ApplyJob, ApplyJobResult, BlobFile } from './apply-job.ts';
import type { FromWorker, ToWorker } from './apply-worker.ts';
import { type CreatedDir, settleDeferred } from './layer-writer.ts';
import { unpackConcurrency } from './unpack-concurrency.ts';

export type { CreatedDir } from './layer-writer.ts';

export interface ApplyOptions extends Omit<ApplyJob, 'privileged'> {
  /** Create devices, chown, set trusted and security xattrs. Default: running as root. */
  privileged?: boolean;
  signal?: AbortSignal;
  /** Called for each warning as it happens (also collected in the result). */
  onWarning?: (message: string) => void;
}

export interface ApplyResult extends ApplyJobResult {
  warnings: string[];
}

/** Chunks of the blob in flight to a worker at once (each up to the reader's 1 MiB). */
const CREDITS = 4;

const WORKER_URL = new URL(`./apply-worker${import.meta.url.slice(-3)}`, import.meta.url);

/** An idle worker is kept this long for the next layer, then stopped (a daemon goes back to its idle size). */
const IDLE_MS = 5000;

/**
 * Worker threads, started on demand and kept for the next layer for a few seconds (unref'd, so they never
 * hold the process open). A worker whose job failed or was cancelled is terminated, not reused.
 */
class WorkerPool {
  #idle: Array<{ worker: Worker; timer: NodeJS.Timeout }> = [];
  #slots: Limiter;
  #size: number;

  constructor(size: number) {
    this.#size = size;
    this.#slots = new Limiter(size);
  }

  resize(size: number): void {
    if (size === this.#size) return;
    this.#size = size;
    this.#slots = new Limiter(size);
  }

  async run<T>(signal: AbortSignal | undefined, use: (w: Worker) => Promise<T>): Promise<T> {
    this.resize(unpackConcurrency());
    const release = await this.#slots.acquire(signal);
    const kept = this.#idle.pop();
    if (kept) clearTimeout(kept.timer);
    const worker = kept?.worker ?? new (workerThreads().Worker)(WORKER_URL);
    worker.ref();
    let healthy = false;
    try {
      const r = await use(worker);
      healthy = true;
      return r;
    } finally {
      if (healthy && this.#idle.length < this.#size) {
        worker.unref();
        const entry = {
          worker,
          timer: setTimeout(() => {
            this.#idle = this.#idle.filter((e) => e !== entry);
            void worker.terminate();
          }, IDLE_MS).unref(),
        };
        this.#idle.push(entry);
      } else {
        await worker.terminate();
      }
      release();
    }
  }
}

const pool = new WorkerPool(unpackConcurrency());

function fromWire(e: { code: string; message: string; hint?: string }): HoistError {
  return new HoistError(e.code as ErrorCode, e.message, e.hint ? { hint: e.hint } : undefined);
}

const cancelled = () => new HoistError('HOIST_CANCELLED', 'applying the layer was cancelled');

/**
 * Talk to one worker for one job: send `first`, feed it `source` (if any) under flow control, and settle
 * with its answer. Cancellation terminates the worker (the pool replaces it), so nothing is left
 * writing into a tree the caller is about to remove.
 */
function converse<T>(
  worker: Worker,
  first: ToWorker,
  source: Readable | null,
  signal: AbortSignal | undefined,
  onWarning: (m: string) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let credits = CREDITS;
    let wake: (() => void) | null = null;
    let settled = false;
    const finish = (err: unknown, value?: T) => {
      if (settled) return;
      settled = true;
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      signal?.removeEventListener('abort', onAbort);
      source?.destroy();
      wake?.();
      if (err) reject(err);
      else resolve(value as T);
    };
    const onMessage = (m: FromWorker) => {
      if (m.kind === 'credit') {
        credits++;
        wake?.();
      } else if (m.kind === 'warning') onWarning(m.message);
      else if (m.kind === 'done') finish(null, m.result as T);
      else finish(fromWire(m.error));
    };
    const onError = (err: Error) =>
      finish(new HoistError('HOIST_INTERNAL', `the layer applier failed: ${err.message}`, { cause: err }));
    let aborting = false;
    const onExit = (code: number) =>
      finish(
        aborting
          ? cancelled()
          : new HoistError('HOIST_INTERNAL', `the layer applier's worker exited (${code})`),
      );
    const onAbort = () => {
      // Stop the writes first; the caller removes the tree only after we reject.
      aborting = true;
      worker.terminate().then(
        () => finish(cancelled()),
        () => finish(cancelled()),
      );
    };
    if (signal?.aborted) {
      finish(cancelled());
      return;
    }
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.postMessage(first);
    if (!source) return;
    (async () => {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        while (credits === 0 && !settled) await new Promise<void>((r) => (wake = r));
        wake = null;
        if (settled) return;
        credits--;
        worker.postMessage({ kind: 'chunk', data: chunk } satisfies ToWorker);
      }
      if (!settled) worker.postMessage({ kind: 'end' } satisfies ToWorker);
    })().catch((err: unknown) => {
      // The source failed (a read error): the worker is mid-layer and cannot be reused.
      worker.terminate().finally(() => finish(err));
    });
  });
}

/** The file behind a stream from fs.createReadStream (by path, not yet read from), else null. */
function localFile(blob: Readable): BlobFile | null {
  if (!(blob instanceof ReadStream) || typeof blob.path !== 'string' || blob.bytesRead > 0) return null;
  const { start, end } = blob as ReadStream & { start?: number; end?: number };
  return { path: blob.path, start: start ?? 0, end: end ?? Number.POSITIVE_INFINITY };
}

/** Apply a (possibly compressed) layer blob to `opts.root`, in a worker thread. */
export async function applyLayer(blob: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const { signal, onWarning, privileged, ...rest } = opts;
  const job: ApplyJob = { ...rest, privileged: privileged ?? process.getuid?.() === 0 };
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    onWarning?.(m);
  };
  // A blob read from a local file (the content store's reader) is read by the worker itself: no copies
  // through messages, no buffers on this thread.
  const file = localFile(blob);
  if (file) blob.destroy();
  try {
    const result = await pool.run(signal, (w) =>
      converse<ApplyJobResult>(
        w,
        file ? { kind: 'apply', job, file } : { kind: 'apply', job },
        file ? null : blob,
        signal,
        warn,
      ),
    );
    return { ...result, diffId: result.diffId as Digest, warnings };
  } finally {
    blob.destroy(); // the caller's reader (a content store file) is never left open
  }
}

/**
 * After an apply with `deferLowers`, once the lowers exist: settle the parent directories the layer
 * created against them. False when the layer must be applied again with its lowers. Runs here, not in a
 * worker: it is a few lstat/chmod calls per directory the layer did not list, and queueing it behind
 * other layers' applies would hold up every commit above it.
 */
export function settleLayer(
  root: string,
  parents: string[],
  created: CreatedDir[],
  opts: { privileged?: boolean } = {},
): boolean {
  if (created.length === 0) return true;
  return settleDeferred(root, parents, created, opts.privileged ?? process.getuid?.() === 0);
}
