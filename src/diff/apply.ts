// The layer applier: decompress a layer blob, apply its tar to a snapshot directory, and compute the
// compressed digest and the diffID (sha256 of the uncompressed tar) on the way, in one streaming pass.
//
//   blob ─▶ hash (compressed digest) ─▶ gunzip/zstd ─▶ TarScanner (diffID, raw headers) ─▶ tar-stream
//                                                                                          └▶ LayerWriter
//
// When the diffID differs from the one the image config promises, the apply fails and the caller
// discards the snapshot directory (containerd: "wrong diff id calculated on extraction").
import { stat } from 'node:fs/promises';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { type Digest, DigestVerifier } from '../core/digest.ts';
import { HoistError, toHoistError } from '../core/errors.ts';
import { decompressorFor, layerCompressionOf } from './decompress.ts';
import { type LayerEntry, LayerWriter } from './layer-writer.ts';
import { display, refuseEntry } from './root-path.ts';
import { malformedTar, type ScannedEntry, TarScanner } from './tar-scan.ts';

export interface ApplyOptions {
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
  /** Create devices, chown, set trusted and security xattrs. Default: running as root. */
  privileged?: boolean;
  /** The diffID from the image config (`rootfs.diff_ids[i]`); a different result fails the apply. */
  expectedDiffId?: string;
  signal?: AbortSignal;
  /** Called for each warning as it happens (also collected in the result). */
  onWarning?: (message: string) => void;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Digest of the bytes read from `compressed` (equals diffId for an uncompressed layer). */
  compressedDigest: Digest;
  warnings: string[];
  /** Tar entries applied (whiteouts included). */
  entries: number;
}

const TAR_TYPES: Record<string, number> = {
  file: 0,
  link: 1,
  symlink: 2,
  'character-device': 3,
  'block-device': 4,
  directory: 5,
  fifo: 6,
  'contiguous-file': 7,
};

function paxNumber(pax: Map<string, Buffer> | null, key: string, entry: string): number | undefined {
  const raw = pax?.get(key);
  if (raw === undefined) return undefined;
  const n = Number(raw.toString('latin1'));
  if (!Number.isFinite(n)) throw refuseEntry(entry, `has an invalid PAX ${key} '${raw.toString('latin1')}'`);
  return n;
}

/** xattrs from PAX records: `SCHILY.xattr.<name>` (Go, GNU tar) and `LIBARCHIVE.xattr.<%name>` (bsdtar). */
function paxXattrs(pax: Map<string, Buffer> | null): Array<[string, Buffer]> {
  if (!pax) return [];
  const out = new Map<string, Buffer>();
  for (const [key, value] of pax) {
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = Buffer.from(decodeURIComponent(key.slice(17)), 'utf8').toString('latin1');
      out.set(name, Buffer.from(value.toString('latin1'), 'base64'));
    }
  }
  for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) out.set(key.slice(13), value);
  return [...out];
}

function toEntry(header: tar.Header, s: ScannedEntry): LayerEntry {
  const pax = s.pax;
  if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
    throw refuseEntry(s.name, 'is a sparse file, which hoist cannot apply');
  }
  const mtime = paxNumber(pax, 'mtime', s.name) ?? (header.mtime?.getTime() ?? 0) / 1000;
  return {
    name: s.name,
    linkname: s.linkname,
    typeflag: s.typeflag,
    mode: (header.mode ?? 0) & 0o7777,
    uid: paxNumber(pax, 'uid', s.name) ?? header.uid ?? 0,
    gid: paxNumber(pax, 'gid', s.name) ?? header.gid ?? 0,
    mtime,
    atime: paxNumber(pax, 'atime', s.name) ?? mtime,
    devmajor: header.devmajor ?? 0,
    devminor: header.devminor ?? 0,
    xattrs: paxXattrs(pax),
  };
}

/** The error for a failing entry, naming it; HoistErrors pass unchanged. */
function entryError(err: unknown, name: string): HoistError {
  if (err instanceof HoistError) return err;
  const h = toHoistError(err);
  return new HoistError(h.code, `applying layer entry '${display(name)}': ${h.message}`, {
    cause: err,
    ...(h.hint ? { hint: h.hint } : {}),
  });
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of body);
}

async function applyStream(
  stages: Readable[],
  opts: Omit<ApplyOptions, 'mediaType'>,
  compression: string,
): Promise<Omit<ApplyResult, 'compressedDigest'>> {
  const root = await stat(opts.root).catch(() => null);
  if (!root?.isDirectory()) {
    for (const s of stages) s.destroy();
    throw new HoistError('HOIST_INVALID_ARGUMENT', `cannot apply a layer to ${opts.root}: not a directory`);
  }
  const warnings: string[] = [];
  const writer = new LayerWriter({
    root: opts.root,
    whiteouts: opts.whiteouts,
    lowers: opts.parents,
    privileged: opts.privileged ?? process.getuid?.() === 0,
    signal: opts.signal,
    warn: (m) => {
      warnings.push(m);
      opts.onWarning?.(m);
    },
  });
  const scanner = new TarScanner();
  // V7 archives (no ustar magic) are still tars; Go's reader accepts them, so do we.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  let entries = 0;
  // The entry being written; on failure we wait for it, so the caller never removes a tree in use.
  let inflight: Promise<void> = Promise.resolve();
  extract.on('entry', (header, stream, next) => {
    // A destroyed extractor destroys the entry stream with its error; the body's reader sees it, and an
    // 'error' event with no listener would be an uncaught exception (tar-stream's own iterator does this).
    stream.on('error', () => undefined);
    const scanned = scanner.shift();
    const handle = async () => {
      const bytes = scanned && Buffer.from(scanned.name, 'latin1').toString('utf8');
      if (!scanned || bytes !== header.name || scanned.size !== header.size) {
        throw new HoistError('HOIST_INTERNAL', `tar headers read inconsistently at '${header.name}'`);
      }
      if (header.type !== null && TAR_TYPES[header.type ?? ''] !== scanned.typeflag) {
        throw new HoistError('HOIST_INTERNAL', `tar entry type read inconsistently at '${header.name}'`);
      }
      let consumed = false;
      const body = {
        async *[Symbol.asyncIterator]() {
          consumed = true;
          yield* stream as AsyncIterable<Buffer>;
        },
      };
      try {
        await writer.write(toEntry(header, scanned), body);
      } catch (err) {
        throw entryError(err, scanned.name);
      }
      if (!consumed) await drain(stream as AsyncIterable<Buffer>);
      entries++;
    };
    inflight = handle().then(
      () => next(),
      (err: unknown) => next(err as Error),
    );
  });
  // Which stage failed decides the message: a corrupt compressed stream, a corrupt tar, or the source.
  let decompressError: unknown;
  let tarError: unknown;
  const decompressor = stages.length > 2 ? stages[2] : undefined;
  decompressor?.on('error', (err) => {
    decompressError ??= err;
  });
  extract.on('error', (err: unknown) => {
    tarError ??= err;
  });
  try {
    await pipeline([...stages, scanner, extract], opts.signal ? { signal: opts.signal } : {});
    await writer.finish();
  } catch (err) {
    await inflight.catch(() => undefined);
    await writer.dispose().catch(() => undefined);
    if (err instanceof HoistError) throw err;
    if (opts.signal?.aborted || (err as Error).name === 'AbortError') {
      throw new HoistError('HOIST_CANCELLED', 'applying the layer was cancelled', { cause: err });
    }
    if (err === decompressError) {
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        `layer is not a valid ${compression} stream: ${(err as Error).message}`,
        { cause: err, hint: 'the layer blob is corrupt or truncated; pull the image again' },
      );
    }
    if (err === tarError) throw Object.assign(malformedTar((err as Error).message), { cause: err });
    throw err;
  }
  const diffId = scanner.verifier.digest();
  if (opts.expectedDiffId !== undefined && opts.expectedDiffId !== diffId) {
    throw new HoistError(
      'HOIST_DIGEST_MISMATCH',
      `layer diffID mismatch: expected ${opts.expectedDiffId}, got ${diffId}; the unpacked snapshot is discarded`,
      { hint: 'the layer does not match the image config (a corrupt or tampered image); pull it again' },
    );
  }
  return { diffId, size: scanner.verifier.bytes, warnings, entries };
}

function hashing(verifier: DigestVerifier): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      verifier.update(chunk);
      cb(null, chunk);
    },
  });
}

/** Apply a (possibly compressed) layer blob to `opts.root`. */
export async function applyLayer(compressed: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  let compression: string;
  let decompressor: Transform | null;
  try {
    compression = layerCompressionOf(opts.mediaType);
    decompressor = decompressorFor(opts.mediaType);
  } catch (err) {
    compressed.destroy(); // the caller's reader (a content store file) is not left open
    throw err;
  }
  if (decompressor === null) return applyTar(compressed, opts);
  const blob = new DigestVerifier('sha256');
  const r = await applyStream([compressed, hashing(blob), decompressor], opts, compression);
  return { ...r, compressedDigest: blob.digest() };
}

/** Apply an uncompressed layer tar to `opts.root`. */
export async function applyTar(
  tarStream: Readable,
  opts: Omit<ApplyOptions, 'mediaType'>,
): Promise<ApplyResult> {
  const r = await applyStream([tarStream], opts, 'tar');
  return { ...r, compressedDigest: r.diffId };
}
