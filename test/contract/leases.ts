// The lease manager's contract (containerd's leases.Manager), run on every backend
// (test/integration/contracts.test.ts). Changing a lease's labels after creation is hoist's own (it renews
// a live pull's expiry); containerd's API has no such call, so it is not part of the contract.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import { type ContractBackend, type OpenBackend, rejectsWith } from './backend.ts';

export function leasesContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  const ctx: Context = { namespace: 'contract-leases' };
  test(`${label}: open`, async () => {
    b = await open();
  });

  test(`${label}: a lease is created with its id and labels, listed, filtered, and gone once deleted`, async () => {
    const id = `contract-${randomBytes(4).toString('hex')}`;
    const lease = await b.backend.leases.create(ctx, { id, labels: { purpose: 'contract' } });
    assert.equal(lease.id, id);
    assert.equal(lease.labels.purpose, 'contract');
    const listed = await b.backend.leases.list(ctx, [`id==${id}`]);
    assert.deepEqual(
      listed.map((l) => l.id),
      [id],
    );
    await rejectsWith(b.backend.leases.create(ctx, { id }), 'HOIST_ALREADY_EXISTS');
    await b.backend.leases.delete(ctx, id);
    assert.deepEqual(await b.backend.leases.list(ctx, [`id==${id}`]), []);
  });

  test(`${label}: resources are added, listed and removed`, async () => {
    const lease = await b.backend.leases.create(ctx, {});
    const digest = `sha256:${randomBytes(32).toString('hex')}`;
    await b.backend.leases.addResource(ctx, lease.id, { id: digest, type: 'content' });
    await b.backend.leases.addResource(ctx, lease.id, { id: 'some-ref', type: 'ingests' });
    const resources = await b.backend.leases.listResources(ctx, lease.id);
    assert.deepEqual(resources.map((r) => `${r.type}:${r.id}`).sort(), [
      `content:${digest}`,
      'ingests:some-ref',
    ]);
    await b.backend.leases.deleteResource(ctx, lease.id, { id: digest, type: 'content' });
    assert.deepEqual(
      (await b.backend.leases.listResources(ctx, lease.id)).map((r) => r.id),
      ['some-ref'],
    );
    await b.backend.leases.delete(ctx, lease.id);
  });

  test(`${label}: close`, async () => {
    await b.close();
  });
}
