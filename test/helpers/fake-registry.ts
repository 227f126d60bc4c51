// A registry made of documents a test hands it, for content the Distribution registry would refuse to
// store (malformed manifests, descriptors declaring huge sizes, unknown media types). It answers the
// distribution API's manifest and blob GET/HEAD by tag or digest, can be told to lie about lengths or to
// refuse HEAD, and counts the body bytes each path was sent.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { type FakeServer, startFakeServer } from './fake-server.ts';

export interface FakeDocument {
  body: Buffer;
  mediaType: string;
}

/** A body produced on demand (too large to hold): `size` bytes of `fill`, sent with backpressure. */
export interface Generated {
  size: number;
  fill: number;
  mediaType?: string;
  /** Send no Content-Length (chunked): only the body's end says how long it is. */
  undeclared?: boolean;
  /** A Docker-Content-Digest to claim (so a HEAD resolves without a GET). */
  digest?: string;
}

export interface FakeRegistry {
  host: string;
  /** Serve a manifest under `repo` by its digest and, if given, a tag. Returns its digest. */
  manifest(repo: string, doc: FakeDocument, tag?: string): string;
  /** Serve a blob under `repo` by its digest. Returns its digest. */
  blob(repo: string, body: Buffer): string;
  /** Serve a generated body for this path (a manifest or blob URL path, e.g. `/v2/a/manifests/t`). */
  generate(path: string, g: Generated): void;
  /** HEAD on manifests answers 405 (so clients GET, as for registries without HEAD). */
  noHead: boolean;
  /** Body bytes written per URL path (as far as the socket accepted them). */
  sent: Map<string, number>;
  requests: FakeServer['requests'];
  reset(): void;
  close(): Promise<void>;
}

export function digestOf(body: Buffer | string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

async function sendGenerated(res: ServerResponse, g: Generated, count: (n: number) => void): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, g.fill);
  let left = g.size;
  while (left > 0 && !res.destroyed) {
    const part = left >= chunk.byteLength ? chunk : chunk.subarray(0, left);
    left -= part.byteLength;
    count(part.byteLength);
    if (!res.write(part))
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
  }
  res.end();
}

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const docs = new Map<string, FakeDocument>();
  const generated = new Map<string, Generated>();
  const sent = new Map<string, number>();
  const count = (path: string) => (n: number) => sent.set(path, (sent.get(path) ?? 0) + n);
  const reg: Partial<FakeRegistry> = { noHead: false, sent };
  const server = await startFakeServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const head = req.method === 'HEAD';
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200).end();
      return;
    }
    if (head && reg.noHead && path.includes('/manifests/')) {
      res.writeHead(405).end();
      return;
    }
    const g = generated.get(path);
    if (g) {
      const headers: Record<string, string> = { 'content-type': g.mediaType ?? 'application/octet-stream' };
      if (!g.undeclared) headers['content-length'] = String(g.size);
      if (g.digest) headers['docker-content-digest'] = g.digest;
      res.writeHead(200, headers);
      if (head) res.end();
      else await sendGenerated(res, g, count(path));
      return;
    }
    const doc = docs.get(path);
    if (!doc) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      return;
    }
    res.writeHead(200, {
      'content-type': doc.mediaType,
      'content-length': String(doc.body.byteLength),
      'docker-content-digest': digestOf(doc.body),
    });
    if (head) res.end();
    else {
      count(path)(doc.body.byteLength);
      res.end(doc.body);
    }
  });
  return Object.assign(reg, {
    host: server.host,
    requests: server.requests,
    manifest(repo: string, doc: FakeDocument, tag?: string) {
      const digest = digestOf(doc.body);
      docs.set(`/v2/${repo}/manifests/${digest}`, doc);
      if (tag) docs.set(`/v2/${repo}/manifests/${tag}`, doc);
      return digest;
    },
    blob(repo: string, body: Buffer) {
      const digest = digestOf(body);
      docs.set(`/v2/${repo}/blobs/${digest}`, { body, mediaType: 'application/octet-stream' });
      return digest;
    },
    generate(path: string, g: Generated) {
      generated.set(path, g);
    },
    reset() {
      docs.clear();
      generated.clear();
      sent.clear();
      server.requests.length = 0;
      reg.noHead = false;
    },
    close: () => server.close(),
  }) as FakeRegistry;
}
