// grpc.health.v1.Health on `hoist serve` (the real CLI process): SERVING for the server and each service
// it registers, NOT_FOUND for a name it does not serve, and NOT_SERVING from the moment SIGTERM begins a
// graceful stop, observed on a Watch stream while a Content.Write stream stays in flight (and still works);
// once that call ends, the daemon exits 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ClientReadableStream, Metadata, status } from '@grpc/grpc-js';
import { WriteAction } from '../../src/api/gen/containerd/services/content/v1/content_pb.ts';
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Serving,
} from '../../src/api/gen/grpc/health/v1/health_pb.ts';
import { md, rejectsWith, sha, TestClients, unary, writeStream } from '../helpers/grpc-client.ts';
import { startServe } from '../helpers/serve.ts';

/** The statuses a Watch stream delivers, and a promise for its end. */
function watch(clients: TestClients, service: string) {
  const call = clients.client(Health).watch!(
    { service },
    new Metadata(),
  ) as ClientReadableStream<HealthCheckResponse>;
  const seen: number[] = [];
  const waiters: (() => void)[] = [];
  call.on('data', (r: HealthCheckResponse) => {
    seen.push(r.status);
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<{ code: number }>((resolve) => {
    call.on('status', (s: { code: number }) => resolve(s));
    call.on('error', () => undefined);
  });
  const next = async (n: number) => {
    while (seen.length < n) await new Promise<void>((r) => waiters.push(r));
    return seen[n - 1];
  };
  return { seen, next, ended };
}

test('Health answers SERVING while up, and NOT_SERVING while a graceful stop waits for a call in flight', {
  timeout: 60_000,
}, async () => {
  const srv = await startServe({ args: ['--shutdown-timeout', '30s'] });
  const clients = new TestClients(srv.socket);
  try {
    const health = clients.client(Health);
    const check = (service: string) =>
      unary<HealthCheckResponse>(health, 'check', { service }, new Metadata());
    assert.equal((await check('')).status, Serving.SERVING);
    assert.equal((await check('grpc.health.v1.Health')).status, Serving.SERVING);
    assert.equal((await check('containerd.services.content.v1.Content')).status, Serving.SERVING);
    assert.equal((await check('runtime.v1.ImageService')).status, Serving.SERVING);
    await rejectsWith(check('no.such.Service'), status.NOT_FOUND, /unknown service no\.such\.Service/);

    const unknown = watch(clients, 'no.such.Service');
    assert.equal(await unknown.next(1), Serving.SERVICE_UNKNOWN);
    const whole = watch(clients, '');
    assert.equal(await whole.next(1), Serving.SERVING);

    // A call in flight: a content write that has begun and not committed.
    const data = Buffer.alloc(64 << 10, 3);
    const w = writeStream(clients, md('health'));
    await w.send({ action: WriteAction.STAT, ref: 'held', total: BigInt(data.length), expected: sha(data) });

    srv.child.kill('SIGTERM');
    assert.equal(await whole.next(2), Serving.NOT_SERVING, 'the watcher learns of the stop');
    assert.equal(
      (await whole.ended).code,
      status.OK,
      'and its stream ends, so the stop need not wait for it',
    );
    assert.equal(srv.child.exitCode, null, 'the daemon still waits for the call in flight');

    // The held call still works during the window, then ends; only then does the daemon exit.
    const r = await w.send({ action: WriteAction.WRITE, offset: 0n, data });
    assert.equal(r.offset, BigInt(data.length));
    w.close();
    assert.equal(await w.recv(), undefined);
    assert.equal(await srv.stop(), 0);
    assert.match(srv.log(), /"msg":"stopped"/);
  } finally {
    clients.close();
    await srv.cleanup();
  }
});
