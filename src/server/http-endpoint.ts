// The HTTP endpoints hoist serve runs beside its gRPC socket (Prometheus metrics, the peer registry): a
// node:http server on a TCP address that reports where it listens and closes without waiting for idle
// keep-alive connections (scrapers and peers hold theirs open between requests).
import type { RequestListener, Server } from 'node:http';
import type { TcpAddress } from '../config/config.ts';
import type { Logger } from '../core/log.ts';

export interface HttpEndpoint {
  /** Where it listens (the port the kernel chose when asked for 0). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function listenHttp(
  at: TcpAddress,
  log: Logger,
  what: string,
  handler: RequestListener,
): Promise<HttpEndpoint> {
  // getBuiltinModule, not a static import: the bundle hoists imports, and the ESM facade of node:http
  // loads Node's bundled undici (~30 ms and 9 MiB for every command, `hoist images` included).
  const { createServer } = process.getBuiltinModule('node:http');
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error(`${what} failed`, { error: err }));
  const bound = server.address();
  return {
    address:
      bound && typeof bound === 'object'
        ? { host: bound.address, port: bound.port }
        : { host: at.host, port: at.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
