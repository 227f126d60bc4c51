// Upload to a registry over the OCI distribution spec (containerd's remotes.Pusher): HEAD to skip what the
// repository has, cross-repository mount (`POST …/blobs/uploads/?mount=&from=`), one PUT for small blobs and
// PATCH chunks for large ones (each chunk re-sent from the offset the registry reports after a failure),
// and manifests PUT byte for byte. Only the registry's host with the push capability is used: pull-only
// mirrors never see a push. Auth, redirects and retries go through the same paths as fetching.
import type { Descriptor } from '../core/descriptor.ts';
import { HoistError } from '../core/errors.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { type Reference, repository } from '../core/reference.ts';
import { sleep } from '../core/sleep.ts';
import { ChunkReader } from './chunk-reader.ts';
import type { RegistryHost } from './hosts.ts';
import {
  backoffDelay,
  discard,
  type HttpMethod,
  type HttpResponse,
  header,
  isRetryableNetworkError,
} from './http.ts';
import { sendTo } from './send-to.ts';
import { requestUrl, statusError, type TransportOptions } from './transport.ts';
import type { BlobOpener, MountResult, PushBlobOptions, Pusher, UploadSession } from './types.ts';

/** Blobs smaller than this go up in one PUT; larger ones in PATCH chunks. */
export const DEFAULT_MONOLITHIC_LIMIT = 8 << 20;
/** Bytes per PATCH (held in memory once per blob being uploaded: 3 parallel uploads hold 48 MiB). */
export const DEFAULT_CHUNK_SIZE = 16 << 20;

export interface PusherContext {
  transport: TransportOptions;
  hosts: () => RegistryHost[];
  /** Attempts per request (and per chunk) on transient failures. */
  attempts: number;
  baseDelayMs: number;
  signal?: AbortSignal | undefined;
  monolithicLimit?: number | undefined;
  chunkSize?: number | undefined;
}

interface Call {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
  signal: AbortSignal | undefined;
}

const OCTET_STREAM = 'application/octet-stream';

/** Transient: worth another attempt (server errors, rate limits, dropped connections). */
function isTransient(err: unknown): boolean {
  if (!(err instanceof HoistError)) return false;
  if (err.code === 'HOIST_UNAVAILABLE') return true;
  return err.code === 'HOIST_NETWORK' && isRetryableNetworkError(err.cause);
}

/** `Range: 0-<end>` of an upload session → bytes the registry holds (`0-0` is read as none). */
function rangeOffset(res: HttpResponse): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range')?.trim() ?? '');
  if (!m) return undefined;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

export function createPusher(ctx: PusherContext, ref: Reference): Pusher {
  const repo = ref.path;
  const name = repository(ref);
  const pushScopes = [`repository:${repo}:pull,push`];
  const monolithicLimit = ctx.monolithicLimit ?? DEFAULT_MONOLITHIC_LIMIT;
  const chunkSize = Math.max(1, ctx.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const t = ctx.transport;

  const pushHost = (): RegistryHost => {
    const host = ctx.hosts().find((h) => h.capabilities.includes('push'));
    if (!host)
      throw new HoistError('HOIST_CONFIG', `${name}: no host for ${ref.domain} has the push capability`, {
        hint: 'add "push" to the capabilities of the registry server in its hosts.toml',
      });
    return host;
  };

  /** One request with the host's authorization (only to the host's own origin), re-tried once on a 401. */
  async function call(host: RegistryHost, scopes: string[], req: Call): Promise<HttpResponse> {
    const own = new URL(`${host.scheme}://${host.host}`).origin === req.url.origin;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': t.userAgent, ...(own ? host.headers : {}) };
      Object.assign(headers, req.headers);
      const authorization = own ? await t.authorizer.authorization(host, scopes, req.signal) : undefined;
      if (authorization) headers.authorization = authorization;
      const res = await sendTo(host, {
        method: req.method,
        url: req.url,
        headers,
        ...(req.body ? { body: req.body } : {}),
        tls: host.tls,
        signal: req.signal,
        attempts: t.attempts,
        baseDelayMs: t.baseDelayMs,
        timeouts: t.timeouts,
        log: t.log,
      });
      if (res.status !== 401 || attempt > 0 || !own || res.url.host !== req.url.host) return res;
      if (!(await t.authorizer.onUnauthorized(host, res, scopes))) {
        // Parallel requests sent before the first challenge was answered: Basic credentials are known now.
        if (authorization !== undefined) return res;
        if ((await t.authorizer.authorization(host, scopes, req.signal)) === undefined) return res;
      }
      await discard(res);
    }
  }

  /** Run `fn` again after transient failures, with backoff; `attempt` counts from 0. */
  async function retrying<T>(
    signal: AbortSignal | undefined,
    fn: (attempt: number) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (attempt + 1 >= ctx.attempts || !isTransient(err) || signal?.aborted) throw err;
        await pause(attempt, signal);
      }
    }
  }

  async function pause(attempt: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await sleep(backoffDelay(attempt, ctx.baseDelayMs), signal);
    } catch (err) {
      throw new HoistError('HOIST_CANCELLED', 'operation cancelled', { cause: err });
    }
  }

  function sessionFrom(res: HttpResponse, what: string, host: RegistryHost): UploadSession {
    const location = header(res.headers, 'location');
    if (!location)
      throw new HoistError('HOIST_REGISTRY', `${host.host}: ${what}: upload answered without a Location`);
    const session: UploadSession = { location: new URL(location, res.url) };
    const min = Number(header(res.headers, 'oci-chunk-min-length'));
    if (Number.isSafeInteger(min) && min > 0) session.minChunkSize = min;
    return session;
  }

  async function startUpload(host: RegistryHost, what: string, signal: AbortSignal | undefined) {
    const res = await call(host, pushScopes, {
      method: 'POST',
      url: requestUrl(host, repo, '/blobs/uploads/'),
      headers: { 'content-length': '0' },
      signal,
    });
    if (res.status !== 202) throw await statusError(host, what, res);
    await discard(res);
    return sessionFrom(res, what, host);
  }

  /** Where an upload session stands: the registry's offset and the session's next URL. */
  async function uploadStatus(
    host: RegistryHost,
    session: UploadSession,
    what: string,
    signal?: AbortSignal,
  ) {
    const res = await call(host, pushScopes, { method: 'GET', url: session.location, signal });
    if (res.status !== 204 && res.status !== 200)
      throw await statusError(host, `${what} upload session`, res);
    await discard(res);
    const next = header(res.headers, 'location');
    return {
      offset: rangeOffset(res) ?? 0,
      session: next ? { ...session, location: new URL(next, res.url) } : session,
    };
  }

  /** PUT …?digest= closes the session; `body` is the last (or only) part. */
  async function finish(
    host: RegistryHost,
    session: UploadSession,
    desc: Descriptor,
    what: string,
    body?: Buffer,
    signal?: AbortSignal,
  ) {
    const url = new URL(session.location);
    url.searchParams.set('digest', desc.digest);
    const res = await call(host, pushScopes, {
      method: 'PUT',
      url,
      headers: { 'content-type': OCTET_STREAM, 'content-length': String(body?.byteLength ?? 0) },
      ...(body ? { body } : {}),
      signal,
    });
    if (res.status !== 201 && res.status !== 204 && res.status !== 200)
      throw await statusError(host, what, res);
    await discard(res);
  }

  async function exists(desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const host = pushHost();
    const manifestLike = isManifest(desc.mediaType) || isIndex(desc.mediaType);
    const path = `/${manifestLike ? 'manifests' : 'blobs'}/${desc.digest}`;
    const headers: Record<string, string> = manifestLike ? { accept: desc.mediaType } : {};
    const res = await call(host, pushScopes, {
      method: 'HEAD',
      url: requestUrl(host, repo, path),
      headers,
      signal: opts.signal ?? ctx.signal,
    });
    await discard(res);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await statusError(host, `${name}@${desc.digest}`, res);
  }

  async function mount(
    desc: Descriptor,
    from: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<MountResult> {
    const host = pushHost();
    const signal = opts.signal ?? ctx.signal;
    const url = requestUrl(host, repo, '/blobs/uploads/');
    url.searchParams.set('mount', desc.digest);
    url.searchParams.set('from', from);
    const scopes = [...pushScopes, `repository:${from}:pull`];
    const res = await retrying(signal, async () => {
      const r = await call(host, scopes, { method: 'POST', url, headers: { 'content-length': '0' }, signal });
      if (r.status === 429 || r.status >= 500)
        throw await statusError(host, `${name}: mount ${desc.digest}`, r);
      return r;
    });
    await discard(res);
    if (res.status === 201) return { mounted: true };
    // 202: the registry could not mount (the source lacks the blob, or we may not read it) and opened an
    // upload instead. Anything else: no mount; the upload path reports real errors itself.
    if (res.status === 202 && header(res.headers, 'location'))
      return { mounted: false, session: sessionFrom(res, `${name}: blob ${desc.digest}`, host) };
    return { mounted: false };
  }

  async function pushMonolithic(
    host: RegistryHost,
    desc: Descriptor,
    open: BlobOpener,
    opts: PushBlobOptions,
  ) {
    const what = `${name}: blob ${desc.digest}`;
    const signal = opts.signal ?? ctx.signal;
    const reader = new ChunkReader(await open(0));
    let body: Buffer;
    try {
      body = await reader.read(desc.size);
    } finally {
      reader.close();
    }
    if (body.byteLength !== desc.size)
      throw new HoistError(
        'HOIST_SIZE_MISMATCH',
        `${what}: the local blob has ${body.byteLength} of ${desc.size} bytes`,
      );
    await retrying(signal, async (attempt) => {
      // A retried PUT may have landed before its connection broke: ask before sending again.
      if (attempt > 0 && (await exists(desc, signal ? { signal } : {}))) return;
      const session = attempt === 0 && opts.session ? opts.session : await startUpload(host, what, signal);
      await finish(host, session, desc, what, body, signal);
    });
    opts.onProgress?.(desc.size);
  }

  async function pushChunked(host: RegistryHost, desc: Descriptor, open: BlobOpener, opts: PushBlobOptions) {
    const what = `${name}: blob ${desc.digest}`;
    const signal = opts.signal ?? ctx.signal;
    let session = opts.session ?? (await retrying(signal, () => startUpload(host, what, signal)));
    const size = Math.max(chunkSize, session.minChunkSize ?? 0);
    let offset = 0;
    let reader = new ChunkReader(await open(0));
    let failures = 0;
    try {
      while (offset < desc.size) {
        const chunk = await reader.read(Math.min(size, desc.size - offset));
        if (chunk.byteLength === 0)
          throw new HoistError(
            'HOIST_SIZE_MISMATCH',
            `${what}: the local blob ends at ${offset} of ${desc.size} bytes`,
          );
        let sent = 0;
        let reopenAt: number | undefined;
        while (sent < chunk.byteLength) {
          const start = offset + sent;
          const part = chunk.subarray(sent);
          try {
            const res = await call(host, pushScopes, {
              method: 'PATCH',
              url: session.location,
              headers: {
                'content-type': OCTET_STREAM,
                'content-range': `${start}-${start + part.byteLength - 1}`,
                'content-length': String(part.byteLength),
              },
              body: part,
              signal,
            });
            if (res.status !== 202) {
              if (res.status !== 416) throw await statusError(host, what, res);
              await discard(res);
              throw new HoistError(
                'HOIST_UNAVAILABLE',
                `${host.host}: ${what}: registry refused the chunk at ${start}`,
              );
            }
            await discard(res);
            const next = header(res.headers, 'location');
            if (next) session = { ...session, location: new URL(next, res.url) };
            const have = rangeOffset(res);
            if (have !== undefined && have < start + part.byteLength) {
              // The registry kept less than it was sent: the rest goes again, unless it kept nothing new.
              if (have <= start)
                throw new HoistError(
                  'HOIST_UNAVAILABLE',
                  `${host.host}: ${what}: registry kept no bytes of the chunk at ${start}`,
                );
              sent = have - offset;
            } else sent = chunk.byteLength;
            failures = 0;
          } catch (err) {
            failures++;
            if (!isTransient(err) || failures >= ctx.attempts || signal?.aborted) throw err;
            await pause(failures - 1, signal);
            let status: { offset: number; session: UploadSession };
            try {
              status = await uploadStatus(host, session, what, signal);
            } catch (statusErr) {
              const broken =
                statusErr instanceof HoistError &&
                ['HOIST_NOT_FOUND', 'HOIST_REGISTRY'].includes(statusErr.code);
              if (!broken) throw statusErr;
              // The session is gone (or the registry gave it up after a partial chunk): start over.
              status = { offset: 0, session: await startUpload(host, what, signal) };
            }
            session = status.session;
            if (status.offset >= offset && status.offset <= offset + chunk.byteLength) {
              sent = status.offset - offset;
            } else {
              reopenAt = status.offset;
              break;
            }
          }
        }
        if (reopenAt !== undefined) {
          reader.close();
          reader = new ChunkReader(await open(reopenAt));
          offset = reopenAt;
          continue;
        }
        offset += chunk.byteLength;
        opts.onProgress?.(offset);
      }
    } finally {
      reader.close();
    }
    await retrying(signal, async (attempt) => {
      if (attempt > 0 && (await exists(desc, signal ? { signal } : {}))) return;
      await finish(host, session, desc, what, undefined, signal);
    });
  }

  return {
    exists,
    mount,
    async pushBlob(desc: Descriptor, open: BlobOpener, opts: PushBlobOptions = {}): Promise<void> {
      const host = pushHost();
      if (desc.size < monolithicLimit) await pushMonolithic(host, desc, open, opts);
      else await pushChunked(host, desc, open, opts);
    },
    async pushManifest(tagOrDigest, desc, bytes, opts = {}): Promise<void> {
      const host = pushHost();
      const signal = opts.signal ?? ctx.signal;
      const what = `${name}:${tagOrDigest}`;
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await retrying(signal, async () => {
        const res = await call(host, pushScopes, {
          method: 'PUT',
          url: requestUrl(host, repo, `/manifests/${tagOrDigest}`),
          headers: { 'content-type': desc.mediaType, 'content-length': String(body.byteLength) },
          body,
          signal,
        });
        if (res.status !== 201 && res.status !== 200 && res.status !== 202)
          throw await statusError(host, what, res);
        await discard(res);
        const stored = header(res.headers, 'docker-content-digest');
        if (stored?.startsWith('sha256:') && stored !== desc.digest)
          throw new HoistError(
            'HOIST_DIGEST_MISMATCH',
            `${host.host}: ${what}: the registry stored the manifest as ${stored}, expected ${desc.digest}`,
            { hint: 'the registry rewrote the manifest; pull by tag will not match the local digest' },
          );
      });
    },
  };
}
