// Exact-size pieces of a stream, for chunked uploads: each PATCH body is one buffer of a known length that
// can be sent again after a failure, so memory stays at one chunk per upload whatever the blob's size.
import type { Readable } from 'node:stream';

/** Reads exact-size pieces from a stream (the last one may be short at the end of the stream). */
export class ChunkReader {
  #it: AsyncIterator<Buffer>;
  #stream: Readable;
  #pending: Buffer | undefined;

  constructor(stream: Readable) {
    this.#stream = stream;
    this.#it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      let piece = this.#pending;
      this.#pending = undefined;
      if (!piece) {
        const next = await this.#it.next();
        if (next.done) break;
        piece = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      }
      const take = Math.min(piece.byteLength, n - filled);
      piece.copy(out, filled, 0, take);
      filled += take;
      if (take < piece.byteLength) this.#pending = piece.subarray(take);
    }
    return filled === n ? out : out.subarray(0, filled);
  }

  close(): void {
    this.#stream.destroy();
  }
}
