// The maintenance port's contract (hoist's own: disk usage, lease pruning, consistency check, collection),
// run on the embedded store and through hoist serve (test/integration/contracts.test.ts); a containerd has
// no such service.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import type { Digest } from '../../src/core/digest.ts';
import type { ContractBackend, OpenBackend } from './backend.ts';

export function maintenanceContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  test(`${label}: open`, async () => {
    b = await open();
  });

  test(`${label}: usage counts a blob no image holds as reclaimable; collection takes it; check is clean`, async () => {
    const ctx: Context = { namespace: 'contract-maintenance' };
    const data = randomBytes(50_000);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
    const w = await b.backend.content.writer(ctx, { ref: 'loose', expected: { digest, size: data.length } });
    await w.write(data);
    await w.commit(data.length, digest);
    const before = await b.backend.maintenance.usage();
    assert.ok(before.blobs.files >= 1);
    assert.ok(before.reclaimableBytes >= data.length, JSON.stringify(before));
    assert.deepEqual(await b.backend.maintenance.pruneLeases(), [], 'no lease to prune');
    const stats = await b.backend.collectGarbage();
    assert.ok((stats?.removedContent ?? 0) >= 1, JSON.stringify(stats));
    const after = await b.backend.maintenance.usage();
    assert.equal(after.reclaimableBytes, 0);
    const report = await b.backend.maintenance.check({ verify: true });
    assert.equal(report.ok, true, JSON.stringify(report));
  });

  test(`${label}: close`, async () => {
    await b.close();
  });
}
