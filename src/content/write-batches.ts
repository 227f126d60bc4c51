// Coalesces a stream's small chunks into large writes for a ContentWriter. Registry bodies arrive as socket
// reads of at most 64 KiB; one awaited positional write each was ~2,500 writes for the 160 MB bench pull and
// a measurable share of its time. Chunks are copied into a 1 MiB batch that goes out as one write while the
// next batch fills: two buffers per download, at most one write in flight, so memory stays bounded for any
// blob size and the disk works while the network delivers. The writer's own contract is unchanged (a write
// that resolved is in the ingest file); what is still batched when the process dies is simply not yet in
// the ingest, and a resume starts from what is.
import type { ContentWriter } from '../api/content.ts';

/** Bytes gathered before one write. */
export const WRITE_BATCH_SIZE = 1 << 20;

export class WriteBatches {
  #writer: ContentWriter;
  /** The batch being filled, and the one the write in flight may still be reading (allocated on demand). */
  #batch: Buffer | undefined;
  #spare: Buffer | undefined;
  #filled = 0;
  #inflight: Promise<void> | undefined;
  #failure: { error: unknown } | undefined;
  #accepted = 0;

  constructor(writer: ContentWriter) {
    this.#writer = writer;
  }

  /** Bytes handed to add() (written, being written or batched). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Take a chunk (copied: the caller may reuse it at once); waits only when a full batch must go out. */
  async add(chunk: Uint8Array): Promise<void> {
    this.#check();
    this.#accepted += chunk.byteLength;
    if (this.#filled === 0 && chunk.byteLength >= WRITE_BATCH_SIZE) {
      // Already batch-sized: no copy, written in order after the write in flight.
      await this.#settle();
      await this.#writer.write(chunk);
      return;
    }
    let done = 0;
    while (done < chunk.byteLength) {
      this.#batch ??= Buffer.allocUnsafe(WRITE_BATCH_SIZE);
      const n = Math.min(chunk.byteLength - done, WRITE_BATCH_SIZE - this.#filled);
      this.#batch.set(chunk.subarray(done, done + n), this.#filled);
      this.#filled += n;
      done += n;
      if (this.#filled === WRITE_BATCH_SIZE) await this.#send();
    }
  }

  /** Write everything batched and wait for it: afterwards the writer has every accepted byte. */
  async flush(): Promise<void> {
    await this.#send();
    await this.#settle();
  }

  /** Wait for the write in flight without failing, so the writer can be closed safely on any path. */
  async quiesce(): Promise<void> {
    await this.#inflight;
  }

  /** Start writing the current batch (after the previous write finished) and switch buffers. */
  async #send(): Promise<void> {
    await this.#settle();
    const batch = this.#batch;
    if (!batch || this.#filled === 0) return;
    const bytes = batch.subarray(0, this.#filled);
    this.#inflight = this.#writer.write(bytes).catch((error: unknown) => {
      this.#failure = { error };
    });
    this.#batch = this.#spare;
    this.#spare = batch;
    this.#filled = 0;
  }

  /** Wait for the write in flight; rethrow its failure. */
  async #settle(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = undefined;
    if (inflight) await inflight;
    this.#check();
  }

  #check(): void {
    if (this.#failure) throw this.#failure.error;
  }
}
