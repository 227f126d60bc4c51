// A request to one registry host for one repository: URL building (API path, `?ns=` for mirrors, hosts.toml
// headers), authorization with one re-scoped retry on 401, and the mapping of HTTP failures to hoist errors.
import { HoistError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { type Authorizer, errorDetail, unauthorizedError } from './auth.ts';
import type { RegistryHost } from './hosts.ts';
import { discard, type HttpMethod, type HttpResponse } from './http.ts';
import { sendTo } from './send-to.ts';
import type { RegistryTimeouts } from './timeouts.ts';

export interface TransportOptions {
  authorizer: Authorizer;
  userAgent: string;
  attempts: number;
  baseDelayMs: number;
  timeouts?: RegistryTimeouts | undefined;
  /** Requests, retries, fallbacks between hosts (debug and warn lines). */
  log?: Logger | undefined;
}

export interface RegistryRequest {
  method: HttpMethod;
  /** Repository inside the registry, e.g. `library/alpine`. */
  repository: string;
  /** Path after `/v2/<repository>`, e.g. `/manifests/latest`. */
  path: string;
  headers?: Record<string, string>;
  /** Token scope actions (default `pull`). */
  actions?: string[];
  signal?: AbortSignal | undefined;
}

export function requestUrl(host: RegistryHost, repository: string, path: string): URL {
  const url = new URL(`${host.scheme}://${host.host}${host.path}/${repository}${path}`);
  // containerd tells a mirror which registry the request is for.
  if (host.mirror) url.searchParams.set('ns', host.registry);
  return url;
}

/** Send a registry request, authorizing as the host asks; non-2xx answers are returned to the caller. */
export async function registryRequest(
  opts: TransportOptions,
  host: RegistryHost,
  req: RegistryRequest,
): Promise<HttpResponse> {
  const scopes = [`repository:${req.repository}:${(req.actions ?? ['pull']).join(',')}`];
  for (let attempt = 0; ; attempt++) {
    const url = requestUrl(host, req.repository, req.path);
    const headers: Record<string, string> = { 'user-agent': opts.userAgent, ...host.headers, ...req.headers };
    const authorization = await opts.authorizer.authorization(host, scopes, req.signal);
    if (authorization) headers.authorization = authorization;
    const res = await sendTo(host, {
      method: req.method,
      url,
      headers,
      tls: host.tls,
      signal: req.signal,
      attempts: opts.attempts,
      baseDelayMs: opts.baseDelayMs,
      timeouts: opts.timeouts,
      log: opts.log,
    });
    if (res.status !== 401 || attempt > 0) return res;
    // Only a 401 from the registry itself is a challenge; after a redirect it is someone else's.
    if (res.url.host !== url.host) return res;
    const retry = await opts.authorizer.onUnauthorized(host, res, scopes);
    if (!retry) return res; // its body (the registry's error text) is left for statusError
    await discard(res);
  }
}

/**
 * Turn a failed response into a one-line HoistError. `what` names the object (`<ref>` or
 * `blob sha256:…`), used verbatim in the containerd-shaped `<what>: not found`.
 */
export async function statusError(host: RegistryHost, what: string, res: HttpResponse): Promise<HoistError> {
  const detail = await errorDetail(res);
  switch (res.status) {
    case 401:
      return unauthorizedError(host.host, host.registry, `unauthorized to access ${what}: ${detail}`);
    case 403:
      return new HoistError('HOIST_DENIED', `${host.host}: access to ${what} denied: ${detail}`, {
        hint: 'the account lacks permission for this repository; check the name and your access',
      });
    case 404:
      return new HoistError('HOIST_NOT_FOUND', `${what}: not found`);
    case 429:
      return new HoistError('HOIST_UNAVAILABLE', `${host.host}: too many requests (${detail})`, {
        hint: 'the registry is rate-limiting; wait and try again, or log in for a higher limit',
      });
    default:
      if (res.status >= 500)
        return new HoistError('HOIST_UNAVAILABLE', `${host.host}: server error ${res.status}: ${detail}`, {
          hint: 'the registry is failing; try again later',
        });
      return new HoistError(
        'HOIST_REGISTRY',
        `${host.host}: ${what}: unexpected status ${res.status}: ${detail}`,
      );
  }
}

/**
 * Try each host in order; the first success wins. NOT_FOUND and network/server failures move on to the
 * next host; authentication and permission errors too (a mirror may be private), but they are what is
 * reported when no host succeeds, with every host tried named in the message.
 */
export async function tryHosts<T>(
  hosts: RegistryHost[],
  what: string,
  attempt: (host: RegistryHost) => Promise<T>,
  log?: Logger,
): Promise<T> {
  if (hosts.length === 0)
    throw new HoistError('HOIST_CONFIG', `${what}: no registry host configured with the needed capability`, {
      hint: 'check capabilities in hosts.toml',
    });
  const failures: { host: RegistryHost; err: HoistError }[] = [];
  for (const host of hosts) {
    try {
      return await attempt(host);
    } catch (err) {
      if (!(err instanceof HoistError)) throw err;
      if (err.code === 'HOIST_CANCELLED' || err.code === 'HOIST_DIGEST_MISMATCH') throw err;
      failures.push({ host, err });
      const next = hosts[failures.length];
      if (next && log?.enabled('debug'))
        log.debug('registry host failed, trying the next one', {
          what,
          host: host.host,
          ...(host.mirror ? { mirror: true } : {}),
          error: err.message,
          next: next.host,
        });
    }
  }
  return Promise.reject(combineFailures(failures));
}

function combineFailures(failures: { host: RegistryHost; err: HoistError }[]): HoistError {
  const last = failures[failures.length - 1]!;
  if (failures.length === 1) return last.err;
  // The most telling failure: the upstream's, unless it only failed to connect and a mirror said more.
  const chosen =
    last.err.code === 'HOIST_NETWORK' ? (failures.find((f) => f.err.code !== 'HOIST_NETWORK') ?? last) : last;
  const others = failures
    .filter((f) => f !== chosen)
    .map((f) => (f.err.message.includes(f.host.host) ? f.err.message : `${f.host.host}: ${f.err.message}`));
  const tried = failures.map((f) => f.host.host).join(', ');
  const opts: { cause: unknown; hint?: string } = { cause: chosen.err };
  if (chosen.err.hint) opts.hint = chosen.err.hint;
  return new HoistError(
    chosen.err.code,
    `${chosen.err.message} (tried ${tried}; ${others.join('; ')})`,
    opts,
  );
}
