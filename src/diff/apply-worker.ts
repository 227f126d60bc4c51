// The applier's worker thread: runs one job at a time for the pool in apply.ts. A blob in a local file is
// read here; other layer bytes arrive as messages (with credit-based flow control: the main thread keeps a
// few chunks in flight, and each chunk taken here returns one credit). File-system calls are synchronous,
// and only the result, warnings and errors go back.
import { parentPort } from 'node:worker_threads';
import { toHoistError } from '../core/errors.ts';
import { dropReadBuffers } from '../core/read-buffers.ts';
import { type ApplyJob, type BlobFile, readBlobFile, runApplyJob } from './apply-job.ts';

export type ToWorker =
  | { kind: 'apply'; job: ApplyJob; file?: BlobFile }
  | { kind: 'chunk'; data: Uint8Array }
  | { kind: 'end' };

export type FromWorker =
  | { kind: 'credit' }
  | { kind: 'warning'; message: string }
  | { kind: 'done'; result: unknown }
  | { kind: 'error'; error: { code: string; message: string; hint?: string } };

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

/** The chunks of the running apply, as an async iterable fed by messages. */
class Inbox {
  #queue: Buffer[] = [];
  #ended = false;
  #wake: (() => void) | null = null;
  push(data: Uint8Array): void {
    this.#queue.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.#wake?.();
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        post({ kind: 'credit' });
        yield next;
        // Each message brought its own copy: let V8 free them while they are few.
        dropReadBuffers(next.length);
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((r) => {
        this.#wake = r;
      });
      this.#wake = null;
    }
  }
}

let inbox: Inbox | null = null;

function fail(err: unknown): void {
  const h = toHoistError(err);
  post({ kind: 'error', error: { code: h.code, message: h.message, ...(h.hint ? { hint: h.hint } : {}) } });
}

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'apply': {
      let source: AsyncIterable<Buffer>;
      if (m.file) source = readBlobFile(m.file);
      else {
        const box = new Inbox();
        inbox = box;
        source = box;
      }
      runApplyJob(m.job, source, (message) => post({ kind: 'warning', message })).then(
        (result) => post({ kind: 'done', result }),
        fail,
      );
      break;
    }
    case 'chunk':
      inbox?.push(m.data);
      break;
    case 'end':
      inbox?.end();
      break;
  }
});
