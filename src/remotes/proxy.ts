// The proxy environment every Go tool (docker, containerd, skopeo) honours: HTTPS_PROXY for https://
// registries (a CONNECT tunnel through the proxy, TLS end to end with the registry), HTTP_PROXY for
// http:// ones (absolute-URI requests to the proxy), NO_PROXY for the hosts that go direct: `*`, a host or
// IP, a domain (itself and every subdomain; a leading `.` or `*.` is the same), each optionally with
// `:port`. Lowercase names win over uppercase, as in Go. Loopback registries never use the proxy (Go's
// rule too: a proxy cannot reach this machine's registry).
import type { Agent, RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { HoistError } from '../core/errors.ts';
import { isLoopback } from './hosts.ts';

function envOf(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Does one NO_PROXY entry cover this host and port? */
function bypasses(entry: string, host: string, port: string): boolean {
  let e = entry.trim().toLowerCase();
  if (e === '') return false;
  if (e === '*') return true;
  let wantPort: string | undefined;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(e);
  if (m) {
    e = m[1]!;
    wantPort = m[2];
  }
  if (wantPort !== undefined && wantPort !== port) return false;
  e = e.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
  return host === e || host.endsWith(`.${e}`);
}

/** The proxy for a request URL under this environment, or undefined to connect directly. */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (isLoopback(host.includes(':') ? `[${host}]` : host)) return undefined;
  const raw = envOf(env, url.protocol === 'https:' ? 'https_proxy' : 'http_proxy');
  if (!raw) return undefined;
  const port = defaultPort(url);
  const noProxy = envOf(env, 'no_proxy') ?? '';
  if (noProxy.split(/[,\s]+/).some((entry) => bypasses(entry, host, port))) return undefined;
  try {
    const proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
    if (proxy.protocol !== 'http:') throw new Error('only http:// proxies are supported');
    return proxy;
  } catch (err) {
    throw new HoistError('HOIST_CONFIG', `invalid proxy ${JSON.stringify(raw)}: ${(err as Error).message}`, {
      hint: 'set HTTPS_PROXY / HTTP_PROXY to http://HOST:PORT (credentials as http://USER:PASS@HOST:PORT)',
    });
  }
}

/** `Proxy-Authorization` for credentials in the proxy URL. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

type ConnectCallback = (err: Error | null, stream: Duplex) => void;

/**
 * An https Agent whose connections are tunnels: CONNECT host:port to the proxy, then TLS with the
 * registry inside (the agent's TLS options: CA, skip-verify, client certificate, server name).
 */
export function tunnelAgent(proxy: URL, tlsOptions: Record<string, unknown>): Agent {
  const https = process.getBuiltinModule('node:https');
  const http = process.getBuiltinModule('node:http');
  const tls = process.getBuiltinModule('node:tls');
  class TunnelAgent extends https.Agent {
    override createConnection(options: RequestOptions, callback?: ConnectCallback): undefined {
      if (!callback)
        throw new Error('a tunnel is opened asynchronously: createConnection needs its callback');
      const target = `${String(options.host).includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
      const headers: Record<string, string> = { host: target };
      const auth = proxyAuthorization(proxy);
      if (auth) headers['proxy-authorization'] = auth;
      const req = http.request({
        host: proxy.hostname.replace(/^\[|\]$/g, ''),
        port: proxy.port || 80,
        method: 'CONNECT',
        path: target,
        headers,
        agent: false,
      });
      req.once('connect', (res, socket: Socket, head: Buffer) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          callback(new Error(`proxy ${proxy.host} answered ${res.statusCode} to CONNECT ${target}`), socket);
          return;
        }
        if (head.byteLength > 0) socket.unshift(head);
        // The agent's options carry the registry's server name (none for an IP address) and TLS settings.
        const secure: TLSSocket = tls.connect({ ...(options as ConnectionOptions), socket });
        callback(null, secure);
      });
      req.once('error', (err) => callback(err, req.socket as Socket));
      req.end();
      return undefined;
    }
  }
  return new TunnelAgent({ keepAlive: true, ...tlsOptions });
}
