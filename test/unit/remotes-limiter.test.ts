import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { Limiter } from '../../src/core/limiter.ts';

test('at most N holders; slots pass to waiters in order; release is idempotent', async () => {
  const limiter = new Limiter(2);
  const a = await limiter.acquire();
  const b = await limiter.acquire();
  const order: string[] = [];
  const c = limiter.acquire().then((r) => {
    order.push('c');
    return r;
  });
  const d = limiter.acquire().then((r) => {
    order.push('d');
    return r;
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  assert.equal(limiter.active, 2);
  a();
  a();
  const releaseC = await c;
  assert.deepEqual(order, ['c']);
  b();
  const releaseD = await d;
  assert.deepEqual(order, ['c', 'd']);
  releaseC();
  releaseD();
  assert.equal(limiter.active, 0);
});

test('a waiter can be cancelled', async () => {
  const limiter = new Limiter(1);
  const held = await limiter.acquire();
  const ac = new AbortController();
  const waiting = limiter.acquire(ac.signal);
  ac.abort();
  await assert.rejects(
    waiting,
    (err: unknown) => err instanceof HoistError && err.code === 'HOIST_CANCELLED',
  );
  held();
  assert.equal(limiter.active, 0);
});
