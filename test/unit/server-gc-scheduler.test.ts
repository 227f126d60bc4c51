// The daemon's garbage collection: expired leases are deleted (and what only they held is collected)
// when their expiry passes, a lease whose owner process runs is kept, and sync runs do not overlap.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { sha256 } from '../../src/core/digest.ts';
import { isNotFound } from '../../src/core/errors.ts';
import { Labels } from '../../src/core/labels.ts';
import { createLogger } from '../../src/core/log.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { writeBlob } from '../../src/metadata/write-blob.ts';
import { GcScheduler } from '../../src/server/gc-scheduler.ts';

test('leases are deleted once their gc.expire passes, and the content only they held goes with them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-gc-sched-'));
  const backend = await openEmbedded(join(dir, 'root'));
  const lines: string[] = [];
  const gc = new GcScheduler({
    backend,
    log: createLogger('info', (l) => lines.push(l)),
    intervalMs: 0,
    isOwnerAlive: (owner) => owner === 'alive-owner',
  });
  try {
    const ctx = { namespace: 'default' };
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    await backend.leases.create(ctx, { id: 'expired', labels: { [Labels.gcExpire]: past } });
    await backend.leases.create(ctx, { id: 'current', labels: { [Labels.gcExpire]: future } });
    await backend.leases.create(ctx, {
      id: 'owned',
      labels: { [Labels.gcExpire]: past, [Labels.leaseOwner]: 'alive-owner' },
    });
    const held = Buffer.from('held only by the expired lease');
    const kept = Buffer.from('held by the current lease');
    await writeBlob(backend.content, { ...ctx, lease: 'expired' }, 'a', Readable.from([held]));
    await writeBlob(backend.content, { ...ctx, lease: 'current' }, 'b', Readable.from([kept]));

    // start() arms a timer for the earliest expiry (already past): the run comes by itself.
    gc.start();
    for (let i = 0; (await backend.leases.list(ctx)).some((l) => l.id === 'expired'); i++) {
      assert.ok(i < 500, 'the expired lease was never collected');
      await new Promise((r) => setTimeout(r, 10));
    }
    await gc.collectNow(); // the run that removed the lease may still be sweeping: wait for a full one
    assert.deepEqual((await backend.leases.list(ctx)).map((l) => l.id).sort(), ['current', 'owned']);
    await assert.rejects(backend.content.info(ctx, sha256(held)), isNotFound);
    assert.equal((await backend.content.info(ctx, sha256(kept))).size, kept.length);
    assert.ok(lines.some((l) => l.includes('"msg":"gc"')));

    // Concurrent sync requests share runs instead of stacking them.
    await Promise.all([gc.collectNow(), gc.collectNow(), gc.collectNow()]);
  } finally {
    await gc.stop();
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
