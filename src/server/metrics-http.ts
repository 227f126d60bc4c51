// The opt-in Prometheus endpoint (config serve.metrics_address, flag --metrics-address): GET /metrics on a
// TCP address, plain HTTP, nothing else. It listens apart from the unix socket because Prometheus scrapes
// over TCP; bind it to loopback (or a node-local address) as it has no authentication, as containerd's
// own metrics address has none.
import type { Server } from 'node:http';
import type { TcpAddress } from '../config/config.ts';
import type { Logger } from './log.ts';
import { CONTENT_TYPE } from './metrics.ts';

export interface MetricsEndpoint {
  /** Where it listens (the port the kernel chose when asked for 0). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function serveMetrics(
  at: TcpAddress,
  scrape: () => Promise<string>,
  log: Logger,
): Promise<MetricsEndpoint> {
  // getBuiltinModule, not a static import: the bundle hoists imports, and the ESM facade of node:http
  // loads Node's bundled undici (~30 ms and 9 MiB for every command, `hoist images` included).
  const { createServer } = process.getBuiltinModule('node:http');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end();
      return;
    }
    scrape().then(
      (body) => {
        res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        log.error('metrics scrape failed', { error: err });
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('scrape failed\n');
      },
    );
  });
  // A scraper keeps its connection open between scrapes; a stop must not wait for it.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error('metrics endpoint failed', { error: err }));
  const bound = server.address();
  const address =
    bound && typeof bound === 'object'
      ? { host: bound.address, port: bound.port }
      : { host: at.host, port: at.port };
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
