import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Descriptor } from '../../src/core/descriptor.ts';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function store(): Promise<LocalStore> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-img-'));
  dirs.push(d);
  const s = await openLocalStore(d);
  stores.push(s);
  return s;
}
const ctx = { namespace: 'k8s.io' };
const err = (code: string, message?: string) => (e: unknown) =>
  e instanceof HoistError && e.code === code && (message === undefined || e.message === message);
const target = (s: string, annotations?: Record<string, string>): Descriptor => ({
  mediaType: 'application/vnd.oci.image.index.v1+json',
  digest: sha256(s),
  size: 100,
  ...(annotations ? { annotations } : {}),
});

test('create, get, already exists, not found, delete with target', async () => {
  const s = await store();
  const rec = await s.images.create(ctx, {
    name: 'docker.io/library/a:1',
    target: target('a', { x: 'y' }),
    labels: { l: 'v' },
  });
  assert.equal(rec.name, 'docker.io/library/a:1');
  assert.deepEqual(rec.target.annotations, { x: 'y' });
  assert.ok(rec.createdAt.getTime() === rec.updatedAt.getTime());
  assert.deepEqual((await s.images.get(ctx, 'docker.io/library/a:1')).labels, { l: 'v' });
  await assert.rejects(
    s.images.create(ctx, { name: 'docker.io/library/a:1', target: target('a'), labels: {} }),
    err('HOIST_ALREADY_EXISTS', 'image "docker.io/library/a:1": already exists'),
  );
  await assert.rejects(s.images.get(ctx, 'nope'), err('HOIST_NOT_FOUND', 'image "nope": not found'));
  await assert.rejects(s.images.get({ namespace: 'other' }, 'docker.io/library/a:1'), err('HOIST_NOT_FOUND'));
  await assert.rejects(
    s.images.delete(ctx, 'docker.io/library/a:1', { target: sha256('b') }),
    err('HOIST_NOT_FOUND'),
  );
  await s.images.delete(ctx, 'docker.io/library/a:1', { target: sha256('a') });
  await assert.rejects(s.images.delete(ctx, 'docker.io/library/a:1'), err('HOIST_NOT_FOUND'));
  assert.deepEqual(
    (await s.namespaces.list()).map((n) => n.name),
    ['k8s.io'],
    'namespace created implicitly',
  );
});

test('validation follows containerd', async () => {
  const s = await store();
  await assert.rejects(
    s.images.create(ctx, { name: '', target: target('a'), labels: {} }),
    err('HOIST_INVALID_ARGUMENT'),
  );
  await assert.rejects(
    s.images.create(ctx, { name: 'x', target: { ...target('a'), size: 0 }, labels: {} }),
    err('HOIST_INVALID_ARGUMENT', 'target.Size must be greater than zero: invalid argument'),
  );
  await assert.rejects(
    s.images.create(ctx, { name: 'x', target: { ...target('a'), mediaType: '' }, labels: {} }),
    err('HOIST_INVALID_ARGUMENT', 'target.MediaType must be set: invalid argument'),
  );
  await assert.rejects(
    s.images.create(ctx, {
      name: 'x',
      target: { ...target('a'), digest: 'sha256:nope' as Digest },
      labels: {},
    }),
    err('HOIST_INVALID_ARGUMENT'),
  );
  await assert.rejects(
    s.images.create(ctx, { name: 'x', target: target('a'), labels: { k: 'v'.repeat(4096) } }),
    err('HOIST_INVALID_ARGUMENT'),
  );
});

test('update with fieldpaths', async () => {
  const s = await store();
  await s.images.create(ctx, { name: 'n', target: target('a', { keep: '1' }), labels: { a: '1', b: '2' } });
  let r = await s.images.update(ctx, { name: 'n', target: target('ignored'), labels: { a: 'changed' } }, [
    'labels.a',
  ]);
  assert.deepEqual(r.labels, { a: 'changed', b: '2' });
  assert.equal(r.target.digest, sha256('a'));
  r = await s.images.update(ctx, { name: 'n', target: target('b'), labels: {} }, ['target']);
  assert.equal(r.target.digest, sha256('b'));
  assert.deepEqual(r.labels, { a: 'changed', b: '2' });
  r = await s.images.update(ctx, { name: 'n', target: target('x', { k: 'v' }), labels: {} }, [
    'annotations.k',
  ]);
  assert.deepEqual(r.target.annotations, { k: 'v' });
  r = await s.images.update(ctx, { name: 'n', target: target('x'), labels: { only: 'x' } }, ['labels']);
  assert.deepEqual(r.labels, { only: 'x' });
  r = await s.images.update(ctx, { name: 'n', target: target('c'), labels: {} });
  assert.equal(r.target.digest, sha256('c'));
  assert.deepEqual(r.labels, {});
  await assert.rejects(
    s.images.update(ctx, { name: 'n', target: target('c'), labels: {} }, ['name']),
    err('HOIST_INVALID_ARGUMENT', 'cannot update "name" field on image "n": invalid argument'),
  );
  await assert.rejects(
    s.images.update(ctx, { name: 'missing', target: target('c'), labels: {} }),
    err('HOIST_NOT_FOUND'),
  );
});

test('list filters and listByTarget', async () => {
  const s = await store();
  await s.images.create(ctx, {
    name: 'docker.io/library/a:1',
    target: target('a'),
    labels: { 'io.cri-containerd.image': 'managed' },
  });
  await s.images.create(ctx, { name: 'docker.io/library/a@' + sha256('a'), target: target('a'), labels: {} });
  await s.images.create(ctx, { name: 'docker.io/library/b:1', target: target('b'), labels: {} });
  assert.equal((await s.images.list(ctx)).length, 3);
  assert.deepEqual(
    (await s.images.list(ctx, ['labels."io.cri-containerd.image"==managed'])).map((i) => i.name),
    ['docker.io/library/a:1'],
  );
  assert.equal((await s.images.list(ctx, [`target.digest==${sha256('a')}`])).length, 2);
  assert.equal((await s.images.list(ctx, ['name~=b:1$', 'name==docker.io/library/a:1'])).length, 2);
  assert.deepEqual(
    (await s.images.listByTarget(ctx, sha256('b'))).map((i) => i.name),
    ['docker.io/library/b:1'],
  );
});

test('list answers from its cache only while nothing changed: own writes, another connection, rollbacks', async () => {
  const a = await store();
  const b = await openLocalStore(a.root); // a second connection, as another process has
  stores.push(b);
  const names = async (s: LocalStore) => (await s.images.list(ctx)).map((r) => r.name);
  await a.images.create(ctx, { name: 'x/one:1', target: target('one'), labels: {} });
  assert.deepEqual(await names(a), ['x/one:1']);
  const v1 = a.images.version(ctx);
  assert.equal(a.images.version(ctx), v1, 'stable while nothing changes');
  // Another connection's commit is seen at once.
  await b.images.create(ctx, { name: 'x/two:1', target: target('two'), labels: {} });
  assert.notEqual(a.images.version(ctx), v1);
  assert.deepEqual(await names(a), ['x/one:1', 'x/two:1']);
  // This connection's own update and delete.
  await a.images.update(ctx, { name: 'x/one:1', target: target('one'), labels: { k: 'v' } }, ['labels']);
  assert.deepEqual((await a.images.list(ctx)).find((r) => r.name === 'x/one:1')?.labels, { k: 'v' });
  await a.images.delete(ctx, 'x/two:1');
  assert.deepEqual(await names(a), ['x/one:1']);
  assert.deepEqual(await names(b), ['x/one:1']);
  // Inside an open transaction nothing is cached (its reads see its own uncommitted rows), and a
  // rollback leaves the committed list.
  await assert.rejects(
    a.db.transaction(async () => {
      await a.images.create(ctx, { name: 'x/three:1', target: target('three'), labels: {} });
      assert.equal(a.images.version(ctx), undefined);
      assert.deepEqual(await names(a), ['x/one:1', 'x/three:1']);
      throw new Error('roll back');
    }),
    /roll back/,
  );
  assert.deepEqual(await names(a), ['x/one:1']);
  // Filters apply to the cached records; callers share them, so they are frozen.
  assert.deepEqual(
    (await a.images.list(ctx, ['labels.k==v'])).map((r) => r.name),
    ['x/one:1'],
  );
  const [rec] = await a.images.list(ctx);
  assert.throws(() => {
    (rec!.labels as Record<string, string>).k = 'changed';
  }, TypeError);
});
