// A client whose HTTP/2 `:authority` is the socket path (what a Go client that dials the path itself
// sends) is answered by hoist serve: Node's HTTP/2 server would reset every such stream with
// PROTOCOL_ERROR, so hoist rewrites the value on the way in (src/server/h2-authority-filter.ts). Raw
// node:http2 clients on the real socket, calling the Version service; the daemon is `hoist serve`.
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { VersionResponseSchema } from '../../src/api/gen/containerd/services/version/v1/version_pb.ts';
import { type ServedStore, startServe } from '../helpers/serve.ts';

interface Answer {
  status: number | undefined;
  grpcStatus: string | undefined;
  body: Buffer;
  error?: Error;
  rstCode?: number;
}

function session(socket: string): ClientHttp2Session {
  return h2connect('http://localhost', { createConnection: () => connect(socket) });
}

/** One unary Version call with the given `:authority` (Node sends it as a literal the first time). */
function version(s: ClientHttp2Session, authority: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = s.request({
      ':method': 'POST',
      ':path': '/containerd.services.version.v1.Version/Version',
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const answer: Answer = { status: undefined, grpcStatus: undefined, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      answer.status = h[':status'];
      if (h['grpc-status'] !== undefined) answer.grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      answer.grpcStatus = String(t['grpc-status']);
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (err) => {
      answer.error = err;
    });
    req.on('close', () => {
      answer.body = Buffer.concat(chunks);
      answer.rstCode = req.rstCode;
      resolve(answer);
    });
    req.end(Buffer.alloc(5)); // an empty message: not compressed, length 0
  });
}

function assertVersion(a: Answer): void {
  assert.equal(a.error, undefined, `call failed: ${a.error?.message} (RST ${a.rstCode})`);
  assert.equal(a.status, 200);
  assert.equal(a.grpcStatus, '0');
  const message = fromBinary(VersionResponseSchema, a.body.subarray(5));
  assert.match(message.version, /\S/);
}

describe('hoist serve: a :authority Node would refuse', { timeout: 60_000 }, () => {
  let served: ServedStore;
  before(async () => {
    served = await startServe();
  });
  after(async () => {
    await served?.stop();
    await served?.cleanup();
  });

  test('the socket path as :authority is answered, on the first call and the ones after', async () => {
    const s = session(served.socket);
    try {
      // The first call sends the path as a literal (Huffman-coded), later ones index the table entry.
      for (let i = 0; i < 3; i++) assertVersion(await version(s, served.socket));
      // Other refused characters, raw and Huffman-coded alike, and a valid authority on the same connection.
      assertVersion(await version(s, '/a b"c#d<e>f?g\\h^i`j{k|l}m'));
      assertVersion(await version(s, 'localhost'));
    } finally {
      s.close();
    }
  });

  test('a path longer than the dynamic table holds is sent as a literal every time, and answered', async () => {
    const s = session(served.socket);
    try {
      const long = `/${'x/'.repeat(2100)}hoist.sock`; // > 4096 bytes: never enters the table
      for (let i = 0; i < 2; i++) assertVersion(await version(s, long));
    } finally {
      s.close();
    }
  });

  test('a valid :authority still works, on a connection of its own', async () => {
    const s = session(served.socket);
    try {
      assertVersion(await version(s, 'localhost'));
      assertVersion(await version(s, 'localhost'));
    } finally {
      s.close();
    }
  });
});
