import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { DirectorySnapshotter } from '../../src/api/snapshots.ts';
import type { Context } from '../../src/core/context.ts';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function store(): Promise<LocalStore> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-snap-gc-'));
  dirs.push(d);
  const s = await openLocalStore(d);
  stores.push(s);
  return s;
}

const ctx: Context = { namespace: 'default' };

async function put(
  s: LocalStore,
  c: Context,
  text: string,
  labels: Record<string, string> = {},
): Promise<Digest> {
  const data = Buffer.from(text);
  const r = await writeBlob(
    s.content,
    c,
    `ref-${text}`,
    [data] as unknown as AsyncIterable<Uint8Array>,
    { digest: sha256(data), size: data.length },
    { labels },
  );
  return r.digest;
}

/** Prepare, write one file of `bytes` bytes, commit. */
async function layer(
  sn: DirectorySnapshotter,
  c: Context,
  name: string,
  parent: string | undefined,
  bytes = 10,
) {
  await sn.prepare(c, `${name}-active`, parent);
  const { dir } = await sn.applyTarget(c, `${name}-active`);
  await writeFile(join(dir, name), Buffer.alloc(bytes, 1));
  await sn.commit(c, name, `${name}-active`);
}

const names = async (sn: DirectorySnapshotter, c: Context = ctx) =>
  (await sn.list(c)).map((i) => i.name).sort();
const backendDirs = (s: LocalStore, sn: string) => readdir(join(s.root, 'snapshots', sn, 'snapshots'));

test('gc.ref.snapshot on the image config keeps the chain; dropping the label frees chain and dirs', async () => {
  const s = await store();
  const sn = s.snapshotters.get('overlayfs')!;
  await layer(sn, ctx, 'sha256:l1', undefined);
  await layer(sn, ctx, 'sha256:l2', 'sha256:l1');
  await layer(sn, ctx, 'sha256:l3', 'sha256:l2');
  // Another image's chain sharing the base.
  await layer(sn, ctx, 'sha256:other', 'sha256:l1');
  const config = await put(s, ctx, 'config', { 'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:l3' });
  const manifest = await put(s, ctx, 'manifest', { 'containerd.io/gc.ref.content.config': config });
  await s.images.create(ctx, {
    name: 'docker.io/library/app:1',
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest, size: 8 },
    labels: {},
  });

  let stats = await s.gc.collect();
  assert.equal(stats.removedSnapshots, 1, 'only the unreferenced chain tip goes');
  assert.deepEqual(await names(sn), ['sha256:l1', 'sha256:l2', 'sha256:l3']);
  assert.equal((await backendDirs(s, 'overlayfs')).length, 3);

  // Unlabel the config (as discard or a re-unpack into another snapshotter would): the chain is garbage.
  await s.content.update(ctx, { digest: config, labels: {} }, [
    'labels.containerd.io/gc.ref.snapshot.overlayfs',
  ]);
  stats = await s.gc.collect();
  assert.equal(stats.removedSnapshots, 3);
  assert.equal(stats.removedSnapshotBytes, 30);
  assert.deepEqual(await names(sn), []);
  assert.deepEqual(await backendDirs(s, 'overlayfs'), []);
  // The image's content is still there: only the snapshot reference was dropped.
  assert.equal((await s.content.info(ctx, config)).digest, config);
});

test('removing the image frees its snapshots at the next collection', async () => {
  const s = await store();
  const sn = s.snapshotters.get('native')!;
  await layer(sn, ctx, 'base', undefined);
  await layer(sn, ctx, 'top', 'base');
  const config = await put(s, ctx, 'cfg', { 'containerd.io/gc.ref.snapshot.native': 'top' });
  await s.images.create(ctx, {
    name: 'img',
    target: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 3 },
    labels: {},
  });
  await s.gc.collect();
  assert.deepEqual(await names(sn), ['base', 'top']);
  await s.images.delete(ctx, 'img');
  await s.gc.collect();
  assert.deepEqual(await names(sn), []);
  assert.deepEqual(await backendDirs(s, 'native'), []);
});

test('leases protect active snapshots until they expire or are deleted; flat leases keep parents only', async () => {
  const s = await store();
  const sn = s.snapshotters.get('overlayfs')!;
  await layer(sn, ctx, 'p', undefined);
  const soon = new Date(Date.now() + 3600_000);
  await s.leases.create(ctx, { id: 'L', labels: { 'containerd.io/gc.expire': soon.toISOString() } });
  await sn.prepare({ ...ctx, lease: 'L' }, 'extract-1 sha256:x', 'p');
  await sn.prepare(ctx, 'unleased', 'p');
  // A resource added by hand (the Leases API) protects as well.
  await sn.prepare(ctx, 'added-later', 'p');
  await s.leases.addResource(ctx, 'L', { type: 'snapshots/overlayfs', id: 'added-later' });

  await s.gc.collect();
  // Outside a lease an active snapshot is garbage (containerd: containers would reference it).
  assert.deepEqual(await names(sn), ['added-later', 'extract-1 sha256:x', 'p']);

  // Flat lease: the snapshot and its parent stay, the content its label names does not.
  const blob = await put(s, ctx, 'named-by-snapshot');
  await s.leases.create(ctx, { id: 'F', labels: { 'containerd.io/gc.flat': '1' } });
  await sn.prepare({ ...ctx, lease: 'F' }, 'flat', 'p', {
    labels: { 'containerd.io/gc.ref.content.x': blob },
  });
  await s.gc.collect();
  assert.deepEqual(await names(sn), ['added-later', 'extract-1 sha256:x', 'flat', 'p']);
  await assert.rejects(s.content.info(ctx, blob), /not found/);

  // After expiry the leased snapshot, and the parent nothing else holds, go.
  await s.leases.delete(ctx, 'F');
  await s.gc.collect({ now: new Date(soon.getTime() + 1000) });
  assert.deepEqual(await names(sn), []);
  assert.deepEqual(await backendDirs(s, 'overlayfs'), []);
});

test('gc.root snapshots stay with their parents; snapshot labels keep content', async () => {
  const s = await store();
  const sn = s.snapshotters.get('native')!;
  await layer(sn, ctx, 'a', undefined);
  await layer(sn, ctx, 'b', 'a');
  const blob = await put(s, ctx, 'kept-by-snapshot-label');
  await sn.view(ctx, 'mounted', 'b', {
    labels: { 'containerd.io/gc.root': 'mounted', 'containerd.io/gc.ref.content.sig': blob },
  });
  const other: Context = { namespace: 'other' };
  await layer(sn, other, 'a', undefined);
  await s.gc.collect();
  assert.deepEqual(await names(sn), ['a', 'b', 'mounted']);
  assert.equal((await s.content.info(ctx, blob)).digest, blob);
  // Namespaces are separate graphs: "a" in `other` had no root.
  assert.deepEqual(await names(sn, other), []);

  await sn.update(ctx, { name: 'mounted', labels: {} }, ['labels.containerd.io/gc.root']);
  await s.gc.collect();
  assert.deepEqual(await names(sn), []);
  await assert.rejects(s.content.info(ctx, blob), /not found/);
});

test('GC removes crash leftovers: directories without records', async () => {
  const s = await store();
  const sn = s.snapshotters.get('native')!;
  await layer(sn, ctx, 'root-kept', undefined);
  await sn.update(ctx, { name: 'root-kept', labels: { 'containerd.io/gc.root': '1' } });
  const base = join(s.root, 'snapshots', 'native', 'snapshots');
  await mkdir(join(base, '4242', 'fs'), { recursive: true });
  await writeFile(join(base, '4242', 'fs', 'junk'), Buffer.alloc(100));
  await mkdir(join(s.root, 'snapshots', 'someday', 'snapshots', '1', 'fs'), { recursive: true });
  const stats = await s.gc.collect();
  assert.equal(stats.removedSnapshots, 0);
  assert.equal(stats.removedSnapshotBytes, 100);
  assert.equal((await backendDirs(s, 'native')).length, 1);
  assert.deepEqual(await backendDirs(s, 'someday'), []);
  assert.deepEqual(await names(sn), ['root-kept']);
});

test('usage: snapshot bytes per snapshotter, image-held and reclaimable, leases count their snapshots', async () => {
  const s = await store();
  const ovl = s.snapshotters.get('overlayfs')!;
  const nat = s.snapshotters.get('native')!;
  await layer(ovl, ctx, 'i1', undefined, 100);
  await layer(ovl, ctx, 'i2', 'i1', 200);
  const config = await put(s, ctx, 'conf', { 'containerd.io/gc.ref.snapshot.overlayfs': 'i2' });
  await s.images.create(ctx, {
    name: 'img',
    target: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 4 },
    labels: {},
  });
  await s.leases.create(ctx, { id: 'L' });
  await layer(nat, { ...ctx, lease: 'L' }, 'leased', undefined, 1000);
  await layer(nat, ctx, 'loose', undefined, 7);

  const u = await s.gc.usage();
  assert.equal(u.snapshots.count, 4);
  assert.equal(u.snapshots.active, 0);
  assert.equal(u.snapshots.bytes, 1307);
  assert.equal(u.snapshots.imageBytes, 300);
  assert.equal(u.snapshots.reclaimableBytes, 1007);
  assert.deepEqual(
    u.snapshots.bySnapshotter.map((x) => [x.snapshotter, x.count, x.bytes, x.imageBytes, x.reclaimableBytes]),
    [
      ['native', 2, 1007, 0, 1007],
      ['overlayfs', 2, 300, 300, 0],
    ],
  );
  assert.equal(u.leases.find((l) => l.id === 'L')?.bytes, 1000);
  // Usage was measured once and cached in the records of committed snapshots.
  const cached = s.db.all<{ size: number | null }>('SELECT size FROM snapshots');
  assert.ok(cached.every((r) => r.size !== null));
});
