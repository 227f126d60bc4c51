// One layer apply, start to end, as the applier's worker thread runs it: the blob's bytes come in,
// are decompressed (zlib on the thread pool), parsed by TarReader and written by LayerWriter with
// synchronous file-system calls, all in one pass; the diffID is the hash of the tar as it went by.
//
//   source ─▶ gunzip/zstd ─▶ TarReader (diffID) ─▶ LayerWriter
//
// When the diffID differs from the one the image config promises, the apply fails and the caller
// discards the snapshot directory (containerd: "wrong diff id calculated on extraction").
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../core/digest.ts';
import { diskFull, HoistError, isDiskFull, toHoistError } from '../core/errors.ts';
import { decompressorFor, layerCompressionOf } from './decompress.ts';
import { type SyncInflater, syncInflater } from './inflate.ts';
import { layerEntryOf } from './layer-entry.ts';
import { type CreatedDir, type FileBody, LayerWriter, NeedsLowers } from './layer-writer.ts';
import { display } from './root-path.ts';
import { TarReader } from './tar-reader.ts';

export interface ApplyJob {
  /** An existing directory: the snapshot's writable directory. */
  root: string;
  /** The layer's media type; it picks the decompressor (unknown types are refused). */
  mediaType: string;
  /** 'delete' for plain directories (native snapshotter), 'overlay' for an overlayfs upper directory. */
  whiteouts: 'delete' | 'overlay';
  /**
   * Overlay only: the lower layers' directories (the parent snapshot's first). Missing parent directories
   * then take the lower one's owner and mode, writes through a lower layer's symlink follow it (inside
   * the root), and a hardlink to a lower file copies it up first, so the merged view is what a mount
   * would show. containerd passes the same (`archive.WithParents`).
   */
  parents?: string[];
  /** Overlay only: apply before the lowers exist; see LayerWriter's deferLowers and settleDeferred. */
  deferLowers?: boolean;
  /** Create devices, chown, set trusted and security xattrs. */
  privileged: boolean;
  /** The diffID from the image config (`rootfs.diff_ids[i]`); a different result fails the apply. */
  expectedDiffId?: string;
}

/** A blob in a local file (a content store blob), read by the applier itself: bytes [start, end]. */
export interface BlobFile {
  path: string;
  start: number;
  /** Inclusive, as fs.createReadStream's; Infinity for the end of the file. */
  end: number;
}

/** Read size for a local blob; one buffer, reused (the synchronous inflater copies what it keeps). */
const READ_BYTES = 1024 * 1024;

/**
 * A local blob's bytes, read synchronously into one reused buffer. Each chunk is valid only until the
 * next is asked for, which holds for runApplyJob's synchronous path (inflater and tar reader keep no
 * reference); the stream fallback gets copies.
 */
export async function* readBlobFile(file: BlobFile): AsyncGenerator<Buffer> {
  const fd = openSync(file.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    let pos = file.start;
    const stop = file.end === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : file.end + 1;
    while (pos < stop) {
      const want = Math.min(READ_BYTES, stop - pos);
      const n = readSync(fd, buf, 0, want, pos);
      if (n === 0) break;
      pos += n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

export interface ApplyJobResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Tar entries applied (whiteouts included). */
  entries: number;
  /** deferLowers: the parent directories to settle against the lowers. */
  created: CreatedDir[];
  /** deferLowers: the layer stopped because only its lowers can apply it; apply it again on them. */
  needsLowers?: true;
}

/** The error for a failing entry, naming it; HoistErrors pass unchanged. */
function entryError(err: unknown, name: string, root: string): HoistError {
  if (err instanceof HoistError) return err;
  if (isDiskFull(err)) return diskFull(`layer entry '${display(name)}'`, join(root, name), err);
  const h = toHoistError(err);
  return new HoistError(h.code, `applying layer entry '${display(name)}': ${h.message}`, {
    cause: err,
    ...(h.hint ? { hint: h.hint } : {}),
  });
}

export async function runApplyJob(
  job: ApplyJob,
  source: AsyncIterable<Buffer>,
  warn: (message: string) => void,
  signal?: AbortSignal,
): Promise<ApplyJobResult> {
  const compression = layerCompressionOf(job.mediaType);
  if (!statSync(job.root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new HoistError('HOIST_INVALID_ARGUMENT', `cannot apply a layer to ${job.root}: not a directory`);
  }
  const writer = new LayerWriter({
    root: job.root,
    whiteouts: job.whiteouts,
    lowers: job.parents,
    deferLowers: job.deferLowers === true,
    privileged: job.privileged,
    warn,
  });
  let body: FileBody | null = null;
  let current = '';
  const reader = new TarReader({
    entry(h) {
      current = h.name;
      try {
        body = writer.begin(layerEntryOf(h));
      } catch (err) {
        throw err instanceof NeedsLowers ? err : entryError(err, h.name, job.root);
      }
    },
    data(chunk) {
      try {
        body?.write(chunk);
      } catch (err) {
        body = null;
        throw entryError(err, current, job.root);
      }
    },
    endEntry() {
      const b = body;
      body = null;
      try {
        b?.end();
      } catch (err) {
        throw entryError(err, current, job.root);
      }
    },
  });
  const inflater = syncInflater(job.mediaType);
  let decompressError: unknown;
  const onInflateError = (err: unknown) => {
    decompressError ??= err;
  };
  try {
    const out = (chunk: Buffer) => reader.push(chunk);
    if (inflater || compression === 'none') await readAll(source, inflater, out, signal, onInflateError);
    else await pipeStream(source, job.mediaType, out, signal, onInflateError);
    reader.end();
  } catch (err) {
    writer.dispose();
    if (err instanceof NeedsLowers) {
      return { diffId: '' as Digest, size: 0, entries: 0, created: [], needsLowers: true };
    }
    if (err instanceof HoistError) throw err;
    if (signal?.aborted || (err as Error).name === 'AbortError') {
      throw new HoistError('HOIST_CANCELLED', 'applying the layer was cancelled', { cause: err });
    }
    if (err === decompressError) {
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        `layer is not a valid ${compression} stream: ${(err as Error).message}`,
        { cause: err, hint: 'the layer blob is corrupt or truncated; pull the image again' },
      );
    }
    throw entryError(err, current, job.root);
  } finally {
    inflater?.close();
  }
  let created: CreatedDir[];
  try {
    created = writer.finish();
  } catch (err) {
    writer.dispose();
    if (isDiskFull(err)) throw diskFull('the unpacked layer', job.root, err);
    throw toHoistError(err);
  }
  const diffId = reader.verifier.digest();
  if (job.expectedDiffId !== undefined && job.expectedDiffId !== diffId) {
    throw new HoistError(
      'HOIST_DIGEST_MISMATCH',
      `layer diffID mismatch: expected ${job.expectedDiffId}, got ${diffId}; the unpacked snapshot is discarded`,
      { hint: 'the layer does not match the image config (a corrupt or tampered image); pull it again' },
    );
  }
  return { diffId, size: reader.verifier.bytes, entries: reader.entries, created };
}

/**
 * Feed the blob through the synchronous inflater (or as it is, for a plain tar) into `out`: one thread,
 * no buffer per chunk. A decompression failure is reported through `onInflateError` before it is thrown.
 */
async function readAll(
  source: AsyncIterable<Buffer>,
  inflater: SyncInflater | null,
  out: (chunk: Buffer) => void,
  signal: AbortSignal | undefined,
  onInflateError: (err: unknown) => void,
): Promise<void> {
  const inflate = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      // Errors thrown by `out` (the tar reader, the writer) pass through; the inflater's are marked.
      if (!(err instanceof HoistError) && !(err instanceof NeedsLowers) && isZlibError(err))
        onInflateError(err);
      throw err;
    }
  };
  for await (const chunk of source) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    if (inflater) inflate(() => inflater.push(chunk, out));
    else out(chunk);
  }
  if (inflater) inflate(() => inflater.finish(out));
}

function isZlibError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ZSTD_'));
}

/** The stream form, where the native handle is not there. */
async function pipeStream(
  source: AsyncIterable<Buffer>,
  mediaType: string,
  out: (chunk: Buffer) => void,
  signal: AbortSignal | undefined,
  onInflateError: (err: unknown) => void,
): Promise<void> {
  const decompressor = decompressorFor(mediaType, 256 * 1024)!;
  decompressor.on('error', onInflateError);
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      try {
        out(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  const copies = async function* () {
    for await (const chunk of source) yield Buffer.from(chunk);
  };
  await pipeline(
    [Readable.from(copies(), { highWaterMark: 1 }), decompressor, sink],
    signal ? { signal } : {},
  );
}
