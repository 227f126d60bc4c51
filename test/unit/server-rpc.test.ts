// The gRPC server in-process: containerd's codes and messages for bad requests (invalid digests, reads
// past the end, missing namespace, unknown services), content reads by offset, leases through the
// containerd-lease header, and events with bare type URLs.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as connectHttp2, constants as http2Constants } from 'node:http2';
import { connect as connectUnix } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Metadata, makeGenericClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import { ImageDeleteSchema } from '../../src/api/gen/containerd/events/image_pb.ts';
import {
  Content,
  ReadContentRequestSchema,
  WriteAction,
} from '../../src/api/gen/containerd/services/content/v1/content_pb.ts';
import { Events } from '../../src/api/gen/containerd/services/events/v1/events_pb.ts';
import { Images } from '../../src/api/gen/containerd/services/images/v1/images_pb.ts';
import { Leases } from '../../src/api/gen/containerd/services/leases/v1/leases_pb.ts';
import { createLogger } from '../../src/core/log.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import {
  EMPTY_DIGEST,
  md,
  rejectsWith,
  sha,
  TestClients,
  unary,
  writeStream,
} from '../helpers/grpc-client.ts';

let dir: string;
let server: RunningServer;
let clients: TestClients;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-server-rpc-'));
  server = await startServer({
    root: join(dir, 'root'),
    address: join(dir, 'hoist.sock'),
    log: createLogger('error', () => undefined),
    gcIntervalMs: 0,
    gcDelayMs: 3_600_000,
  });
  clients = new TestClients(server.path);
});

after(async () => {
  clients?.close();
  await server?.stop({ force: true });
  await rm(dir, { recursive: true, force: true });
});

test('bad requests get containerd codes: invalid digests, reads past the end, unknown services', async () => {
  const c = clients.client(Content);
  await rejectsWith(
    unary(c, 'info', { digest: 'sha256:abc' }, md('default')),
    status.INVALID_ARGUMENT,
    /^"sha256:abc" failed validation/,
  );
  await rejectsWith(
    unary(c, 'info', { digest: EMPTY_DIGEST }, md('default')),
    status.NOT_FOUND,
    /^content digest sha256:e3b0.*: not found$/,
  );
  await rejectsWith(unary(c, 'info', { digest: EMPTY_DIGEST }, md(undefined)), status.FAILED_PRECONDITION);
  await rejectsWith(unary(c, 'info', { digest: EMPTY_DIGEST }, md('bad/ns')), status.INVALID_ARGUMENT);

  // A committed blob to read slices of.
  const meta = md('reads');
  const data = Buffer.from('0123456789abcdefghij');
  const w = writeStream(clients, meta);
  await w.send({ action: WriteAction.STAT, ref: 'r', total: BigInt(data.length), expected: sha(data) });
  await w.send({
    action: WriteAction.COMMIT,
    offset: 0n,
    data,
    total: BigInt(data.length),
    expected: sha(data),
  });
  const read = (offset: bigint, size: bigint) =>
    new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      const call = c.read!({ digest: sha(data), offset, size }, meta) as NodeJS.EventEmitter;
      call.on('data', (r: { data: Uint8Array }) => parts.push(Buffer.from(r.data)));
      call.on('error', reject);
      call.on('end', () => resolve(Buffer.concat(parts)));
    });
  assert.equal((await read(5n, 4n)).toString(), '5678');
  assert.equal((await read(15n, 100n)).toString(), 'fghij');
  assert.equal((await read(0n, 0n)).toString(), data.toString());
  await rejectsWith(read(21n, 0n), status.OUT_OF_RANGE, /^read past object length 20 bytes/);

  const images = clients.client(Images);
  await rejectsWith(
    unary(images, 'get', { name: 'nope' }, meta),
    status.NOT_FOUND,
    /^image "nope": not found$/,
  );
  await rejectsWith(unary(images, 'create', { image: { name: '' } }, meta), status.INVALID_ARGUMENT);

  // A service hoist does not serve (yet): Unimplemented, as ctr expects.
  const containers = makeGenericClientConstructor(
    {
      list: {
        path: '/containerd.services.containers.v1.Containers/ListStream',
        requestStream: false,
        responseStream: true,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'Containers',
  );
  const snap = clients.raw(containers);
  await new Promise<void>((resolve) => {
    const call = snap.list!({}, meta) as NodeJS.EventEmitter;
    call.on('data', () => undefined);
    call.on('error', (err: ServiceError) => {
      assert.equal(err.code, status.UNIMPLEMENTED);
      resolve();
    });
  });
});

test('a call with the namespace header twice is in the first one, as containerd reads it', async () => {
  // containerd's Go clients prepend a header each time a context gets a namespace again.
  const meta = new Metadata();
  meta.add('containerd-namespace', 'latest');
  meta.add('containerd-namespace', 'earlier');
  const data = Buffer.from('twice-namespaced');
  const w = writeStream(clients, meta);
  await w.send({ action: WriteAction.STAT, ref: 'twice', expected: sha(data), total: BigInt(data.length) });
  await w.send({
    action: WriteAction.COMMIT,
    offset: 0n,
    data,
    expected: sha(data),
    total: BigInt(data.length),
  });
  await unary(clients.client(Content), 'info', { digest: sha(data) }, md('latest'));
  await rejectsWith(
    unary(clients.client(Content), 'info', { digest: sha(data) }, md('earlier')),
    status.NOT_FOUND,
  );
});

test('content written under containerd-lease joins the lease; sync image delete publishes an event', async () => {
  const meta = md('leased');
  const leases = clients.client(Leases);
  const created = await unary<{ lease: { id: string } }>(
    leases,
    'create',
    { id: 'my-lease', labels: {} },
    meta,
  );
  assert.equal(created.lease.id, 'my-lease');
  const data = Buffer.from('leased bytes');
  const w = writeStream(clients, md('leased', 'my-lease'));
  await w.send({ action: WriteAction.STAT, ref: 'l', expected: sha(data), total: BigInt(data.length) });
  await w.send({
    action: WriteAction.COMMIT,
    offset: 0n,
    data,
    expected: sha(data),
    total: BigInt(data.length),
  });
  const res = await unary<{ resources: { id: string; type: string }[] }>(
    leases,
    'listResources',
    { id: 'my-lease' },
    meta,
  );
  assert.deepEqual(
    res.resources.map((r) => [r.type, r.id]),
    [['content', sha(data)]],
  );

  // Subscribe, then create and delete an image: the events arrive with bare type URLs.
  const events = clients.client(Events);
  const sub = events.subscribe!({ filters: ['topic~="/images/"'] }, md(undefined)) as NodeJS.EventEmitter & {
    cancel(): void;
  };
  const got: { topic: string; namespace: string; typeUrl: string; value: Uint8Array }[] = [];
  const twoEvents = new Promise<void>((resolve) =>
    sub.on(
      'data',
      (e: { topic: string; namespace: string; event: { typeUrl: string; value: Uint8Array } }) => {
        got.push({ topic: e.topic, namespace: e.namespace, typeUrl: e.event.typeUrl, value: e.event.value });
        if (got.length === 2) resolve();
      },
    ),
  );
  sub.on('error', () => undefined);
  // Publish only once the subscription is registered with the exchange.
  while (server.events.subscriberCount === 0) await new Promise((r) => setImmediate(r));
  const images = clients.client(Images);
  const target = { mediaType: 'application/octet-stream', digest: sha(data), size: BigInt(data.length) };
  await unary(images, 'create', { image: { name: 'example.com/x:1', target } }, meta);
  await unary(images, 'delete', { name: 'example.com/x:1', sync: true }, meta);
  await twoEvents;
  sub.cancel();
  assert.deepEqual(
    got.map((g) => [g.topic, g.namespace, g.typeUrl]),
    [
      ['/images/create', 'leased', 'containerd.services.images.v1.ImageCreate'],
      ['/images/delete', 'leased', 'containerd.services.images.v1.ImageDelete'],
    ],
  );
  assert.equal(fromBinary(ImageDeleteSchema, got[1]!.value).name, 'example.com/x:1');
  // The leased blob survived the synchronous collection.
  await unary(clients.client(Content), 'info', { digest: sha(data) }, meta);
});

test('a connection survives thousands of reset streams (ctr resets every 32 KiB Read it makes)', async () => {
  // Node's HTTP/2 server answers more than ~1000 RST_STREAMs in a burst with GOAWAY (rapid-reset
  // protection) unless told otherwise; raw HTTP/2 makes the resets deterministic.
  const session = connectHttp2('http://localhost', { createConnection: () => connectUnix(server.path) });
  let goaway = false;
  session.on('goaway', () => {
    goaway = true;
  });
  session.on('error', () => undefined);
  const headers = (path: string) => ({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'containerd-namespace': 'resets',
  });
  const body = toBinary(ReadContentRequestSchema, create(ReadContentRequestSchema, { digest: EMPTY_DIGEST }));
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
  for (let batch = 0; batch < 20; batch++)
    await Promise.all(
      Array.from({ length: 100 }, () => {
        const req = session.request(headers('/containerd.services.content.v1.Content/Read'));
        req.on('error', () => undefined);
        req.end(frame);
        req.close(http2Constants.NGHTTP2_CANCEL);
        return new Promise((resolve) => req.once('close', resolve));
      }),
    );
  // The same connection still answers.
  const last = session.request(headers('/containerd.services.version.v1.Version/Version'));
  last.end(Buffer.from([0, 0, 0, 0, 0]));
  const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    last.on('trailers', resolve);
    last.on('error', reject);
    last.resume();
  });
  session.close();
  assert.equal(goaway, false, 'the server sent GOAWAY');
  assert.equal(trailers['grpc-status'], '0');
});
