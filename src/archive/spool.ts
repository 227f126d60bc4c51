// Reading an image archive in one pass, in whatever order its entries come: every regular file that could
// be a blob goes straight into the content store as it streams by (verified against its name when it is
// `blobs/<alg>/<hex>`, hashed while written otherwise, e.g. a legacy `<id>/layer.tar`); the small JSON
// documents (index.json, manifest.json, repositories, configs, legacy `json`) are kept in memory, bounded.
// Links become in-archive aliases. What the documents mean is decided afterwards (build.ts).
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import { type Digest, DigestVerifier, isDigest } from '../core/digest.ts';
import { HoistError, isHoistError } from '../core/errors.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { normalizeEntryPath, quoteName, resolveLinkTarget } from './tar-paths.ts';

/** A file of the archive that is now in the content store. */
export interface SpooledBlob {
  digest: Digest;
  size: number;
  /** The first bytes (up to 8): tell a gzip or zstd layer from a plain tar. */
  head: Buffer;
}

export interface ArchiveContents {
  /** Regular files written to the content store, by archive path. */
  blobs: Map<string, SpooledBlob>;
  /** Small documents kept in memory, by archive path. */
  docs: Map<string, Buffer>;
  /** Link entries: path → the archive path they point to. */
  links: Map<string, string>;
  /** Every blob the archive brought, by digest. */
  digests: Map<Digest, SpooledBlob>;
}

export interface SpoolOptions {
  /** Prefix of the ingest refs this load uses (unique per load). */
  refPrefix: string;
  /** Called with each ingest ref before it is opened, so a failed load can abort them. */
  onRef?: (ref: string) => void;
  /** Tests lower the caps below. */
  maxEntries?: number;
  maxLooseFiles?: number;
}

/** One document at most this big (manifests and configs are far smaller). */
export const MAX_DOC_BYTES = 4 * 1024 * 1024;
/** All documents together (a legacy archive has a `json` per layer). */
export const MAX_DOCS_TOTAL = 64 * 1024 * 1024;
/**
 * Entries of any kind. Image archives hold a few thousand at most (Docker's legacy format: four per
 * layer); every entry costs a little memory (the maps below), so a hostile archive of millions is refused.
 */
export const MAX_ENTRIES = 50_000;
/**
 * Regular files outside blobs/ that are not documents (a legacy archive's `<id>/layer.tar`, one per layer).
 * Each goes into the content store as it streams by, a write and a commit apiece: 100,000 one-byte files
 * kept a load busy for many minutes.
 */
export const MAX_LOOSE_FILES = 2_000;

const BLOB_PATH = /^blobs\/([a-z0-9]+)\/([^/]+)$/;
const TOP_DOCS = new Set(['index.json', 'manifest.json', 'repositories', 'oci-layout']);

function isDocName(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return TOP_DOCS.has(path) || base === 'json' || base === 'VERSION' || base.endsWith('.json');
}

function corrupt(err: unknown): HoistError {
  if (isHoistError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new HoistError('HOIST_INVALID_ARGUMENT', `the archive is truncated or not a valid tar: ${msg}`, {
    cause: err,
    hint: 'check the file (was it copied completely?); nothing was loaded',
  });
}

function atPath(path: string, err: unknown): unknown {
  if (isHoistError(err) && (err.code === 'HOIST_DIGEST_MISMATCH' || err.code === 'HOIST_SIZE_MISMATCH'))
    return new HoistError(err.code, `archive entry ${path}: ${err.message}`, {
      cause: err,
      hint: 'the archive is corrupt; nothing was loaded',
    });
  return err;
}

/** Wraps an entry's bytes: remembers the first bytes, and whether the writer read everything. */
class EntrySource {
  head = Buffer.alloc(0);
  started = false;
  finished = false;
  #entry: AsyncIterable<Buffer>;

  constructor(entry: AsyncIterable<Buffer>) {
    this.#entry = entry;
  }

  async *chunks(): AsyncGenerator<Uint8Array> {
    this.started = true;
    for await (const chunk of this.#entry) {
      if (this.head.length < 8)
        this.head = Buffer.concat([this.head, chunk.subarray(0, 8 - this.head.length)]);
      yield chunk;
    }
    this.finished = true;
  }
}

async function readDoc(entry: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of entry) parts.push(chunk);
  return Buffer.concat(parts);
}

async function spoolBlob(
  content: ContentStore,
  ctx: Context,
  ref: string,
  path: string,
  entry: AsyncIterable<Buffer>,
  size: number,
  expected: Digest | undefined,
): Promise<SpooledBlob> {
  const src = new EntrySource(entry);
  const result = await writeBlob(
    content,
    ctx,
    ref,
    src.chunks(),
    expected ? { digest: expected, size } : undefined,
  );
  if (!src.started) {
    // The store already had the blob and did not read it: still verify what the archive carries.
    const v = DigestVerifier.for(expected);
    for await (const chunk of src.chunks()) v.update(chunk);
    v.verify({ digest: expected, size }, `archive entry ${path}`);
  } else if (!src.finished) {
    for await (const _ of src.chunks()) {
      // drain
    }
  }
  return { digest: result.digest, size: result.size, head: src.head };
}

/** Read the whole tar stream into the store and memory. Throws on the first bad entry. */
export async function spoolArchive(
  content: ContentStore,
  ctx: Context,
  tarStream: Readable,
  opts: SpoolOptions,
): Promise<ArchiveContents> {
  const out: ArchiveContents = { blobs: new Map(), docs: new Map(), links: new Map(), digests: new Map() };
  const extract = tar.extract();
  const feeding = pipeline(tarStream, extract).catch((err: unknown) => {
    extract.destroy(err as Error);
    throw err;
  });
  feeding.catch(() => undefined); // observed below; never an unhandled rejection
  let docBytes = 0;
  let n = 0;
  let entries = 0;
  let loose = 0;
  const maxEntries = opts.maxEntries ?? MAX_ENTRIES;
  const maxLoose = opts.maxLooseFiles ?? MAX_LOOSE_FILES;
  const seen = new Set<string>();
  try {
    for await (const source of extract) {
      const entry = source as unknown as AsyncIterable<Buffer> & { header: tar.Header; resume(): void };
      ctx.signal?.throwIfAborted();
      if (++entries > maxEntries)
        throw new HoistError('HOIST_TOO_LARGE', `refusing archive: it has more than ${maxEntries} entries`, {
          hint: 'image archives hold a few thousand entries at most; nothing was loaded',
        });
      const h = entry.header;
      const path = normalizeEntryPath(h.name);
      const type = h.type ?? 'file';
      if (type === 'directory' || (type as string) === 'pax-global-header' || path === '') {
        entry.resume();
        continue;
      }
      // Two entries with one name: which one is meant depends on the reader (tar takes the last, a
      // validator may have looked at the first). No image writer does it; refuse rather than guess.
      if (seen.has(path))
        throw new HoistError(
          'HOIST_INVALID_ARGUMENT',
          `refusing archive: entry ${quoteName(path)} appears twice`,
          {
            hint: 'the archive is corrupt or crafted to be read two ways; nothing was loaded',
          },
        );
      seen.add(path);
      if (type === 'symlink' || type === 'link') {
        const target = resolveLinkTarget(path, h.linkname ?? '', type);
        entry.resume();
        out.links.set(path, target);
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file')
        throw new HoistError('HOIST_INVALID_ARGUMENT', `refusing archive: entry ${path} is a ${type}`, {
          hint: 'image archives hold only files, directories and in-archive links; nothing was loaded',
        });
      const size = h.size ?? 0;
      const blobName = BLOB_PATH.exec(path);
      if (blobName) {
        const digest = `${blobName[1]}:${blobName[2]}`;
        if (!isDigest(digest))
          throw new HoistError(
            'HOIST_INVALID_ARGUMENT',
            `archive entry ${path} is not named by a valid digest`,
            {
              hint: 'blobs/<algorithm>/<hex> must be the digest of the file; nothing was loaded',
            },
          );
        const ref = `${opts.refPrefix}-${n++}`;
        opts.onRef?.(ref);
        const blob = await spoolBlob(content, ctx, ref, path, entry, size, digest).catch((e: unknown) => {
          throw atPath(path, e);
        });
        out.blobs.set(path, blob);
        out.digests.set(blob.digest, blob);
        continue;
      }
      if (isDocName(path) && size <= MAX_DOC_BYTES) {
        docBytes += size;
        if (docBytes > MAX_DOCS_TOTAL)
          throw new HoistError(
            'HOIST_INVALID_ARGUMENT',
            `refusing archive: its JSON documents exceed ${MAX_DOCS_TOTAL / 1024 / 1024} MiB`,
          );
        out.docs.set(path, await readDoc(entry));
        continue;
      }
      if (TOP_DOCS.has(path))
        throw new HoistError('HOIST_INVALID_ARGUMENT', `refusing archive: ${path} is ${size} bytes`, {
          hint: `an image archive's ${path} is a small JSON document`,
        });
      if (++loose > maxLoose)
        throw new HoistError(
          'HOIST_TOO_LARGE',
          `refusing archive: more than ${maxLoose} files outside blobs/ that are not JSON documents`,
          { hint: 'an image archive holds one such file per layer (a legacy layer.tar); nothing was loaded' },
        );
      const ref = `${opts.refPrefix}-${n++}`;
      opts.onRef?.(ref);
      const blob = await spoolBlob(content, ctx, ref, path, entry, size, undefined);
      out.blobs.set(path, blob);
      out.digests.set(blob.digest, blob);
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    tarStream.destroy();
    await feeding.catch(() => undefined);
    throw corrupt(err);
  }
  return out;
}
