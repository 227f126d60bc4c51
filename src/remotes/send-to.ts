// Every request to a registry host itself goes through sendTo: the host's own settings from hosts.toml
// (dial_timeout, proxy) and the loopback registry's switch from HTTPS to plain HTTP live here, once.
import { HoistError } from '../core/errors.ts';
import type { RegistryHost } from './hosts.ts';
import { type HttpRequest, type HttpResponse, send } from './http.ts';
import { DEFAULT_TIMEOUTS, RegistryTimeout } from './timeouts.ts';

/**
 * Send a request to a registry host. A loopback host without a configured scheme (`httpFallback`) that
 * fails over HTTPS — most often a plain-HTTP registry answering a TLS handshake — is asked again over
 * HTTP, and the host (the resolver's cached one) stays on HTTP for every later request. A deadline is not
 * a reason to switch: a registry that did not answer will not answer over HTTP either.
 */
export async function sendTo(host: RegistryHost, request: HttpRequest): Promise<HttpResponse> {
  const req = withHostSettings(host, request);
  const loopback =
    host.httpFallback !== undefined && req.url.protocol === 'https:' && req.url.host === host.host;
  if (!loopback) return send(req);
  const overHttp = () => {
    const url = new URL(req.url);
    url.protocol = 'http:';
    return send({ ...req, url });
  };
  // A request built before a parallel one switched the host.
  if (host.scheme === 'http') return overHttp();
  try {
    return await send(req);
  } catch (err) {
    if (!(err instanceof HoistError) || err.code !== 'HOIST_NETWORK') throw err;
    if (err.cause instanceof RegistryTimeout) throw err;
    let res: HttpResponse;
    try {
      res = await overHttp();
    } catch {
      throw err; // neither scheme works: the HTTPS failure says more
    }
    host.scheme = 'http';
    host.httpFallback = false;
    req.log?.debug('loopback registry answers over plain HTTP, not HTTPS: using HTTP for it from now on', {
      host: host.host,
      https_error: err.message,
    });
    return res;
  }
}

/** hosts.toml's per-host `dial_timeout` and `proxy`, for requests to the host itself. */
function withHostSettings(host: RegistryHost, req: HttpRequest): HttpRequest {
  if ((host.dialTimeoutMs === undefined && !host.proxy) || req.url.host !== host.host) return req;
  const out = { ...req };
  if (host.proxy) out.proxy = host.proxy;
  if (host.dialTimeoutMs !== undefined)
    out.timeouts = { ...(req.timeouts ?? DEFAULT_TIMEOUTS), connectMs: host.dialTimeoutMs };
  return out;
}
