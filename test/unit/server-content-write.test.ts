// The Content.Write protocol in-process, driven by grpc-js clients built from the generated descriptors:
// resume at the server's offset, wrong offsets, restarts, already-exists, locked refs, bad commits,
// cancellation, and what a graceful or forced stop does to a write in flight.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ServiceError, status } from '@grpc/grpc-js';
import { Content, WriteAction } from '../../src/api/gen/containerd/services/content/v1/content_pb.ts';
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
  dir = await mkdtemp(join(tmpdir(), 'hoist-server-write-'));
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

test('a write resumes at the offset the last stream reached, and commits with the expected digest', async () => {
  const data = Buffer.alloc(300_000, 7);
  data.write('resume me');
  const expected = sha(data);
  const meta = md('w1');

  const a = writeStream(clients, meta);
  const st = await a.send({
    action: WriteAction.STAT,
    ref: 'resume-ref',
    total: BigInt(data.length),
    expected,
  });
  assert.equal(st.offset, 0n);
  assert.equal(st.digest, EMPTY_DIGEST);
  assert.equal(st.total, BigInt(data.length));
  assert.ok(st.startedAt && st.startedAt.seconds > 0n, 'started_at is always set');
  const w = await a.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 100_000) });
  assert.equal(w.offset, 100_000n);
  assert.equal(w.digest, sha(data.subarray(0, 100_000)));
  a.close();
  assert.equal(await a.recv(), undefined, 'closing before COMMIT ends the stream cleanly');

  // The ingest is listed and resumable.
  const statuses = await unary<{ statuses: { ref: string; offset: bigint }[] }>(
    clients.client(Content),
    'listStatuses',
    { filters: [''] },
    meta,
  );
  assert.deepEqual(
    statuses.statuses.map((s) => [s.ref, s.offset]),
    [['resume-ref', 100_000n]],
  );

  const b = writeStream(clients, meta);
  const st2 = await b.send({
    action: WriteAction.STAT,
    ref: 'resume-ref',
    total: BigInt(data.length),
    expected,
  });
  assert.equal(st2.offset, 100_000n, 'a new stream resumes where the last one stopped');
  await rejectsWith(
    b.send({ action: WriteAction.WRITE, offset: 50_000n, data: data.subarray(50_000, 60_000) }),
    status.OUT_OF_RANGE,
    /^write @50000 must occur at current offset 100000/,
  );

  const c = writeStream(clients, meta);
  await c.send({ action: WriteAction.STAT, ref: 'resume-ref', total: BigInt(data.length), expected });
  await c.send({ action: WriteAction.WRITE, offset: 100_000n, data: data.subarray(100_000, 250_000) });
  const done = await c.send({
    action: WriteAction.COMMIT,
    offset: 250_000n,
    data: data.subarray(250_000),
    total: BigInt(data.length),
    expected,
    labels: { 'example.com/k': 'v' },
  });
  assert.equal(done.action, WriteAction.COMMIT);
  assert.equal(done.offset, BigInt(data.length));
  assert.equal(done.digest, expected);
  assert.equal(await c.recv(), undefined, 'the stream ends after the COMMIT reply');

  const info = await unary<{ info: { size: bigint; labels: Record<string, string> } }>(
    clients.client(Content),
    'info',
    { digest: expected },
    meta,
  );
  assert.equal(info.info.size, BigInt(data.length));
  assert.deepEqual(info.info.labels, { 'example.com/k': 'v' });

  // Writing it again: AlreadyExists on the first message, as ctr expects on a re-pull.
  const again = writeStream(clients, meta);
  await rejectsWith(
    again.send({ action: WriteAction.STAT, ref: 'another-ref', expected }),
    status.ALREADY_EXISTS,
    /already exists/,
  );
});

test('offset 0 on a non-empty ingest restarts it; a wrong digest or size fails the commit', async () => {
  const meta = md('w2');
  const good = Buffer.from('the right bytes');
  const s = writeStream(clients, meta);
  await s.send({ action: WriteAction.STAT, ref: 'restart' });
  await s.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.from('garbage that will go') });
  const restarted = await s.send({ action: WriteAction.WRITE, offset: 0n, data: good });
  assert.equal(restarted.offset, BigInt(good.length));
  assert.equal(restarted.digest, sha(good));
  await rejectsWith(
    s.send({
      action: WriteAction.COMMIT,
      offset: BigInt(good.length),
      total: BigInt(good.length),
      expected: sha(Buffer.from('other')),
    }),
    status.FAILED_PRECONDITION,
  );

  const t = writeStream(clients, meta);
  await t.send({ action: WriteAction.STAT, ref: 'short' });
  await t.send({ action: WriteAction.WRITE, offset: 0n, data: good });
  await rejectsWith(
    t.send({ action: WriteAction.COMMIT, offset: BigInt(good.length), total: 1000n }),
    status.FAILED_PRECONDITION,
  );
});

test('Write refuses a first message without a ref, a missing namespace, and a ref another stream holds', async () => {
  const noRef = writeStream(clients, md('w3'));
  await rejectsWith(
    noRef.send({ action: WriteAction.STAT, total: 10n }),
    status.INVALID_ARGUMENT,
    /^first message must have a reference/,
  );

  const noNs = writeStream(clients, md(undefined));
  await rejectsWith(
    noNs.send({ action: WriteAction.STAT, ref: 'x' }),
    status.FAILED_PRECONDITION,
    /^namespace is required: failed precondition$/,
  );

  const holder = writeStream(clients, md('w3'));
  await holder.send({ action: WriteAction.STAT, ref: 'busy' });
  const second = writeStream(clients, md('w3'));
  await rejectsWith(second.send({ action: WriteAction.STAT, ref: 'busy' }), status.UNAVAILABLE, /locked/);
  holder.close();
  assert.equal(await holder.recv(), undefined);
  // Released: the ref can be opened again, and aborted.
  const reopened = writeStream(clients, md('w3'));
  await reopened.send({ action: WriteAction.STAT, ref: 'busy' });
  reopened.close();
  await reopened.recv();
  await unary(clients.client(Content), 'abort', { ref: 'busy' }, md('w3'));
  await rejectsWith(
    unary(clients.client(Content), 'status', { ref: 'busy' }, md('w3')),
    status.NOT_FOUND,
    /^could not get status for ref "busy": /,
  );
});

test('a cancelled Write stream releases its ref and keeps what it wrote', async () => {
  const meta = md('w4');
  const s = writeStream(clients, meta);
  await s.send({ action: WriteAction.STAT, ref: 'cancelled' });
  await s.send({ action: WriteAction.WRITE, offset: 0n, data: Buffer.alloc(4096, 1) });
  s.call.cancel();
  await rejectsWith(
    s.recv().then(() => s.recv()),
    status.CANCELLED,
  );
  // The server notices the cancellation asynchronously: like ctr, retry while the ref is still locked.
  for (let attempt = 0; ; attempt++) {
    const again = writeStream(clients, meta);
    try {
      const st = await again.send({ action: WriteAction.STAT, ref: 'cancelled' });
      assert.equal(st.offset, 4096n);
      again.close();
      await again.recv();
      break;
    } catch (err) {
      assert.equal((err as ServiceError).code, status.UNAVAILABLE);
      assert.ok(attempt < 100, 'the ref stayed locked after its stream was cancelled');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
});

test('a graceful stop lets an in-flight write commit; a forced stop leaves it resumable', async () => {
  const root = join(dir, 'stop-root');
  const address = join(dir, 'stop.sock');
  const quiet = createLogger('error', () => undefined);
  const open = () => startServer({ root, address, log: quiet, gcIntervalMs: 0, shutdownTimeoutMs: 60_000 });
  const data = Buffer.alloc(10_000, 3);

  const first = await open();
  const firstClients = new TestClients(first.path);
  const inflight = writeStream(firstClients, md('stop'));
  await inflight.send({ action: WriteAction.STAT, ref: 'inflight' });
  await inflight.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 5000) });
  let stopped = false;
  const stopping = first.stop().then(() => {
    stopped = true;
  });
  // However long we wait, a call that has not finished keeps a graceful stop from completing.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stopped, false, 'the stop waits for the write in flight');
  const done = await inflight.send({
    action: WriteAction.COMMIT,
    offset: 5000n,
    data: data.subarray(5000),
    total: 10_000n,
    expected: sha(data),
  });
  assert.equal(done.digest, sha(data), 'the write in flight finished during the graceful stop');
  await stopping;

  firstClients.close();

  const second = await open();
  const secondClients = new TestClients(second.path);
  const cancelled = writeStream(secondClients, md('stop'));
  await cancelled.send({ action: WriteAction.STAT, ref: 'forced' });
  await cancelled.send({ action: WriteAction.WRITE, offset: 0n, data: data.subarray(0, 4000) });
  await second.stop({ force: true });
  secondClients.close();

  const third = await open();
  const thirdClients = new TestClients(third.path);
  try {
    await unary(thirdClients.client(Content), 'info', { digest: sha(data) }, md('stop'));
    const resumed = writeStream(thirdClients, md('stop'));
    const st = await resumed.send({ action: WriteAction.STAT, ref: 'forced' });
    assert.equal(st.offset, 4000n, 'the cancelled write resumes where it stopped');
  } finally {
    thirdClients.close();
    await third.stop({ force: true });
  }
});

test('a Write stream keeps no request after answering it: 200 MiB pass through in bounded memory', async () => {
  const s = writeStream(clients, md('w5'));
  await s.send({ action: WriteAction.STAT, ref: 'bounded' });
  const chunk = Buffer.alloc(1 << 20, 5);
  let peak = 0;
  // STAT messages carry the data through the transport and the handler without touching the disk.
  for (let i = 0; i < 200; i++) {
    await s.send({ action: WriteAction.STAT, data: chunk });
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
  s.close();
  await s.recv();
  assert.ok(peak < 150 << 20, `array buffers peaked at ${peak >> 20} MiB for 200 MiB sent`);
});
