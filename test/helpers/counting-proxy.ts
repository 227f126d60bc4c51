// The counting HTTP proxy in front of the test registry (started by test/helpers/registry.ts): records every
// request (method, path, status, Range, bytes sent), can hold a blob's download part-way until the test
// releases it (an interrupted or concurrent pull driven by events, not sleeps), and can answer a path with a
// canned document the registry itself would refuse to store (malformed or schema 1 manifests).
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RequestRecord {
  method: string;
  /** Path and query as the client sent it. */
  path: string;
  status: number;
  range: string | undefined;
  /** Did the request carry an Authorization header? */
  authorized: boolean;
  /** Response body bytes sent to the client. */
  bytes: number;
}

/** A blob's responses held part-way (TestRegistry.holdBlob): a pull that stays "in flight" until told. */
export interface BlobHold {
  /** Resolves once a response has forwarded `afterBytes` body bytes and is holding the rest. */
  readonly reached: Promise<void>;
  /** Forward the rest of held responses; responses started later are not held. Idempotent. */
  release(): void;
}

/** A response the proxy serves itself instead of asking the registry (documents it would refuse). */
export interface CannedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface CountingProxy {
  server: Server;
  port: number;
  /** Hold GET responses of blob `digest` after `afterBytes` body bytes until released. */
  holdBlob(digest: string, afterBytes: number): BlobHold;
  /** Answer requests whose path matches (and method, if given) with `response`; returns an undo. */
  serve(path: RegExp, response: CannedResponse, method?: string): () => void;
}

interface Hold {
  digest: string;
  afterBytes: number;
  released: boolean;
  reach: () => void;
  waiters: (() => void)[];
}

interface ProxyControls {
  holds: Hold[];
  canned: { method: string | undefined; path: RegExp; response: CannedResponse }[];
}

/** Copy `up` to `res` counting bytes; with a hold, stop after `afterBytes` until it is released. */
function forward(
  up: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
  hold: Hold | undefined,
): void {
  let held: Buffer | undefined;
  const send = (chunk: Buffer) => {
    record.bytes += chunk.byteLength;
    if (!res.write(chunk)) {
      up.pause();
      res.once('drain', () => {
        if (held === undefined) up.resume();
      });
    }
  };
  up.on('data', (chunk: Buffer) => {
    const room = hold && !hold.released ? hold.afterBytes - record.bytes : Number.POSITIVE_INFINITY;
    if (chunk.byteLength < room) return send(chunk);
    if (room > 0) send(chunk.subarray(0, room));
    held = chunk.subarray(Math.max(0, room));
    up.pause();
    hold!.waiters.push(() => {
      const rest = held!;
      held = undefined;
      if (rest.byteLength > 0) send(rest);
      if (!res.writableNeedDrain) up.resume();
    });
    hold!.reach();
  });
  up.on('end', () => res.end());
  up.on('error', () => res.destroy());
}

/** A proxy that records each request and counts response bytes; it can hold blobs and serve canned documents. */
export async function startCountingProxy(
  targetPort: number,
  onRequest: (r: RequestRecord) => void,
): Promise<CountingProxy> {
  const controls: ProxyControls = { holds: [], canned: [] };
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req, res) => {
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      status: 0,
      range: req.headers.range,
      authorized: req.headers.authorization !== undefined,
      bytes: 0,
    };
    onRequest(record);
    const canned = controls.canned.find(
      (c) => (c.method === undefined || c.method === record.method) && c.path.test(record.path),
    );
    if (canned) {
      const body = Buffer.from(canned.response.body ?? '');
      record.status = canned.response.status;
      record.bytes = record.method === 'HEAD' ? 0 : body.byteLength;
      req.resume();
      res.writeHead(record.status, { 'content-length': String(body.byteLength), ...canned.response.headers });
      res.end(record.method === 'HEAD' ? undefined : body);
      return;
    }
    const hold =
      record.method === 'GET'
        ? controls.holds.find((h) => !h.released && record.path.includes(`/blobs/${h.digest}`))
        : undefined;
    const upstream = httpRequest(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        record.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        forward(up, res, record, record.status < 300 ? hold : undefined);
      },
    );
    upstream.on('error', (err) => {
      record.status = 502;
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.on('close', () => agent.destroy());
  return {
    server,
    port: (server.address() as AddressInfo).port,
    holdBlob(digest, afterBytes) {
      let reach = () => {};
      const reached = new Promise<void>((resolve) => {
        reach = resolve;
      });
      const hold: Hold = { digest, afterBytes, released: false, reach, waiters: [] };
      controls.holds.push(hold);
      return {
        reached,
        release() {
          hold.released = true;
          controls.holds = controls.holds.filter((h) => h !== hold);
          for (const wake of hold.waiters.splice(0)) wake();
        },
      };
    },
    serve(path, response, method) {
      const entry = { method, path, response };
      controls.canned.push(entry);
      return () => {
        controls.canned = controls.canned.filter((c) => c !== entry);
      };
    },
  };
}
