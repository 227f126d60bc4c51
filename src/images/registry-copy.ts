// An image from one repository to another with no store in between (skopeo copy, crane copy): documents
// are read, verified against their digests and pushed byte for byte (so every digest stays the same),
// children before the documents that name them; a blob the destination has is skipped, one in another
// repository of the same registry is mounted, any other is streamed from the source to the destination.
import type { Descriptor } from '../core/descriptor.ts';
import { documentTooLarge, MAX_DOCUMENT_BYTES, parseManifestOrIndex } from '../core/descriptor.ts';
import { DigestVerifier } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Limiter } from '../core/limiter.ts';
import { formatReference, type Reference } from '../core/reference.ts';
import type { Fetcher, Resolver } from '../remotes/types.ts';
import { manifestChildren, type PlatformSelector, selectManifests } from './walk.ts';

export type CopyBlobStatus = 'exists' | 'mounted' | 'copied';

export interface RegistryCopyOptions {
  platforms: PlatformSelector;
  /** Blobs moved at once (default 3). */
  concurrency?: number;
  signal?: AbortSignal;
  onBlob?: (desc: Descriptor, status: CopyBlobStatus) => void;
}

export interface RegistryCopyResult {
  /** What the destination name now points to (the chosen manifest when one platform was picked). */
  descriptor: Descriptor;
  blobs: Record<CopyBlobStatus, number>;
}

/** A manifest or index by its descriptor, read whole (documents are small) and checked against it. */
export async function readDocument(
  fetcher: Fetcher,
  desc: Descriptor,
  what: string,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (desc.size > MAX_DOCUMENT_BYTES) throw documentTooLarge(`${what}: manifest ${desc.digest}`, desc.size);
  const stream = await fetcher.fetch(desc, signal ? { signal } : {});
  const verifier = DigestVerifier.for(desc.digest);
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    verifier.update(chunk);
    if (verifier.bytes > MAX_DOCUMENT_BYTES) {
      stream.destroy();
      throw documentTooLarge(`${what}: manifest ${desc.digest}`, undefined);
    }
    chunks.push(chunk);
  }
  verifier.verify(desc, `${what}: manifest`);
  return Buffer.concat(chunks);
}

/**
 * The document a reference names, and with `platforms` one platform's manifest of an index (an index
 * stays an index for all platforms). Returns its descriptor and exact bytes.
 */
export async function fetchDocument(
  resolver: Resolver,
  ref: Reference,
  platforms: PlatformSelector,
  signal?: AbortSignal,
): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
  const what = formatReference(ref);
  const fetcher = resolver.fetcher(ref);
  let descriptor = (await resolver.resolve(ref, signal ? { signal } : {})).descriptor;
  let bytes = await readDocument(fetcher, descriptor, what, signal);
  // An index inside an index is followed too, to at most a few levels.
  for (let depth = 0; platforms.kind === 'one' && depth < 4; depth++) {
    const parsed = parseManifestOrIndex(bytes, descriptor.mediaType, what);
    if (parsed.kind !== 'index') break;
    const [chosen] = selectManifests(parsed.index, platforms);
    if (!chosen)
      throw new HoistError('HOIST_NOT_FOUND', `${what}: no manifest for the requested platform`, {
        hint: 'see the platforms it has with `hoist manifest inspect` (without --platform)',
      });
    descriptor = chosen;
    bytes = await readDocument(fetcher, chosen, what, signal);
  }
  return { descriptor, bytes };
}

/** Copy `src` to `dst` (both in registries); the destination's tag (or digest) is set last. */
export async function copyBetweenRegistries(
  resolver: Resolver,
  src: Reference,
  dst: Reference,
  opts: RegistryCopyOptions,
): Promise<RegistryCopyResult> {
  const signal = opts.signal;
  const what = formatReference(src);
  const fetcher = resolver.fetcher(src);
  const pusher = resolver.pusher(dst);
  const limiter = new Limiter(opts.concurrency ?? 3);
  const blobs: Record<CopyBlobStatus, number> = { exists: 0, mounted: 0, copied: 0 };
  const sameRegistry = src.domain === dst.domain && src.path !== dst.path;
  const withSignal = signal ? { signal } : {};
  const done = new Map<string, Promise<void>>();

  const moveBlob = async (desc: Descriptor): Promise<CopyBlobStatus> => {
    if (await pusher.exists(desc, withSignal)) return 'exists';
    let session: Awaited<ReturnType<typeof pusher.mount>> | undefined;
    if (sameRegistry) {
      session = await pusher.mount(desc, src.path, withSignal);
      if (session.mounted) return 'mounted';
    }
    const resume = session && !session.mounted && session.session ? { session: session.session } : {};
    // The bytes pass through unhashed here: the destination checks the digest when the upload commits.
    // A mirror (a peer) that sent some of them is then the suspect, as in a pull (fetch-blob.ts): the
    // blob is sent once more in a new upload, from the upstream only.
    const opened: { mirrored?: boolean }[] = [];
    const open = (skipMirrors: boolean) => async (offset: number) => {
      const stream = await fetcher.fetch(desc, {
        offset,
        ...withSignal,
        ...(skipMirrors ? { skipMirrors } : {}),
      });
      opened.push(stream as { mirrored?: boolean });
      return stream;
    };
    try {
      await pusher.pushBlob(desc, open(false), { ...withSignal, ...resume });
    } catch (err) {
      // `mirrored` is set as a mirror's bytes are handed on: read it now, after the upload failed.
      if (!opened.some((o) => o.mirrored) || signal?.aborted) throw err;
      await pusher.pushBlob(desc, open(true), withSignal);
    }
    return 'copied';
  };

  // Each blob once, however many manifests share it.
  const blob = (desc: Descriptor): Promise<void> => {
    let p = done.get(desc.digest);
    if (!p) {
      p = (async () => {
        const release = await limiter.acquire(signal);
        try {
          const status = await moveBlob(desc);
          blobs[status]++;
          opts.onBlob?.(desc, status);
        } finally {
          release();
        }
      })();
      done.set(desc.digest, p);
    }
    return p;
  };

  /** A document's children, then the document under its digest (or under `tag` at the top). */
  const copyDocument = async (desc: Descriptor, bytes: Buffer, tag: string | undefined): Promise<void> => {
    const parsed = parseManifestOrIndex(bytes, desc.mediaType, what);
    if (parsed.kind === 'manifest') {
      await Promise.all(manifestChildren(parsed.manifest).map(blob));
    } else {
      await Promise.all(selectManifests(parsed.index, { kind: 'all' }).map(copyChild));
    }
    await pusher.pushManifest(tag ?? desc.digest, desc, bytes, withSignal);
  };
  const copyChild = async (desc: Descriptor): Promise<void> =>
    copyDocument(desc, await readDocument(fetcher, desc, what, signal), undefined);

  const top = await fetchDocument(resolver, src, opts.platforms, signal);
  await copyDocument(top.descriptor, top.bytes, dst.digest ?? dst.tag ?? 'latest');
  return { descriptor: top.descriptor, blobs };
}
