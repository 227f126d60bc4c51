// The snapshotter's contract (containerd's snapshots.Snapshotter as its metadata store presents it), for
// overlayfs and native, run on every backend (test/integration/contracts.test.ts). Only the API's view:
// what a directory holds is the applier's and the unpack tests' business.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import { type ContractBackend, type OpenBackend, rejectsWith } from './backend.ts';

export function snapshotsContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  const ctx: Context = { namespace: 'contract-snapshots' };
  test(`${label}: open`, async () => {
    b = await open();
    // Snapshots live as long as a lease or a committed name keeps them; the lease keeps actives here.
    const lease = await b.backend.leases.create(ctx, {});
    Object.assign(ctx, { lease: lease.id });
  });

  for (const name of ['overlayfs', 'native']) {
    test(`${label} (${name}): prepare, commit, a child on it, stat, list, update, view and remove`, async () => {
      const sn = b.backend.snapshotters.get(name);
      assert.ok(sn, `${name} snapshotter`);
      const id = randomBytes(4).toString('hex');
      const base = `base-${id}`;
      const mounts = await sn.prepare(ctx, `${base}-active`, undefined, { labels: { stage: 'base' } });
      assert.equal(mounts.length, 1);
      await sn.commit(ctx, base, `${base}-active`, { labels: { committed: 'yes' } });
      const info = await sn.stat(ctx, base);
      assert.equal(info.kind, 'committed');
      assert.equal(info.labels.committed, 'yes');
      await rejectsWith(sn.stat(ctx, `${base}-active`), 'HOIST_NOT_FOUND');

      const child = `child-${id}`;
      await sn.prepare(ctx, child, base);
      const childInfo = await sn.stat(ctx, child);
      assert.equal(childInfo.kind, 'active');
      assert.equal(childInfo.parent, base);
      await rejectsWith(sn.prepare(ctx, child, base), 'HOIST_ALREADY_EXISTS');

      const listed = await sn.list(ctx, [`parent==${base}`]);
      assert.deepEqual(
        listed.map((s) => s.name),
        [child],
      );
      const updated = await sn.update(ctx, { name: base, labels: { extra: '1' } }, ['labels.extra']);
      assert.equal(updated.labels.extra, '1');
      assert.equal(updated.labels.committed, 'yes');

      const view = `view-${id}`;
      assert.equal((await sn.view(ctx, view, base)).length, 1);
      assert.equal((await sn.stat(ctx, view)).kind, 'view');

      // A parent with children stays; children first.
      await rejectsWith(sn.remove(ctx, base), 'HOIST_FAILED_PRECONDITION');
      await sn.remove(ctx, view);
      await sn.remove(ctx, child);
      await sn.remove(ctx, base);
      await rejectsWith(sn.stat(ctx, base), 'HOIST_NOT_FOUND');
    });
  }

  test(`${label}: close`, async () => {
    await b.close();
  });
}
