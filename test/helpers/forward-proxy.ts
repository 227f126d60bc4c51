// A forward HTTP proxy for tests, as HTTPS_PROXY/HTTP_PROXY point at: CONNECT tunnels and absolute-URI
// requests, each recorded (method, target, Proxy-Authorization). Host names are looked up in `routes`
// first (`registry.test:5000` → `127.0.0.1:41234`), so a test can name a registry that only the proxy
// can reach: a request that arrives proves it went through the proxy.
import { createServer, type IncomingMessage, request } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  target: string;
  proxyAuthorization: string | undefined;
}

export interface ForwardProxy {
  url: string;
  seen: ProxiedRequest[];
  close(): Promise<void>;
}

export async function startForwardProxy(routes: Record<string, string> = {}): Promise<ForwardProxy> {
  const seen: ProxiedRequest[] = [];
  const route = (hostPort: string): { host: string; port: number } => {
    const to = routes[hostPort] ?? hostPort;
    const i = to.lastIndexOf(':');
    return { host: to.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(to.slice(i + 1)) };
  };
  const record = (req: IncomingMessage) =>
    seen.push({
      method: req.method ?? '',
      target: req.url ?? '',
      proxyAuthorization: req.headers['proxy-authorization'],
    });
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    record(req);
    const url = new URL(req.url ?? '');
    const to = route(`${url.hostname}:${url.port || 80}`);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = request(
      { host: to.host, port: to.port, method: req.method, path: url.pathname + url.search, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    record(req);
    const to = route(req.url ?? '');
    const upstream = connect(to.port, to.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.byteLength > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
