// The backend blob store on disk, shared by all namespaces (containerd's content/local layout):
//   <root>/blobs/sha256/<hex>                                  committed, read-only (0444)
//   <root>/ingest/<sha256hex(backendRef)>/{ref,data,startedat,updatedat,total}
// It knows nothing of namespaces, leases or locks; src/metadata/content.ts adds those.
import { createHash } from 'node:crypto';
import {
  constants,
  createReadStream,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type Digest, DigestVerifier, digestAlgorithm, digestHex, isDigest } from '../core/digest.ts';
import { diskFull, HoistError, invalidArgument, isDiskFull, notFound } from '../core/errors.ts';
import { epochNsOf, formatRfc3339Nano, nowNs, parseRfc3339Nano } from '../core/time.ts';

/** More than a kernel tick (10 ms at HZ=100): see status(). */
const MTIME_SLACK_NS = 50_000_000n;

/** Read and re-hash in 1 MiB chunks: bounded memory for any blob size. */
export const READ_BUFFER_SIZE = 1 << 20;

export interface BackendIngestStatus {
  ref: string;
  offset: number;
  total: number;
  startedAt: Date;
  updatedAt: Date;
}

export interface BackendIngestDir {
  /** sha256 hex of the backend ref (the directory name). */
  key: string;
  /** Contents of the `ref` file, undefined when unreadable. */
  ref: string | undefined;
  /** Size of `data`. */
  bytes: number;
}

/** The directory name of an ingest: sha256 of its backend ref, so paths have a fixed length. */
export function ingestKey(backendRef: string): string {
  return createHash('sha256').update(backendRef).digest('hex');
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

// The small metadata calls of opening and publishing an ingest (status files, mkdir, rename, removing the
// ingest dir) are synchronous: they take microseconds on a local disk, while each async call waits for a turn
// of an event loop that is busy hashing other downloads' data (libuv reads up to 32 socket buffers per
// turn). Measured on the bench pull: ~15 such calls made a small blob's commit take 40–50 ms, and the next
// download waited for it. Only fsync, which waits for the disk, stays asynchronous.

function writeSmallFile(dir: string, name: string, text: string): void {
  // tmp + rename so a crash never leaves a half-written status file.
  const tmp = join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class LocalContentBackend {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(this.root, 'ingest'), { recursive: true });
  }

  blobPath(d: Digest): string {
    if (!isDigest(d))
      throw invalidArgument(`cannot calculate blob path from invalid digest: ${d}: invalid argument`);
    return join(this.root, 'blobs', digestAlgorithm(d), digestHex(d));
  }

  ingestPath(backendRef: string): string {
    return join(this.root, 'ingest', ingestKey(backendRef));
  }

  /** Size of the committed blob, undefined when absent. */
  async blobSize(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(d))).size;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** A stream of the blob from `offset`, at most `length` bytes. */
  async reader(d: Digest, opts: { offset?: number; length?: number } = {}): Promise<Readable> {
    const path = this.blobPath(d);
    const size = await this.blobSize(d);
    if (size === undefined) throw notFound(`content digest ${d}: not found`);
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > size)
      throw invalidArgument(`offset ${offset} is outside blob ${d} of ${size} bytes: invalid argument`);
    const end = opts.length === undefined ? size : Math.min(size, offset + Math.max(0, opts.length));
    if (end === offset) return Readable.from([]);
    return createReadStream(path, { start: offset, end: end - 1, highWaterMark: READ_BUFFER_SIZE });
  }

  /** Open (or resume) the ingest for `backendRef`. The caller holds the ref's lock. */
  async openWriter(backendRef: string, opts: { total?: number } = {}): Promise<LocalIngestWriter> {
    try {
      return await this.#openWriter(backendRef, opts);
    } catch (err) {
      if (isDiskFull(err)) throw diskFull(describeRef(backendRef), this.ingestPath(backendRef), err);
      throw err;
    }
  }

  async #openWriter(backendRef: string, opts: { total?: number }): Promise<LocalIngestWriter> {
    const dir = this.ingestPath(backendRef);
    const total = opts.total ?? 0;
    let resumed = false;
    try {
      const storedRef = readFileSync(join(dir, 'ref'), 'utf8');
      if (storedRef !== backendRef)
        throw new HoistError('HOIST_INTERNAL', `ref key does not match: ${storedRef} != ${backendRef}`);
      const storedTotal = readTotalSync(dir);
      // A different expected size means a different blob: start again rather than mix bytes.
      resumed = !(total > 0 && storedTotal > 0 && total !== storedTotal);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    if (!resumed) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      // RFC 3339 with nanoseconds, as containerd writes them: clients compare them with their clock.
      const now = formatRfc3339Nano(nowNs());
      writeSmallFile(dir, 'ref', backendRef);
      writeSmallFile(dir, 'startedat', now);
      writeSmallFile(dir, 'updatedat', now);
      if (total > 0) writeSmallFile(dir, 'total', String(total));
    }
    const dataPath = join(dir, 'data');
    // Read-write, create, no truncate: positional writes continue at the resumed offset.
    const fh = await open(dataPath, constants.O_RDWR | constants.O_CREAT, 0o644);
    const verifier = new DigestVerifier();
    try {
      // No saved hash state: re-hash what is there, streaming, to restore the digest and the offset.
      const buf = Buffer.allocUnsafe(READ_BUFFER_SIZE);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, verifier.bytes);
        if (bytesRead === 0) break;
        verifier.update(buf.subarray(0, bytesRead));
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    const updatedAt = resumed ? readTimeSync(dir, 'updatedat') : undefined;
    return new LocalIngestWriter(this, backendRef, dir, fh, verifier, updatedAt ?? nowNs());
  }

  async status(backendRef: string): Promise<BackendIngestStatus> {
    const dir = this.ingestPath(backendRef);
    let ref: string;
    try {
      ref = await readFile(join(dir, 'ref'), 'utf8');
    } catch (err) {
      if (isMissing(err)) throw notFound(`ingest ref ${JSON.stringify(backendRef)}: not found`);
      throw err;
    }
    const readTime = async (name: string): Promise<Date | undefined> =>
      parseRfc3339Nano(await readFile(join(dir, name), 'utf8').catch(() => ''));
    let offset = 0;
    let mtime: Date | undefined;
    try {
      const st = await stat(join(dir, 'data'));
      offset = st.size;
      mtime = st.mtime;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    const startedAt = (await readTime('startedat')) ?? mtime ?? new Date(0);
    const updated = (await readTime('updatedat')) ?? startedAt;
    // updatedat is written on open and, with the last write's time, on close; while a writer is open
    // the data file's mtime is fresher. But the kernel stamps mtime from its tick-granular clock, which
    // can read a little later than the precise time of the same write: trust it only when it is newer by
    // more than a tick could explain (a writer still open, in this process or another).
    const updatedAt = mtime && epochNsOf(mtime) > epochNsOf(updated) + MTIME_SLACK_NS ? mtime : updated;
    return { ref, offset, total: await readTotal(dir), startedAt, updatedAt };
  }

  /** Remove an ingest and its bytes. */
  async abort(backendRef: string): Promise<void> {
    await rm(this.ingestPath(backendRef), { recursive: true, force: true });
  }

  async removeIngestDir(key: string): Promise<void> {
    await rm(join(this.root, 'ingest', key), { recursive: true, force: true });
  }

  /** Every committed blob (sha256 only; other algorithms' directories are walked too). */
  async *walkBlobs(): AsyncGenerator<{ digest: Digest; size: number }> {
    const blobs = join(this.root, 'blobs');
    let algs: string[];
    try {
      algs = await readdir(blobs);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for (const alg of algs) {
      let names: string[];
      try {
        names = await readdir(join(blobs, alg));
      } catch {
        continue;
      }
      for (const hex of names) {
        const d = `${alg}:${hex}`;
        if (!isDigest(d)) continue;
        try {
          const st = await stat(join(blobs, alg, hex));
          yield { digest: d, size: st.size };
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
      }
    }
  }

  async listIngestDirs(): Promise<BackendIngestDir[]> {
    const root = join(this.root, 'ingest');
    let keys: string[];
    try {
      keys = await readdir(root);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const out: BackendIngestDir[] = [];
    for (const key of keys) {
      let ref: string | undefined;
      let bytes = 0;
      try {
        ref = await readFile(join(root, key, 'ref'), 'utf8');
      } catch {
        ref = undefined;
      }
      try {
        bytes = (await stat(join(root, key, 'data'))).size;
      } catch {
        bytes = 0;
      }
      out.push({ key, ref, bytes });
    }
    return out;
  }

  /** Delete a committed blob; returns the bytes freed (0 when it was already gone). */
  async deleteBlob(d: Digest): Promise<number> {
    const path = this.blobPath(d);
    try {
      const size = (await stat(path)).size;
      await unlink(path);
      return size;
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
  }
}

function parseTotal(text: string): number {
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** `layer sha256:… (namespace default)` from a backend ref `<ns>/<kind>-<digest>`, else the ref itself. */
function describeRef(backendRef: string): string {
  const slash = backendRef.indexOf('/');
  const ns = backendRef.slice(0, slash);
  const ref = backendRef.slice(slash + 1);
  const m = /^(layer|config|manifest|index|blob)-(sha256:[0-9a-f]{64})$/.exec(ref);
  if (m) return `${m[1]} ${m[2]} (namespace ${ns})`;
  const c = /^convert-(sha256:[0-9a-f]{64})-(.+)-(-?\d+)(-rebuilt)?$/.exec(ref);
  if (c) return `layer ${c[1]} converted to ${c[2]} (namespace ${ns})`;
  return `content ${backendRef}`;
}

async function readTotal(dir: string): Promise<number> {
  return parseTotal(await readFile(join(dir, 'total'), 'utf8').catch(() => ''));
}

/** An ingest's time file (RFC 3339 with nanoseconds; older hoists wrote milliseconds) in nanoseconds. */
function readTimeSync(dir: string, name: string): bigint | undefined {
  try {
    return parseRfc3339Nano(readFileSync(join(dir, name), 'utf8'))?.epochNs;
  } catch {
    return undefined;
  }
}

function readTotalSync(dir: string): number {
  try {
    return parseTotal(readFileSync(join(dir, 'total'), 'utf8'));
  } catch {
    return 0;
  }
}

/**
 * Writes one ingest's `data`. Commit is two-phase so the metadata layer can do the visible part (rename into
 * blobs/) inside its write transaction, where GC cannot interleave: verify() then publish().
 */
export class LocalIngestWriter {
  readonly backend: LocalContentBackend;
  readonly ref: string;
  readonly dir: string;
  #fh: FileHandle | undefined;
  #verifier: DigestVerifier;
  /** When bytes last arrived (nanoseconds): recorded in updatedat on close, as containerd does. */
  #updatedAt: bigint;

  constructor(
    backend: LocalContentBackend,
    ref: string,
    dir: string,
    fh: FileHandle,
    verifier: DigestVerifier,
    updatedAt: bigint,
  ) {
    this.backend = backend;
    this.ref = ref;
    this.dir = dir;
    this.#fh = fh;
    this.#verifier = verifier;
    this.#updatedAt = updatedAt;
  }

  get offset(): number {
    return this.#verifier.bytes;
  }

  get closed(): boolean {
    return this.#fh === undefined;
  }

  #handle(): FileHandle {
    if (!this.#fh) throw new HoistError('HOIST_FAILED_PRECONDITION', `writer for ${this.ref} is closed`);
    return this.#fh;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const fh = this.#handle();
    let done = 0;
    try {
      while (done < chunk.byteLength) {
        const { bytesWritten } = await fh.write(
          chunk,
          done,
          chunk.byteLength - done,
          this.#verifier.bytes + done,
        );
        done += bytesWritten;
      }
    } catch (err) {
      // Bytes past the offset are not counted: a resume rewrites them (positional writes).
      if (isDiskFull(err)) throw diskFull(describeRef(this.ref), join(this.dir, 'data'), err);
      throw err;
    }
    this.#verifier.update(chunk);
    this.#updatedAt = nowNs();
  }

  digest(): Digest {
    return this.#verifier.digest();
  }

  /**
   * Check size (when > 0) and digest (when given), then fsync. On a mismatch the bytes stay, as in
   * containerd: a later commit with the right expectation (the client's size or digest was wrong, not the
   * bytes) succeeds. A caller that knows the bytes are bad (a pull: the registry's descriptor is the
   * truth) aborts the ingest itself.
   */
  async verify(size: number, expected: Digest | undefined): Promise<Digest> {
    const fh = this.#handle();
    try {
      const actual = this.#verifier.verify({ digest: expected, size: size > 0 ? size : undefined });
      await fh.sync();
      return actual;
    } catch (err) {
      // A failed fsync on a full disk says nothing about the bytes' digest: keep them for a resume.
      if (isDiskFull(err)) throw diskFull(describeRef(this.ref), join(this.dir, 'data'), err);
      throw err;
    }
  }

  /**
   * Move the verified data into blobs/ (read-only), fsync the directory, remove the ingest dir.
   * Returns false when the blob already existed (the ingest is dropped; the existing file is kept).
   */
  async publish(d: Digest): Promise<boolean> {
    const fh = this.#handle();
    const target = this.backend.blobPath(d);
    await fh.chmod(0o444);
    await fh.close();
    this.#fh = undefined;
    if (statSync(target, { throwIfNoEntry: false }) !== undefined) {
      rmSync(this.dir, { recursive: true, force: true });
      return false;
    }
    mkdirSync(join(target, '..'), { recursive: true });
    renameSync(join(this.dir, 'data'), target);
    await fsyncDir(join(target, '..'));
    rmSync(this.dir, { recursive: true, force: true });
    return true;
  }

  /** fsync, close, record when bytes last arrived; the ingest stays for a later resume. Idempotent. */
  async close(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = undefined;
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      writeSmallFile(this.dir, 'updatedat', formatRfc3339Nano(this.#updatedAt));
    } catch {
      // the ingest dir may be gone (aborted meanwhile); the data file is what matters
    }
  }

  async truncate(size: 0): Promise<void> {
    if (size !== 0) throw invalidArgument('Truncate: unsupported size: invalid argument');
    await this.#handle().truncate(0);
    this.#verifier = new DigestVerifier();
  }
}
