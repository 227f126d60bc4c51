import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isIdentifier } from '../../src/core/context.ts';
import { sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { randomLeaseId } from '../../src/metadata/leases.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function store(): Promise<LocalStore> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-lease-'));
  dirs.push(d);
  const s = await openLocalStore(d);
  stores.push(s);
  return s;
}
const ctx = { namespace: 'default' };
const err = (code: string, message?: string) => (e: unknown) =>
  e instanceof HoistError && e.code === code && (message === undefined || e.message === message);

test('random ids look like containerd ones and are identifiers', () => {
  for (let i = 0; i < 200; i++) {
    const id = randomLeaseId();
    assert.match(id, /^\d+-[A-Za-z0-9_-]{4}$/);
    assert.ok(isIdentifier(id), id);
  }
});

test('create, list with filters, setLabels, delete', async () => {
  const s = await store();
  const l1 = await s.leases.create(ctx, { labels: { 'hoist.io/purpose': 'pull' } });
  await s.leases.create(ctx, { id: 'mine', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z' } });
  await assert.rejects(
    s.leases.create(ctx, { id: 'mine' }),
    err('HOIST_ALREADY_EXISTS', 'lease "mine": already exists'),
  );
  assert.equal((await s.leases.list(ctx)).length, 2);
  assert.deepEqual(
    (await s.leases.list(ctx, ['labels."hoist.io/purpose"==pull'])).map((l) => l.id),
    [l1.id],
  );
  assert.deepEqual(
    (await s.leases.list(ctx, ['id==mine'])).map((l) => l.id),
    ['mine'],
  );
  const updated = await s.leases.setLabels(ctx, 'mine', {
    'containerd.io/gc.expire': '2100-01-01T00:00:00Z',
    x: 'y',
  });
  assert.deepEqual(updated.labels, { 'containerd.io/gc.expire': '2100-01-01T00:00:00Z', x: 'y' });
  await s.leases.delete(ctx, 'mine');
  await assert.rejects(s.leases.delete(ctx, 'mine'), err('HOIST_NOT_FOUND', 'lease "mine": not found'));
  await assert.rejects(s.leases.setLabels(ctx, 'mine', {}), err('HOIST_NOT_FOUND'));
  assert.deepEqual(await s.leases.list({ namespace: 'other' }), []);
});

test('resources: types validated, listed, removed with the lease', async () => {
  const s = await store();
  await s.leases.create(ctx, { id: 'L' });
  await s.leases.addResource(ctx, 'L', { type: 'content', id: sha256('x') });
  await s.leases.addResource(ctx, 'L', { type: 'ingests', id: 'layer-ref' });
  await s.leases.addResource(ctx, 'L', { type: 'snapshots/overlayfs', id: 'key' });
  await assert.rejects(
    s.leases.addResource(ctx, 'L', { type: 'content', id: 'nope' }),
    err('HOIST_INVALID_ARGUMENT'),
  );
  await assert.rejects(
    s.leases.addResource(ctx, 'L', { type: 'bogus', id: 'x' }),
    err('HOIST_NOT_IMPLEMENTED'),
  );
  await assert.rejects(
    s.leases.addResource(ctx, 'missing', { type: 'ingests', id: 'x' }),
    err('HOIST_NOT_FOUND'),
  );
  assert.equal((await s.leases.listResources(ctx, 'L')).length, 3);
  await s.leases.deleteResource(ctx, 'L', { type: 'ingests', id: 'layer-ref' });
  assert.deepEqual(
    (await s.leases.listResources(ctx, 'L')).map((r) => r.type),
    ['content', 'snapshots/overlayfs'],
  );
  await s.leases.delete(ctx, 'L');
  assert.equal(s.db.all('SELECT * FROM lease_resources').length, 0);
});
