// The Resolver (containerd's remotes.Resolver over the OCI distribution spec): resolve a tag or digest
// with HEAD /v2/<repo>/manifests/<ref>, falling back to GET when the HEAD answer lacks the digest or media
// type, trying each configured host (mirrors, then the registry) in order.
import { type Descriptor, documentTooLarge, MAX_DOCUMENT_BYTES } from '../core/descriptor.ts';
import { type Digest, DigestVerifier, isDigest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Limiter } from '../core/limiter.ts';
import { isIndex, isManifest, MANIFEST_ACCEPT, MediaType } from '../core/mediatypes.ts';
import { formatReference, type Reference } from '../core/reference.ts';
import { Authorizer } from './auth.ts';
import { createFetcher } from './fetcher.ts';
import { configureHosts, type RegistryHost } from './hosts.ts';
import { DEFAULT_USER_AGENT, discard, type HttpResponse, header, readSmallBody } from './http.ts';
import { createPusher } from './pusher.ts';
import { registryRequest, statusError, type TransportOptions, tryHosts } from './transport.ts';
import type { Resolved, Resolver, ResolverOptions } from './types.ts';

/** Manifests larger than this are refused (containerd uses the same 4 MiB limit). */
export const MAX_MANIFEST_BYTES = MAX_DOCUMENT_BYTES;

export interface CreateResolverOptions extends ResolverOptions {
  /** First retry delay in ms (default 200); tests lower it. */
  retryBaseDelayMs?: number;
  /** Push: blobs below this size go up in one PUT, larger ones in PATCH chunks (default 8 MiB). */
  pushMonolithicLimit?: number;
  /** Push: bytes per PATCH chunk (default 8 MiB). */
  pushChunkSize?: number;
}

function mediaTypeOf(res: HttpResponse): string | undefined {
  const ct = header(res.headers, 'content-type');
  return ct?.split(';')[0]?.trim() || undefined;
}

/** The media type of a fetched document: the header when it names a manifest/index, else the document's. */
function documentMediaType(headerType: string | undefined, body: Buffer): string {
  if (headerType && (isManifest(headerType) || isIndex(headerType))) return headerType;
  try {
    const doc = JSON.parse(body.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
    if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
    return headerType ?? MediaType.OciManifest;
  } catch {
    // Malformed documents are the caller's to report (it parses the manifest).
    return headerType ?? 'application/octet-stream';
  }
}

/** A manifest body, refused from its Content-Length or cut off at the cap (never read whole first). */
async function readDocument(res: HttpResponse, what: string): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length') ?? Number.NaN);
  if (Number.isSafeInteger(declared) && declared > MAX_MANIFEST_BYTES) {
    res.body.destroy();
    throw documentTooLarge(`${what}: manifest`, declared);
  }
  try {
    return await readSmallBody(res, MAX_MANIFEST_BYTES);
  } catch (err) {
    if (err instanceof HoistError && err.code === 'HOIST_TOO_LARGE')
      throw documentTooLarge(`${what}: manifest`, undefined);
    throw err;
  }
}

function digestMismatch(what: string, host: string, expected: string, actual: string): HoistError {
  return new HoistError(
    'HOIST_DIGEST_MISMATCH',
    `${what}: ${host} returned content with digest ${actual}, expected ${expected}`,
    { hint: 'the registry or mirror serves corrupt or substituted content; report it or try another mirror' },
  );
}

export function createResolver(opts: CreateResolverOptions = {}): Resolver {
  const attempts = Math.max(1, opts.retries ?? 4);
  const baseDelayMs = opts.retryBaseDelayMs ?? 200;
  const userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
  const timeouts = opts.timeouts;
  const authorizer = new Authorizer({
    credentials: opts.credentials,
    userAgent,
    attempts,
    baseDelayMs,
    timeouts,
    log: opts.log,
  });
  const transport: TransportOptions = {
    authorizer,
    userAgent,
    attempts,
    baseDelayMs,
    timeouts,
    log: opts.log,
  };
  const limiter = new Limiter(opts.concurrency ?? 3);
  const hostCache = new Map<string, RegistryHost[]>();
  const peers = opts.peers;

  const hosts = (ref: Reference): RegistryHost[] => {
    let list = hostCache.get(ref.domain);
    if (!list) {
      list = configureHosts(ref.domain, {
        hostsDir: opts.hostsDir,
        plainHttp: opts.plainHttp,
        insecureSkipVerify: opts.insecureSkipVerify,
      });
      hostCache.set(ref.domain, list);
    }
    return list;
  };

  async function resolveOn(host: RegistryHost, ref: Reference, signal: AbortSignal | undefined) {
    const what = formatReference(ref);
    const target = ref.digest ?? ref.tag ?? 'latest';
    const request = (method: 'HEAD' | 'GET') =>
      registryRequest(transport, host, {
        method,
        repository: ref.path,
        path: `/manifests/${target}`,
        headers: { accept: MANIFEST_ACCEPT },
        signal,
      });
    const head = await request('HEAD');
    if (head.status === 200) {
      await discard(head);
      const digest = header(head.headers, 'docker-content-digest');
      const mediaType = mediaTypeOf(head);
      const length = Number(header(head.headers, 'content-length') ?? Number.NaN);
      if (digest && isDigest(digest) && mediaType && Number.isSafeInteger(length) && length > 0) {
        if (ref.digest && digest !== ref.digest) throw digestMismatch(what, host.host, ref.digest, digest);
        if (length > MAX_MANIFEST_BYTES) throw documentTooLarge(`${what}: manifest ${digest}`, length);
        return { mediaType, digest: ref.digest ?? digest, size: length } satisfies Descriptor;
      }
    } else if (head.status !== 405 && head.status !== 501 && head.status !== 400) {
      // HEAD has no body: the GET below gives the registry's error text, except for a plain not found.
      if (head.status === 404) {
        await discard(head);
        throw new HoistError('HOIST_NOT_FOUND', `${what}: not found`);
      }
      if (head.status !== 401 && head.status !== 403) throw await statusError(host, what, head);
      await discard(head);
    } else {
      await discard(head);
    }
    const get = await request('GET');
    if (get.status !== 200) throw await statusError(host, what, get);
    const body = await readDocument(get, what);
    const verifier = DigestVerifier.for(ref.digest);
    verifier.update(body);
    const actual = verifier.digest();
    if (ref.digest && actual !== ref.digest) throw digestMismatch(what, host.host, ref.digest, actual);
    const claimed = header(get.headers, 'docker-content-digest');
    if (!ref.digest && claimed && isDigest(claimed) && claimed.startsWith('sha256:') && claimed !== actual)
      throw digestMismatch(what, host.host, claimed, actual);
    return {
      mediaType: documentMediaType(mediaTypeOf(get), body),
      digest: actual as Digest,
      size: body.byteLength,
    } satisfies Descriptor;
  }

  return {
    async resolve(ref: Reference, callOpts: { signal?: AbortSignal } = {}): Promise<Resolved> {
      const signal = callOpts.signal ?? opts.signal;
      const candidates = hosts(ref).filter((h) => h.capabilities.includes('resolve'));
      const descriptor = await tryHosts(
        candidates,
        formatReference(ref),
        (host) => resolveOn(host, ref, signal),
        opts.log,
      );
      return { ref, descriptor };
    },
    fetcher(ref: Reference) {
      return createFetcher(
        {
          transport,
          hosts: () => hosts(ref),
          peers: peers && ((digest: string) => peers.forBlob(ref.domain, digest)),
          limiter,
          attempts,
          signal: opts.signal,
        },
        ref,
      );
    },
    hostsFor(ref: Reference): string[] {
      return hosts(ref).map((h) => h.host);
    },
    pusher(ref: Reference) {
      return createPusher(
        {
          transport,
          hosts: () => hosts(ref),
          attempts,
          baseDelayMs,
          signal: opts.signal,
          monolithicLimit: opts.pushMonolithicLimit,
          chunkSize: opts.pushChunkSize,
        },
        ref,
      );
    },
  };
}
