// `hoist serve --registry-address`: a read-only OCI Distribution endpoint over the store, so that other
// nodes can list this one as a hosts.toml mirror and pull layers it already has. GET and HEAD on /v2/,
// manifests (by tag or digest), blobs (with one Range) and tags/list; every write is 405 UNSUPPORTED.
// Committed content only, streamed from its file (a peer's pull holds one read buffer per connection).
// Plain HTTP and no authentication, as the metrics endpoint: bind it to a node-internal address; what a
// peer gets is checked against digests by the puller, so a peer can at worst be slow or refuse. With
// peers configured, a blob the store lacks is redirected (307) to a peer that has it (peer-redirect.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Backend } from '../../api/backend.ts';
import type { TcpAddress } from '../../config/config.ts';
import { isIdentifier } from '../../core/context.ts';
import { invalidArgument } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { type HttpEndpoint, listenHttp } from '../http-endpoint.ts';
import { DistributionError, sendError } from './errors.ts';
import { checkDigest, checkName, imageNames, StoreLookup } from './lookup.ts';
import { type BlobLocator, REDIRECTED } from './peer-redirect.ts';
import { parseRange } from './range.ts';

export type RegistryEndpoint = HttpEndpoint;

/** What a request asked for, as metrics label it: the API root, a manifest, a blob, a tag list, or other. */
export type RegistryRoute = 'base' | 'manifests' | 'blobs' | 'tags' | 'other';

export interface RegistryEndpointOptions {
  backend: Backend;
  /** The store namespaces whose images are served, searched in this order. */
  namespaces: readonly string[];
  log: Logger;
  /** Each request once it is over: its route, status and the body bytes sent (the daemon's metrics). */
  observe?: (route: RegistryRoute, status: number, bytes: number) => void;
  /** Where to redirect a request for a blob the store lacks (a peer that has it), when peers are known. */
  locator?: BlobLocator | undefined;
}

/** Body bytes a response has sent so far. */
interface Sent {
  bytes: number;
}

function routeOf(url: string | undefined): RegistryRoute {
  const path = (url ?? '/').split('?')[0]!;
  if (path === '/v2/' || path === '/v2') return 'base';
  const kind = ROUTE.exec(path)?.[2];
  return kind === 'manifests' || kind === 'blobs' || kind === 'tags' ? kind : 'other';
}

/** Stream a stored body to the response, counting what is read out to it. */
async function send(body: Readable, res: ServerResponse, sent: Sent): Promise<void> {
  body.on('data', (chunk: Buffer) => {
    sent.bytes += chunk.byteLength;
  });
  await pipeline(body, res);
}

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs|tags)\/([^/]+)$/;

/** A path segment with its escapes undone (`sha256%3A…`); a broken escape is a bad reference, not a 500. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new DistributionError('DIGEST_INVALID', `invalid reference ${JSON.stringify(segment)}`);
  }
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  lookup: StoreLookup,
  opts: RegistryEndpointOptions,
  sent: Sent,
) {
  const { backend } = opts;
  const url = new URL(req.url ?? '/', 'http://peer');
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD')
    throw new DistributionError('UNSUPPORTED', `${method}: this registry is read-only (a peer mirror)`);
  if (url.pathname === '/v2/' || url.pathname === '/v2') {
    res.writeHead(200, { ...API_VERSION, 'content-type': 'application/json', 'content-length': 2 });
    if (method !== 'HEAD') sent.bytes += 2;
    res.end(method === 'HEAD' ? undefined : '{}');
    return;
  }
  const m = ROUTE.exec(url.pathname);
  if (!m) throw new DistributionError('NAME_UNKNOWN', `no such endpoint: ${url.pathname}`);
  const [, name, kind, reference] = m as unknown as [string, string, string, string];
  checkName(name);
  const ns = url.searchParams.get('ns') || undefined;
  if (kind === 'tags') {
    if (reference !== 'list')
      throw new DistributionError('NAME_UNKNOWN', `no such endpoint: ${url.pathname}`);
    return tagsList(res, method, lookup, name, ns, sent);
  }
  if (kind === 'manifests') {
    const found = await lookup.manifest(name, decoded(reference), ns);
    const headers = {
      ...API_VERSION,
      'content-type': found.mediaType,
      'content-length': found.size,
      'docker-content-digest': found.digest,
      etag: `"${found.digest}"`,
    };
    if (method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    const body = await backend.content.reader({ namespace: found.namespace }, found.digest);
    res.writeHead(200, headers);
    await send(body, res, sent);
    return;
  }
  const digest = checkDigest(decoded(reference));
  const found = await lookup.blob(digest);
  if (!found) {
    const peer =
      opts.locator && url.searchParams.get(REDIRECTED) === null
        ? await opts.locator.locate(digest, name, ns)
        : undefined;
    if (peer) {
      res.writeHead(307, { ...API_VERSION, location: peer, 'content-length': 0 }).end();
      return;
    }
    throw new DistributionError('BLOB_UNKNOWN', `blob ${digest} is not known here`, { digest });
  }
  const size = found.info.size;
  const base = {
    ...API_VERSION,
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
  };
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...base, 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
    return;
  }
  const start = range.kind === 'part' ? range.start : 0;
  const end = range.kind === 'part' ? range.end : size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  const headers: Record<string, string | number> = { ...base, 'content-length': length };
  if (range.kind === 'part') headers['content-range'] = `bytes ${start}-${end}/${size}`;
  const status = range.kind === 'part' ? 206 : 200;
  if (method === 'HEAD' || length === 0) {
    res.writeHead(status, headers).end();
    return;
  }
  const body = await backend.content.reader({ namespace: found.namespace }, digest, {
    offset: start,
    length,
  });
  res.writeHead(status, headers);
  await send(body, res, sent);
}

async function tagsList(
  res: ServerResponse,
  method: string,
  lookup: StoreLookup,
  name: string,
  ns: string | undefined,
  sent: Sent,
): Promise<void> {
  const prefix = imageNames(name, 'x', ns)[0]!.slice(0, -1);
  const tags = await lookup.tags(prefix);
  if (tags.length === 0)
    throw new DistributionError('NAME_UNKNOWN', `repository ${JSON.stringify(name)} is not known here`, {
      name,
    });
  const body = JSON.stringify({ name, tags });
  res.writeHead(200, {
    ...API_VERSION,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  if (method !== 'HEAD') sent.bytes += Buffer.byteLength(body);
  res.end(method === 'HEAD' ? undefined : body);
}

export async function serveRegistry(
  at: TcpAddress,
  opts: RegistryEndpointOptions,
): Promise<RegistryEndpoint> {
  const { backend, log } = opts;
  for (const ns of opts.namespaces)
    if (!isIdentifier(ns))
      throw invalidArgument(`registry namespace ${JSON.stringify(ns)} is not a namespace name`);
  const lookup = new StoreLookup(backend, opts.namespaces);
  return listenHttp(at, log, 'registry endpoint', (req, res) => {
    const sent: Sent = { bytes: 0 };
    const { observe } = opts;
    if (observe) res.once('close', () => observe(routeOf(req.url), res.statusCode, sent.bytes));
    if (log.enabled('debug')) {
      const started = performance.now();
      res.once('close', () =>
        log.debug('registry request', {
          method: req.method,
          url: req.url,
          status: res.statusCode,
          range: req.headers.range,
          peer: req.socket.remoteAddress,
          ms: Math.round(performance.now() - started),
          complete: res.writableFinished,
        }),
      );
    }
    handle(req, res, lookup, opts, sent).catch((err: unknown) => {
      if (res.headersSent) {
        // Mid-body (the peer went away, or the file did): the peer sees a short body and moves on.
        log.debug('registry: response cut short', { url: req.url, error: err });
        res.destroy();
        return;
      }
      if (err instanceof DistributionError) return sendError(res, req.method, err);
      log.error('registry: request failed', { method: req.method, url: req.url, error: err });
      sendError(res, req.method, new DistributionError('UNKNOWN', 'internal error'));
    });
  });
}
