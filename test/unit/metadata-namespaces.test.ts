import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function store(): Promise<LocalStore> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-ns-'));
  dirs.push(d);
  const s = await openLocalStore(d);
  stores.push(s);
  return s;
}
const err = (code: string, message?: string) => (e: unknown) =>
  e instanceof HoistError && e.code === code && (message === undefined || e.message === message);

test('create, get, labels, identifier rule', async () => {
  const s = await store();
  await s.namespaces.create('k8s.io', { a: 'b' });
  await assert.rejects(
    s.namespaces.create('k8s.io'),
    err('HOIST_ALREADY_EXISTS', 'namespace "k8s.io": already exists'),
  );
  await assert.rejects(s.namespaces.create('bad name'), err('HOIST_INVALID_ARGUMENT'));
  await assert.rejects(s.namespaces.create('-x'), err('HOIST_INVALID_ARGUMENT'));
  assert.deepEqual((await s.namespaces.setLabel('k8s.io', 'c', 'd')).labels, { a: 'b', c: 'd' });
  assert.deepEqual((await s.namespaces.setLabel('k8s.io', 'a', '')).labels, { c: 'd' });
  await assert.rejects(s.namespaces.get('nope'), err('HOIST_NOT_FOUND', 'namespace "nope": not found'));
  await assert.rejects(s.content.list({ namespace: 'bad name' }), err('HOIST_INVALID_ARGUMENT'));
});

test('delete refuses a namespace with images or blobs; leases and ingests do not block', async () => {
  const s = await store();
  const ctx = { namespace: 'busy' };
  const data = Buffer.from('blob');
  await writeBlob(s.content, ctx, 'r', [data] as unknown as AsyncIterable<Uint8Array>, {
    digest: sha256(data),
    size: 4,
  });
  await s.images.create(ctx, {
    name: 'img',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(data), size: 4 },
    labels: {},
  });
  await s.leases.create(ctx, { id: 'L' });
  const w = await s.content.writer(ctx, { ref: 'partial' });
  await w.close();
  s.namespaces.addUsageCheck((ns) => (ns === 'busy' ? ['snapshots on "overlayfs" snapshotter'] : []));
  await assert.rejects(
    s.namespaces.delete('busy'),
    err(
      'HOIST_FAILED_PRECONDITION',
      'namespace "busy" must be empty, but it still has images, blobs, snapshots on "overlayfs" snapshotter: failed precondition',
    ),
  );
  const s2 = await store();
  await s2.leases.create({ namespace: 'quiet' }, { id: 'L' });
  const w2 = await s2.content.writer({ namespace: 'quiet' }, { ref: 'partial' });
  await w2.close();
  await s2.namespaces.delete('quiet');
  assert.deepEqual(await s2.namespaces.list(), []);
  assert.equal(s2.db.all('SELECT * FROM leases').length, 0);
  assert.equal(s2.db.all('SELECT * FROM ingests').length, 0);
  await assert.rejects(s2.namespaces.delete('quiet'), err('HOIST_NOT_FOUND'));
});
