// Streaming blob and manifest download with HTTP Range resume. The stream yields exactly the bytes from
// `offset` to the descriptor's size: a server that ignores Range (200 instead of 206) has the first
// `offset` bytes skipped; a connection that drops mid-body is resumed with a new Range request (up to the
// retry budget); a body that ends short or runs long is an error. Digests are NOT checked here; the
// content writer does that with the one DigestVerifier.
//
// Mirrors (peers' stores, hosts.toml `[host]` entries) are tried first and given one chance each: a mirror
// that refuses, fails mid-body, stalls or sends too much is dropped for this blob and the next host (in the
// end the upstream) continues at the same byte. The stream says whether a mirror sent any of its bytes
// (`mirrored`), so that a blob that then fails its digest is fetched again without them (fetch-blob.ts).
import { Readable } from 'node:stream';
import { checkDocumentSize, type Descriptor } from '../core/descriptor.ts';
import { HoistError, invalidArgument } from '../core/errors.ts';
import type { Limiter } from '../core/limiter.ts';
import type { Logger } from '../core/log.ts';
import { isIndex, isManifest, MANIFEST_ACCEPT } from '../core/mediatypes.ts';
import { dropReadBuffers } from '../core/read-buffers.ts';
import { type Reference, repository } from '../core/reference.ts';
import { sleep } from '../core/sleep.ts';
import type { RegistryHost } from './hosts.ts';
import {
  backoffDelay,
  describeNetworkError,
  discard,
  type HttpResponse,
  header,
  isRetryableNetworkError,
  networkError,
} from './http.ts';
import { RegistryTimeout } from './timeouts.ts';
import { registryRequest, statusError, type TransportOptions, tryHosts } from './transport.ts';
import type { Fetcher, FetchOptions } from './types.ts';

export interface FetcherContext {
  transport: TransportOptions;
  hosts: () => RegistryHost[];
  /** Discovered peers for a blob, tried before `hosts` (pull-only mirrors). */
  peers?: ((digest: string) => Promise<RegistryHost[]>) | undefined;
  limiter: Limiter;
  attempts: number;
  signal?: AbortSignal | undefined;
}

/** Parse `Content-Range: bytes <start>-<end>/<size|*>`; undefined when absent or unparsable. */
function contentRangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes\s+(\d+)-\d+\/(?:\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

interface Opened {
  res: HttpResponse;
  /** Bytes at the start of the body to drop (the server ignored Range). */
  skip: number;
}

async function openAt(
  ctx: FetcherContext,
  host: RegistryHost,
  ref: Reference,
  desc: Descriptor,
  offset: number,
  signal: AbortSignal | undefined,
  oneTry: boolean,
): Promise<Opened> {
  const manifestLike = isManifest(desc.mediaType) || isIndex(desc.mediaType);
  const paths = manifestLike
    ? [`/manifests/${desc.digest}`, `/blobs/${desc.digest}`]
    : [`/blobs/${desc.digest}`];
  const what = manifestLike ? `${repository(ref)}@${desc.digest}` : `${repository(ref)}: blob ${desc.digest}`;
  const headers: Record<string, string> = {
    accept: manifestLike ? `${desc.mediaType}, ${MANIFEST_ACCEPT}` : '*/*',
  };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  let res: HttpResponse | undefined;
  // A mirror that does not answer at once is skipped, not retried: a later host is the fallback.
  const transport = oneTry ? { ...ctx.transport, attempts: 1 } : ctx.transport;
  for (const path of paths) {
    res = await registryRequest(transport, host, {
      method: 'GET',
      repository: ref.path,
      path,
      headers,
      signal,
    });
    if (res.status !== 404 || path === paths[paths.length - 1]) break;
    await discard(res);
  }
  if (!res) throw new HoistError('HOIST_INTERNAL', 'no request was made');
  if (res.status === 206) {
    const start = contentRangeStart(res);
    if (start === offset) return { res, skip: 0 };
    if (start === undefined && offset === 0) return { res, skip: 0 };
    await discard(res);
    throw new HoistError(
      'HOIST_REGISTRY',
      `${host.host}: ${what}: asked for bytes from ${offset}, got Content-Range ${header(res.headers, 'content-range')}`,
    );
  }
  if (res.status === 200) return { res, skip: offset };
  throw await statusError(host, what, res);
}

/** Chunks buffered ahead of the consumer (each one socket read, at most 64 KiB). */
const CHUNKS_AHEAD = 16;

/**
 * Readable over one or more response bodies (a new Range request after a dropped connection). It hands each
 * socket read on as it came, in object mode: a byte-mode Readable's read() concatenates whatever is buffered
 * into a new Buffer, one extra copy of every byte (measured: ~60 ms of a 160 MB pull, plus its garbage).
 */
class DownloadStream extends Readable {
  #opened: Opened;
  #open: (host: RegistryHost, position: number) => Promise<Opened>;
  /** Hosts after the current one, for a mirror that fails part-way. */
  #next: RegistryHost[];
  #what: string;
  /** Did a mirror send any of the bytes handed on (then a digest mismatch may be its doing)? */
  mirrored = false;
  #position: number;
  #end: number | undefined;
  #attempts: number;
  #release: () => void;
  #label: string;
  #host: RegistryHost;
  #signal: AbortSignal | undefined;
  #log: Logger | undefined;
  #running = false;

  constructor(
    opened: Opened,
    opts: {
      offset: number;
      size: number | undefined;
      attempts: number;
      release: () => void;
      label: string;
      host: RegistryHost;
      signal: AbortSignal | undefined;
      open: (host: RegistryHost, position: number) => Promise<Opened>;
      next: RegistryHost[];
      what: string;
      log: Logger | undefined;
    },
  ) {
    super({ objectMode: true, highWaterMark: CHUNKS_AHEAD });
    this.#opened = opened;
    this.#position = opts.offset;
    this.#end = opts.size;
    this.#attempts = opts.attempts;
    this.#release = opts.release;
    this.#label = opts.label;
    this.#host = opts.host;
    this.#signal = opts.signal;
    this.#open = opts.open;
    this.#next = opts.next;
    this.#what = opts.what;
    this.#log = opts.log;
  }

  override _read(): void {
    if (this.#running) {
      this.#opened.res.body.resume();
      return;
    }
    this.#running = true;
    this.#pump().then(
      () => {
        this.#release();
        if (!this.destroyed) this.push(null);
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#release();
    this.#opened.res.body.destroy();
    cb(err);
  }

  async #pump(): Promise<void> {
    let failures = 0;
    for (;;) {
      const openedAt = this.#position;
      try {
        await this.#copy(this.#opened);
        if (
          this.#host.mirror &&
          this.#next.length > 0 &&
          this.#end !== undefined &&
          this.#position < this.#end
        )
          throw new HoistError('HOIST_NETWORK', `${this.#host.host}: ${this.#label}: response ended early`);
      } catch (err) {
        if (this.destroyed) throw err;
        if (this.#host.mirror && this.#next.length > 0 && !this.#signal?.aborted) {
          if (this.#log?.enabled('debug'))
            this.#log.debug('mirror failed part-way, continuing from the next host', {
              what: this.#what,
              host: this.#host.host,
              at: this.#position,
              error: err instanceof Error ? err.message : String(err),
              next: this.#next[0]!.host,
            });
          this.#opened = await this.#failOver(err);
          continue;
        }
        if (err instanceof HoistError) throw err;
        // An abort surfaces on the body as a reset connection: it must not be retried.
        if (this.#signal?.aborted || (err as Error).name === 'AbortError')
          throw new HoistError('HOIST_CANCELLED', 'operation cancelled', { cause: err });
        failures++;
        // A stalled body is resumed only if it moved since it was opened: a server that stalls every
        // time would otherwise hold the pull for a deadline per attempt.
        const stalled = err instanceof RegistryTimeout && this.#position === openedAt;
        if (stalled || !isRetryableNetworkError(err) || failures >= this.#attempts)
          throw networkError(this.#host.host, err, this.#opened.res.url);
        const delayMs = backoffDelay(failures - 1, 200);
        if (this.#log?.enabled('warn'))
          this.#log.warn('download interrupted, resuming', {
            what: this.#what,
            host: this.#host.host,
            at: this.#position,
            error: describeNetworkError(err),
            attempt: failures,
            of: this.#attempts,
            retry_in_ms: Math.round(delayMs),
          });
        await sleep(delayMs, this.#signal);
        if (this.destroyed) return;
        this.#opened = await this.#open(this.#host, this.#position);
        continue;
      }
      if (this.#end !== undefined && this.#position < this.#end) {
        throw new HoistError(
          'HOIST_NETWORK',
          `${this.#host.host}: ${this.#label}: response ended after ${this.#position} of ${this.#end} bytes`,
          { hint: 'the transfer was cut short; retrying the pull resumes it' },
        );
      }
      return;
    }
  }

  /** Drop the failed mirror for this blob: the next host that opens continues at the same byte. */
  async #failOver(cause: unknown): Promise<Opened> {
    this.#opened.res.body.destroy();
    const hosts = this.#next;
    return tryHosts(
      hosts,
      this.#what,
      async (host) => {
        const opened = await this.#open(host, this.#position);
        this.#host = host;
        this.#next = hosts.slice(hosts.indexOf(host) + 1);
        return opened;
      },
      this.#log,
    ).catch((err: unknown) => {
      throw err instanceof HoistError ? err : networkError(this.#host.host, cause, this.#opened.res.url);
    });
  }

  /** One body, in flowing mode ('data' hands over each read without copying), paused while we are full. */
  #copy(opened: Opened): Promise<void> {
    const body = opened.res.body;
    let skip = opened.skip;
    return new Promise<void>((resolve, reject) => {
      const onData = (raw: Buffer) => {
        if (this.destroyed) return;
        dropReadBuffers(raw.byteLength);
        let chunk = raw;
        if (skip > 0) {
          if (chunk.byteLength <= skip) {
            skip -= chunk.byteLength;
            return;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        if (this.#host.mirror) this.mirrored = true;
        // Checked before counting: a mirror dropped for sending too much is followed from the last good byte.
        if (this.#end !== undefined && this.#position + chunk.byteLength > this.#end) {
          done();
          body.destroy();
          reject(
            new HoistError(
              'HOIST_SIZE_MISMATCH',
              `${this.#host.host}: ${this.#label}: more data than the expected ${this.#end} bytes`,
              { hint: 'the registry serves content that does not match its descriptor' },
            ),
          );
          return;
        }
        this.#position += chunk.byteLength;
        if (!this.push(chunk)) body.pause();
      };
      const onEnd = () => {
        done();
        resolve();
      };
      const onError = (err: unknown) => {
        done();
        reject(err);
      };
      // A body closed before its end without an error of its own (this stream was destroyed, or the
      // connection went away quietly) is a reset connection.
      const onClose = () => {
        done();
        if (this.destroyed) resolve();
        else
          reject(Object.assign(new Error('connection closed before the body ended'), { code: 'ECONNRESET' }));
      };
      const done = () => {
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('close', onClose);
        // A late error of a body we are done with (destroyed, or replaced) must not be unhandled.
        body.on('error', () => undefined);
      };
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      body.on('close', onClose);
    });
  }
}

export function createFetcher(ctx: FetcherContext, ref: Reference): Fetcher {
  return {
    async fetch(desc: Descriptor, opts: FetchOptions = {}): Promise<Readable> {
      const offset = opts.offset ?? 0;
      const signal = opts.signal ?? ctx.signal;
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw invalidArgument(`invalid fetch offset ${offset}`);
      const size = desc.size >= 0 ? desc.size : undefined;
      if (size !== undefined && offset > size)
        throw invalidArgument(`fetch offset ${offset} is beyond the end of ${desc.digest} (${size} bytes)`);
      if (size !== undefined && offset === size) return Readable.from([]);
      checkDocumentSize(desc, repository(ref));
      const manifestLike = isManifest(desc.mediaType) || isIndex(desc.mediaType);
      const peers = opts.skipMirrors || !ctx.peers ? [] : await ctx.peers(desc.digest);
      const configured = ctx
        .hosts()
        .filter((h) => h.capabilities.includes('pull') && !(opts.skipMirrors && h.mirror))
        .filter((h) => !peers.some((p) => p.host === h.host));
      const hosts = [...peers, ...configured];
      const label = manifestLike ? `manifest ${desc.digest}` : `blob ${desc.digest}`;
      const release = manifestLike ? () => {} : await ctx.limiter.acquire(signal);
      try {
        const what = `${repository(ref)}@${desc.digest}`;
        const last = hosts[hosts.length - 1];
        const open = (h: RegistryHost, position: number) =>
          openAt(ctx, h, ref, desc, position, signal, h.mirror && h !== last);
        return await tryHosts(
          hosts,
          what,
          async (host) => {
            const opened = await open(host, offset);
            return new DownloadStream(opened, {
              offset,
              size,
              attempts: ctx.attempts,
              release,
              label,
              host,
              signal,
              open,
              next: hosts.slice(hosts.indexOf(host) + 1),
              what,
              log: ctx.transport.log,
            });
          },
          ctx.transport.log,
        );
      } catch (err) {
        release();
        throw err;
      }
    },
  };
}
