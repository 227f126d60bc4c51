// Malformed gRPC sent to `hoist serve` with node:http2 on its unix socket: unknown methods, bytes that are
// not protobuf, the wrong message type, a length prefix declaring 1 GiB, broken framing, random frames.
// Every call is answered with a gRPC status (UNIMPLEMENTED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED), never
// INTERNAL, and the server goes on serving other clients in bounded memory.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { type ClientHttp2Session, connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { type ServedStore, startServe } from '../helpers/serve.ts';

let srv: ServedStore;
before(async () => {
  srv = await startServe();
});
after(async () => {
  await srv?.cleanup();
});

const INFO = '/containerd.services.content.v1.Content/Info';
const LIST = '/containerd.services.namespaces.v1.Namespaces/List';

function session(): ClientHttp2Session {
  const s = http2Connect('http://localhost', { createConnection: () => netConnect(srv.socket) });
  s.on('error', () => undefined);
  return s;
}

/** A gRPC message frame: compressed flag, big-endian length (as declared), the bytes. */
function frame(body: Buffer, declared = body.byteLength): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declared >>> 0, 1);
  return Buffer.concat([head, body]);
}

interface Answer {
  status: number | undefined;
  message: string;
  data: Buffer;
}

/** One call: send `payload` (raw bytes after the headers) and read the gRPC status. */
function call(s: ClientHttp2Session, path: string, payload: Buffer, end = true): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = s.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'containerd-namespace': 'default',
    });
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let message = '';
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
    };
    const done = () => resolve({ status, message, data: Buffer.concat(chunks) });
    req.on('response', take);
    // The status ends the call even while our side is still open (an answer from the length prefix).
    req.on('trailers', (h) => {
      take(h);
      if (!end) req.close();
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', done);
    req.setTimeout(20_000, () => {
      req.close();
      reject(new Error(`no answer to ${path}`));
    });
    // A server that answered early may reset the stream while we write: that is an answer, not a failure.
    req.write(payload, () => undefined);
    if (end) req.end();
  });
}

/** The server still answers a real request from a new client. */
async function stillServing(): Promise<void> {
  const s = session();
  try {
    const a = await call(s, LIST, frame(Buffer.alloc(0)));
    assert.equal(a.status, 0, `Namespaces.List after the hostile calls: ${a.message}`);
  } finally {
    s.close();
  }
}

async function serverRssKb(): Promise<number> {
  const status = await readFile(`/proc/${srv.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

test('an unknown method is UNIMPLEMENTED', async () => {
  const s = session();
  try {
    for (const path of ['/containerd.services.content.v1.Content/Nope', '/no.Such/Service', '/', '/x']) {
      const a = await call(s, path, frame(Buffer.alloc(0)));
      assert.equal(a.status, 12, `${path}: ${a.status} ${a.message}`);
    }
  } finally {
    s.close();
  }
  await stillServing();
});

test('bytes that are not the request message are INVALID_ARGUMENT naming the type (was INTERNAL)', async () => {
  const s = session();
  try {
    // Field 1 (digest, a string) sent as a varint: the wrong wire type. Then a truncated length-delimited
    // field, and a field number 0.
    for (const body of [
      Buffer.from([0x08, 0x01]),
      Buffer.from([0x0a, 0x40, 0x41]),
      Buffer.from([0x00, 0x01]),
    ]) {
      const a = await call(s, INFO, frame(body));
      assert.equal(a.status, 3, `${body.toString('hex')}: ${a.status} ${a.message}`);
      assert.match(a.message, /not a valid containerd\.services\.content\.v1\.InfoRequest/);
    }
  } finally {
    s.close();
  }
  await stillServing();
});

test('a well-formed message of the wrong type is INVALID_ARGUMENT from validation', async () => {
  const s = session();
  try {
    // A ListNamespacesRequest-shaped body (field 1: filter string) where InfoRequest's digest belongs.
    const body = Buffer.concat([Buffer.from([0x0a, 5]), Buffer.from('hello')]);
    const a = await call(s, INFO, frame(body));
    assert.equal(a.status, 3, a.message);
  } finally {
    s.close();
  }
});

test('a length prefix declaring 1 GiB is RESOURCE_EXHAUSTED at once, not buffered', async () => {
  const before = await serverRssKb();
  const s = session();
  try {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(1 << 30, 1);
    // Only the prefix and a little: the server must answer from the prefix, without waiting for 1 GiB.
    const a = await call(s, INFO, Buffer.concat([head, Buffer.alloc(1024)]));
    assert.equal(a.status, 8, a.message);
  } finally {
    s.close();
  }
  await stillServing();
  assert.ok((await serverRssKb()) - before < 64 * 1024, 'the server did not grow by the declared size');
});

test('random frames, broken prefixes and early ends: a status every time, and the server serves on', async () => {
  const s = session();
  const statuses = new Map<number | undefined, number>();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          INFO,
          LIST,
          '/containerd.services.images.v1.Images/Get',
          '/containerd.services.leases.v1.Leases/Create',
        ),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
          fc.uint8Array({ maxLength: 64 }).map((b) => frame(Buffer.from(b))),
          fc
            .tuple(fc.uint8Array({ maxLength: 32 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }))
            .map(([b, n]) => frame(Buffer.from(b), n)),
          fc.constant(Buffer.from([1, 0, 0, 0, 3, 1, 2, 3])), // "compressed" without an encoding
        ),
        async (path, payload) => {
          const a = await call(s, path, payload);
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          assert.notEqual(a.status, undefined, `${path} ${payload.toString('hex')}: no status`);
          assert.notEqual(a.status, 13, `${path} ${payload.toString('hex')}: INTERNAL ${a.message}`);
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    s.close();
  }
  await stillServing();
  assert.doesNotMatch(srv.log(), /"level":"error".*rpc failed/, 'no call was a server fault');
});
