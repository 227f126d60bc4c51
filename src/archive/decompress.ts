// Archives arrive plain, gzip- or zstd-compressed (`docker save | gzip`, `*.tar.zst`); the first bytes
// say which. The stream is peeked, not buffered: the bytes read to sniff are put back in front.
import { Readable } from 'node:stream';
import { zlib } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';

export type ArchiveCompression = 'gzip' | 'zstd' | 'none';

const CHUNK = 256 * 1024;

/** Compression named by leading magic bytes (enough bytes: 6). */
export function sniffCompression(head: Uint8Array): ArchiveCompression | 'xz' | 'bzip2' {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    return 'xz';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** Read up to `n` leading bytes, then give back a stream that starts with them again. */
async function peek(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let have = 0;
  const it = input[Symbol.asyncIterator]();
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    chunks.push(c);
    have += c.length;
  }
  const head = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    }
  }
  return { head, stream: Readable.from(rest(), { objectMode: false }) };
}

/** The archive as a plain tar stream, and what compression it came in. */
export async function decompressArchive(
  input: Readable,
): Promise<{ stream: Readable; compression: ArchiveCompression }> {
  const { head, stream } = await peek(input, 6);
  if (head.length === 0)
    throw new HoistError('HOIST_INVALID_ARGUMENT', 'the archive is empty', {
      hint: 'give a tar made by `hoist save`, `docker save`, `ctr images export` or skopeo',
    });
  const kind = sniffCompression(head);
  if (kind === 'xz' || kind === 'bzip2')
    throw new HoistError('HOIST_INVALID_ARGUMENT', `${kind}-compressed archives are not supported`, {
      hint: `decompress it first (e.g. \`${kind === 'xz' ? 'xz' : 'bzip2'} -dc FILE | hoist load\`), or use gzip or zstd`,
    });
  if (kind === 'none') return { stream, compression: 'none' };
  const inflate =
    kind === 'gzip'
      ? zlib().createGunzip({ chunkSize: CHUNK })
      : zlib().createZstdDecompress({ chunkSize: CHUNK });
  stream.on('error', (err) => inflate.destroy(err));
  return { stream: stream.pipe(inflate), compression: kind };
}
