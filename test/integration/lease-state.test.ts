// `hoist lease ls` says what GC and prune will do with each lease: a lease whose owner process died before
// it expired is ORPHANED (it used to show as alive: "yes"), and `system prune` takes exactly the orphaned
// and expired ones, while GC keeps an orphaned lease's data until its expiry.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Labels } from '../../src/core/labels.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { bootId, currentOwner } from '../../src/leases/owner.ts';
import { tableRows, tempStore } from '../helpers/run-hoist.ts';

const iso = (ms: number) => new Date(Date.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

test('lease ls: running, orphaned (owner dead, unexpired), expired and held; prune takes orphaned and expired', async () => {
  const h = await tempStore();
  try {
    // A process that has exited: its pid names no process with that start time any more.
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const deadOwner = `${bootId()}/${gone.stdout.trim()}/1`;
    const store = await openLocalStore(h.root);
    const ctx = { namespace: 'default' };
    const make = (id: string, labels: Record<string, string>) => store.leases.create(ctx, { id, labels });
    // The test process outlives the `lease ls` below: a live owner.
    await make('running', { [Labels.leaseOwner]: currentOwner(), [Labels.gcExpire]: iso(-60_000) });
    await make('orphaned', { [Labels.leaseOwner]: deadOwner, [Labels.gcExpire]: iso(3600_000) });
    await make('expired', { [Labels.leaseOwner]: deadOwner, [Labels.gcExpire]: iso(-60_000) });
    await make('held', { [Labels.gcExpire]: iso(3600_000) });
    store.close();

    const state = (rows: string[][]) => Object.fromEntries(rows.map((r) => [r[0], r[4]]));
    const out = await h.ok('lease', 'ls');
    assert.match(out.split('\n')[0]!, /\bSTATE\b/);
    assert.deepEqual(state(tableRows(out)), {
      running: 'running',
      orphaned: 'orphaned (owner dead; prune reclaims)',
      expired: 'expired (reclaimable)',
      held: 'held',
    });
    // The same states in system df's JSON, and GC's view: only the expired one roots nothing.
    const df = JSON.parse(await h.ok('system', 'df', '-v', '--format', 'json')) as {
      Leases: { ID: string; State: string; Alive: boolean }[];
    };
    assert.deepEqual(Object.fromEntries(df.Leases.map((l) => [l.ID, [l.State, l.Alive]])), {
      running: ['running', true],
      orphaned: ['orphaned', true],
      expired: ['expired', false],
      held: ['held', true],
    });

    const pruned = await h.ok('system', 'prune');
    assert.match(pruned, /Deleted lease: default\/orphaned \(owner-dead\)/);
    assert.match(pruned, /Deleted lease: default\/expired \(expired\)/);
    assert.deepEqual(
      tableRows(await h.ok('lease', 'ls'))
        .map((r) => r[0])
        .sort(),
      ['held', 'running'],
    );
  } finally {
    await h.cleanup();
  }
});
