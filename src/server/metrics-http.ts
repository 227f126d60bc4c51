// The opt-in Prometheus endpoint (config serve.metrics_address, flag --metrics-address): GET /metrics on a
// TCP address, plain HTTP, nothing else. It listens apart from the unix socket because Prometheus scrapes
// over TCP; bind it to loopback (or a node-local address) as it has no authentication, as containerd's
// own metrics address has none.
import type { TcpAddress } from '../config/config.ts';
import type { Logger } from '../core/log.ts';
import { type HttpEndpoint, listenHttp } from './http-endpoint.ts';
import { CONTENT_TYPE } from './metrics.ts';

export type MetricsEndpoint = HttpEndpoint;

export async function serveMetrics(
  at: TcpAddress,
  scrape: () => Promise<string>,
  log: Logger,
): Promise<MetricsEndpoint> {
  return listenHttp(at, log, 'metrics endpoint', (req, res) => {
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
}
