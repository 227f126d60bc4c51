// The one HTTP path for registry traffic: Node's own http/https clients on shared keep-alive Agents (one per
// TLS setup), manual redirects that never carry credentials to another origin, and retries with exponential
// backoff and jitter for idempotent requests. Node's client, not the undici package: loading undici cost a
// pull ~80 ms and ~28 MiB (110 modules), node:http ~3 MiB, and its parser is native (llhttp in C, no wasm
// copy), with each socket read handed on as one body chunk.
import type { Agent, IncomingHttpHeaders, IncomingMessage, RequestOptions } from 'node:http';
import type { Readable } from 'node:stream';
import { HoistError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { sleep } from '../core/sleep.ts';
import { loggableUrl } from './log-url.ts';
import { proxyAuthorization, proxyFor, tunnelAgent } from './proxy.ts';
import { DEFAULT_TIMEOUTS, RegistryTimeout, type RegistryTimeouts, watchRequest } from './timeouts.ts';

export const DEFAULT_USER_AGENT = 'hoist/0.1';

export interface TlsSettings {
  skipVerify: boolean;
  /** PEM contents of extra CA certificates (hosts.toml `ca`). */
  ca?: string[];
  /** Client certificates and their keys, PEM, pairwise (hosts.toml `client`). */
  cert?: string[];
  key?: string[];
}

type HttpModule = typeof import('node:http');
type HttpsModule = typeof import('node:https');
// getBuiltinModule, not import(): the ESM facade of node:http evaluates every export, and its lazy
// WebSocket/MessageEvent getters load Node's bundled undici (measured: +9 MiB, ~30 ms). https (and so
// node:tls) only when a registry speaks TLS.
const loadHttp = (): HttpModule => process.getBuiltinModule('node:http');
const loadHttps = (): HttpsModule => process.getBuiltinModule('node:https');

const agents = new Map<string, Agent>();

/**
 * A shared keep-alive Agent per scheme, TLS configuration and proxy (connections are pooled per origin
 * inside). Idle pooled sockets are unref'd by Node, so they never keep a finished command alive.
 */
export function agentFor(protocol: string, tls: TlsSettings, proxy?: URL): Agent {
  const secure = protocol === 'https:';
  const key = secure
    ? `https|${proxy?.href ?? ''}|${tls.skipVerify ? 'insecure' : 'verify'}|${[tls.ca, tls.cert, tls.key].map((l) => (l ?? []).join('\0')).join('\x01')}`
    : `http|${proxy?.href ?? ''}`;
  let agent = agents.get(key);
  if (!agent) {
    if (!secure) agent = new (loadHttp().Agent)({ keepAlive: true });
    else if (proxy) agent = tunnelAgent(proxy, tlsOptions(tls));
    else agent = new (loadHttps().Agent)({ keepAlive: true, ...tlsOptions(tls) });
    agents.set(key, agent);
  }
  return agent;
}

function tlsOptions(tls: TlsSettings): {
  rejectUnauthorized?: boolean;
  ca?: string[];
  cert?: string[];
  key?: string[];
} {
  const connect: { rejectUnauthorized?: boolean; ca?: string[]; cert?: string[]; key?: string[] } = {};
  if (tls.cert && tls.key && tls.cert.length > 0) {
    connect.cert = tls.cert;
    connect.key = tls.key;
  }
  if (tls.skipVerify) connect.rejectUnauthorized = false;
  if (tls.ca && tls.ca.length > 0) {
    // Extra CAs add to, not replace, the system roots.
    const { rootCertificates } = process.getBuiltinModule('node:tls');
    connect.ca = [...rootCertificates, ...tls.ca];
  }
  return connect;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body?: string | Buffer;
  tls: TlsSettings;
  signal?: AbortSignal | undefined;
  /** Attempts for idempotent requests (GET/HEAD) on network errors, 429 and 5xx. */
  attempts: number;
  /** First backoff delay; doubles on each attempt, with jitter. */
  baseDelayMs: number;
  maxRedirects?: number;
  /** Deadlines per phase (default DEFAULT_TIMEOUTS). */
  timeouts?: RegistryTimeouts | undefined;
  /** The proxy for this request (hosts.toml `proxy`), over the environment's. */
  proxy?: URL | undefined;
  /** Each request (debug: method, URL, status, time) and each retry (warn). */
  log?: Logger | undefined;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** The first value of a header as a string. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a header (WWW-Authenticate may come several times). */
export function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const v = headers[name.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Drain and discard a small body so the connection can be reused; a large one closes its connection. */
export async function discard(res: HttpResponse): Promise<void> {
  let left = 256 * 1024;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      left -= chunk.byteLength;
      if (left < 0) {
        res.body.destroy();
        return;
      }
    }
  } catch {
    // a broken connection is not our problem here
  }
}

/** Read a small body (error documents, tokens, manifests) with a size cap, declared or not. */
export async function readSmallBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length') ?? Number.NaN);
  if (Number.isSafeInteger(declared) && declared > limit) {
    res.body.destroy();
    throw new HoistError(
      'HOIST_TOO_LARGE',
      `${res.url.host}: the response declares ${declared} bytes, more than the ${limit} expected`,
      { hint: 'the registry answered with an unexpectedly large document' },
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > limit) {
        res.body.destroy();
        throw new HoistError('HOIST_TOO_LARGE', `${res.url.host}: response larger than ${limit} bytes`, {
          hint: 'the registry answered with an unexpectedly large document',
        });
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof HoistError) throw err;
    if ((err as Error).name === 'AbortError') throw cancelled(err);
    // A body cut off or stalled (idle timeout) is the registry's network failure, naming it.
    throw networkError(res.url.host, err, res.url);
  }
  return Buffer.concat(chunks);
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED']);

/** Transient failures worth another attempt (refused connections and DNS failures are not: wrong address). */
export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code !== undefined && RETRYABLE_CODES.has(code);
}

function isIdempotent(method: HttpMethod): boolean {
  return method === 'GET' || method === 'HEAD';
}

function retryAfterMs(headers: IncomingHttpHeaders): number | undefined {
  const v = header(headers, 'retry-after');
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoffDelay(attempt: number, baseMs: number): number {
  const exp = Math.min(baseMs * 2 ** attempt, 10_000);
  return exp / 2 + Math.random() * (exp / 2);
}

function cancelled(err?: unknown): HoistError {
  return new HoistError('HOIST_CANCELLED', 'operation cancelled', err ? { cause: err } : undefined);
}

/** One-line description of a low-level network error. */
export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: unknown };
  const inner = e.cause as { code?: string; message?: string } | undefined;
  const code = e.code && !e.code.startsWith('UND_ERR') ? e.code : (inner?.code ?? e.code);
  let msg = (inner?.message ?? e.message ?? String(err)).split('\n')[0];
  // OpenSSL errors carry a long library trace; keep the reason ("wrong version number").
  const reason = msg ? /routines:[^:]*:([^:]+):/.exec(msg) : null;
  if (reason) msg = `TLS handshake failed (${reason[1]})`;
  return code && !msg?.includes(code) ? `${code}: ${msg}` : (msg ?? String(err));
}

function networkHint(err: unknown, url: URL): string {
  const text = describeNetworkError(err);
  // The registry's TLS alert about our (missing or unaccepted) client certificate.
  if (/ALERT_BAD_CERTIFICATE|CERTIFICATE_REQUIRED|alert (bad certificate|certificate required)/i.test(text))
    return 'the registry asks for a client certificate it accepts: set client = [["client.cert", "client.key"]] in its certs.d/<host>/hosts.toml';
  if (/SSL|TLS|EPROTO|wrong version/i.test(text) && url.protocol === 'https:')
    return `the registry may speak plain HTTP: use --plain-http (or a http:// server in hosts.toml) if so`;
  if (/CERT|certificate|self.signed/i.test(text))
    return 'add the registry CA to certs.d/<host>/hosts.toml (ca = ...) or use --skip-verify for a test registry';
  return 'check the registry address and port, that it is running, and --plain-http for a plain-HTTP registry';
}

export function networkError(host: string, err: unknown, url: URL): HoistError {
  if (err instanceof RegistryTimeout)
    return new HoistError('HOIST_NETWORK', `registry ${host} did not answer in time: ${err.message}`, {
      cause: err,
      hint: `check that the registry is up and reachable; a slow one can be given longer with ${err.configKey} in the config file`,
    });
  return new HoistError('HOIST_NETWORK', `cannot reach registry ${host}: ${describeNetworkError(err)}`, {
    cause: err,
    hint: networkHint(err, url),
  });
}

/** Headers never forwarded to another origin on a redirect. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

async function sendOnce(req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> {
  const secure = url.protocol === 'https:';
  const proxy = req.proxy ?? proxyFor(url);
  const client = secure ? loadHttps() : loadHttp();
  const agent = agentFor(url.protocol, req.tls, proxy);
  const sent: Record<string, string> = { ...headers };
  // A length for every request that may carry a body (an empty PUT too), never chunked encoding.
  if (req.body !== undefined || !isIdempotent(req.method))
    sent['content-length'] = String(req.body === undefined ? 0 : Buffer.byteLength(req.body));
  const options: RequestOptions = { method: req.method, headers: sent, agent };
  if (req.signal) options.signal = req.signal;
  // Plain HTTP through a proxy: the whole URL as the request target, to the proxy's address.
  const forward = proxy && !secure;
  if (forward) {
    Object.assign(options, { host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxy.port || 80 });
    options.path = url.href;
    sent.host = url.host;
    const auth = proxyAuthorization(proxy);
    if (auth) sent['proxy-authorization'] = auth;
  }
  return new Promise<HttpResponse>((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      answered(res);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    };
    const request = forward ? client.request(options, onResponse) : client.request(url, options, onResponse);
    const answered = watchRequest(request, url.host, secure, req.timeouts ?? DEFAULT_TIMEOUTS);
    // After the answer, a socket error is also reported on the body; keep a listener for it here.
    request.on('error', reject);
    request.end(req.body);
  });
}

/**
 * Send a request: follows redirects by hand (dropping credentials on a change of origin) and retries
 * idempotent requests on transient failures. Non-2xx answers are returned, not thrown; network failures
 * after the last attempt throw HOIST_NETWORK naming the host.
 */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  let url = req.url;
  let method = req.method;
  let headers = { ...req.headers };
  let body = req.body;
  const maxRedirects = req.maxRedirects ?? 10;
  for (let hop = 0; ; hop++) {
    const res = await sendWithRetries({ ...req, method, body, url, headers });
    const location = header(res.headers, 'location');
    if (![301, 302, 303, 307, 308].includes(res.status) || location === undefined) return res;
    await discard(res);
    if (hop >= maxRedirects)
      throw new HoistError(
        'HOIST_REGISTRY',
        `${req.url.host}: too many redirects (more than ${maxRedirects})`,
      );
    const next = new URL(location, url);
    if (next.origin !== url.origin) {
      headers = Object.fromEntries(
        Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.includes(k.toLowerCase())),
      );
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
    url = next;
  }
}

async function sendWithRetries(req: HttpRequest): Promise<HttpResponse> {
  const attempts = isIdempotent(req.method) ? Math.max(1, req.attempts) : 1;
  for (let attempt = 0; ; attempt++) {
    if (req.signal?.aborted) throw cancelled(req.signal.reason);
    const last = attempt + 1 >= attempts;
    let res: HttpResponse;
    const started = performance.now();
    try {
      res = await sendOnce(req, req.url, req.headers);
    } catch (err) {
      if (req.signal?.aborted || (err as Error).name === 'AbortError') throw cancelled(err);
      // A host that let a whole deadline pass is not asked again: the wait would only multiply.
      if (last || err instanceof RegistryTimeout || !isRetryableNetworkError(err)) {
        logRequest(req, started, { error: describeNetworkError(err) });
        throw networkError(req.url.host, err, req.url);
      }
      const delayMs = backoffDelay(attempt, req.baseDelayMs);
      logRetry(req, attempt, delayMs, { error: describeNetworkError(err) });
      await wait(delayMs, req.signal);
      continue;
    }
    logRequest(req, started, { status: res.status });
    if (!last && (res.status === 429 || res.status >= 500)) {
      const after = retryAfterMs(res.headers);
      await discard(res);
      const delayMs = Math.min(after ?? backoffDelay(attempt, req.baseDelayMs), 60_000);
      logRetry(req, attempt, delayMs, { status: res.status });
      await wait(delayMs, req.signal);
      continue;
    }
    return res;
  }
}

/** The debug line of one request: its answer's status (the headers, before the body) or its error. */
function logRequest(req: HttpRequest, started: number, outcome: { status?: number; error?: string }): void {
  if (!req.log?.enabled('debug')) return;
  req.log.debug('registry request', {
    method: req.method,
    url: loggableUrl(req.url),
    ...outcome,
    duration_ms: Math.round(performance.now() - started),
  });
}

function logRetry(
  req: HttpRequest,
  attempt: number,
  delayMs: number,
  reason: { status?: number; error?: string },
): void {
  if (!req.log?.enabled('warn')) return;
  req.log.warn('registry request failed, retrying', {
    method: req.method,
    url: loggableUrl(req.url),
    ...reason,
    attempt: attempt + 1,
    of: req.attempts,
    retry_in_ms: Math.round(delayMs),
  });
}

async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, signal);
  } catch (err) {
    throw cancelled(err);
  }
}
