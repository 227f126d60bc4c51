import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
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
  const d = await mkdtemp(join(tmpdir(), 'hoist-gc-'));
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
    {
      digest: sha256(data),
      size: data.length,
    },
    { labels },
  );
  return r.digest;
}

async function onDisk(s: LocalStore): Promise<Set<string>> {
  return new Set((await readdir(join(s.root, 'content', 'blobs', 'sha256'))).map((h) => `sha256:${h}`));
}

async function recorded(s: LocalStore, c: Context = ctx): Promise<Set<string>> {
  return new Set((await s.content.list(c)).map((i) => i.digest));
}

test('GC keeps what images, live leases and gc.root reference, and removes the rest from disk', async () => {
  const s = await store();
  const config = await put(s, ctx, 'config');
  const layer = await put(s, ctx, 'layer0');
  const manifest = await put(s, ctx, 'manifest', {
    'containerd.io/gc.ref.content.config': config,
    'containerd.io/gc.ref.content.l.0': layer,
  });
  const index = await put(s, ctx, 'index', { 'containerd.io/gc.ref.content.m.0': manifest });
  await s.images.create(ctx, {
    name: 'docker.io/library/app:1',
    target: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: index, size: 5 },
    labels: {},
  });
  const labelRef = await put(s, ctx, 'referenced-by-image-label');
  await s.images.create(ctx, {
    name: 'other',
    target: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: index, size: 5 },
    labels: { 'containerd.io/gc.ref.content.sig': labelRef },
  });

  await s.leases.create(ctx, { id: 'live' });
  const leased = await put(s, { ...ctx, lease: 'live' }, 'leased');
  await s.leases.create(ctx, {
    id: 'expired',
    labels: { 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' },
  });
  const expiredLeased = await put(s, { ...ctx, lease: 'expired' }, 'expired-leased');
  await s.leases.create(ctx, { id: 'flat', labels: { 'containerd.io/gc.flat': 'true' } });
  const flatChild = await put(s, ctx, 'flat-child');
  const flatParent = await put(s, { ...ctx, lease: 'flat' }, 'flat-parent', {
    'containerd.io/gc.ref.content': flatChild,
  });
  const rooted = await put(s, ctx, 'rooted', { 'containerd.io/gc.root': 'x' });
  const garbage = await put(s, ctx, 'garbage');
  // Not a ref label (suffix must start with . or /): not followed.
  const notRef = await put(s, ctx, 'not-a-ref');
  await s.content.update(ctx, { digest: rooted, labels: { 'containerd.io/gc.ref.contentX': notRef } }, [
    'labels.containerd.io/gc.ref.contentX',
  ]);
  // Blob recorded only in another namespace, unreferenced there.
  const elsewhere = await put(s, { namespace: 'other' }, 'elsewhere');

  const stats = await s.gc.collect();
  const keep = [config, layer, manifest, index, labelRef, leased, flatParent, rooted];
  const gone = [expiredLeased, flatChild, garbage, notRef, elsewhere];
  const disk = await onDisk(s);
  const rec = await recorded(s);
  for (const d of keep) {
    assert.ok(disk.has(d), `kept on disk: ${d}`);
    assert.ok(rec.has(d), `kept recorded: ${d}`);
  }
  for (const d of gone) {
    assert.ok(!disk.has(d), `removed from disk: ${d}`);
    assert.ok(!rec.has(d), `record removed: ${d}`);
  }
  assert.equal(stats.removedContent, gone.length);
  assert.equal(
    stats.removedBytes,
    ['expired-leased', 'flat-child', 'garbage', 'not-a-ref', 'elsewhere'].reduce((n, t) => n + t.length, 0),
  );
  assert.equal(stats.removedLeases, 0);
  // collect() does not delete leases, even expired ones.
  assert.deepEqual((await s.leases.list(ctx)).map((l) => l.id).sort(), ['expired', 'flat', 'live']);

  // Deleting the image drops its whole tree at the next collection.
  await s.images.delete(ctx, 'docker.io/library/app:1');
  await s.images.delete(ctx, 'other');
  await s.gc.collect();
  const after2 = await onDisk(s);
  for (const d of [config, layer, manifest, index, labelRef]) assert.ok(!after2.has(d));
  assert.ok(after2.has(leased) && after2.has(rooted) && after2.has(flatParent));
});

test('a blob shared by two namespaces stays until neither records it', async () => {
  const s = await store();
  const a = { namespace: 'a' };
  const b = { namespace: 'b' };
  const d = await put(s, a, 'shared', { 'containerd.io/gc.root': '1' });
  await put(s, b, 'shared', { 'containerd.io/gc.root': '1' });
  assert.equal((await onDisk(s)).size, 1);
  await s.content.delete(a, d);
  await s.gc.collect();
  assert.ok((await onDisk(s)).has(d));
  await s.content.delete(b, d);
  await s.gc.collect();
  assert.ok(!(await onDisk(s)).has(d));
});

test('lease expiry: content stays while the lease lives and goes once it has expired', async () => {
  const s = await store();
  const soon = new Date(Date.now() + 3600_000);
  await s.leases.create(ctx, { id: 'L', labels: { 'containerd.io/gc.expire': soon.toISOString() } });
  const d = await put(s, { ...ctx, lease: 'L' }, 'data');
  await s.gc.collect();
  assert.ok((await onDisk(s)).has(d));
  await s.gc.collect({ now: new Date(soon.getTime() + 1000) });
  assert.ok(!(await onDisk(s)).has(d));
  assert.ok(!(await recorded(s)).has(d));
});

test('ingests: unleased ones live 24h, leased ones follow their lease, orphan dirs are removed', async () => {
  const s = await store();
  const free = await s.content.writer(ctx, { ref: 'free' });
  await free.write(Buffer.from('partial-free'));
  await free.close();
  await s.leases.create(ctx, { id: 'dead', labels: { 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' } });
  const leased = await s.content.writer({ ...ctx, lease: 'dead' }, { ref: 'leased' });
  await leased.write(Buffer.from('partial-leased'));
  await leased.close();
  const orphan = join(s.root, 'content', 'ingest', 'f'.repeat(64));
  await mkdir(orphan);
  await writeFile(join(orphan, 'data'), 'orphan');

  const stats = await s.gc.collect();
  assert.deepEqual(
    (await s.content.listStatuses(ctx)).map((st) => st.ref),
    ['free'],
  );
  assert.equal((await readdir(join(s.root, 'content', 'ingest'))).length, 1);
  assert.equal(stats.removedIngests, 2);
  assert.equal(stats.removedIngestBytes, 'partial-leased'.length + 'orphan'.length);

  // 25 hours later the unleased ingest has expired too.
  await s.gc.collect({ now: new Date(Date.now() + 25 * 3600_000) });
  assert.deepEqual(await s.content.listStatuses(ctx), []);
  assert.deepEqual(await readdir(join(s.root, 'content', 'ingest')), []);
});

test('an ingest being written by a live process is never swept', async () => {
  const s = await store();
  await s.leases.create(ctx, { id: 'dead', labels: { 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' } });
  const w = await s.content.writer({ ...ctx, lease: 'dead' }, { ref: 'busy' });
  await w.write(Buffer.from('in flight'));
  await s.gc.collect();
  const data = Buffer.from('in flight');
  await w.commit(data.length, sha256(data));
  assert.ok((await recorded(s)).has(sha256(data)));
});

test('GC stays correct with 10,000 image names', async () => {
  const s = await store();
  const targets: Digest[] = [];
  for (let i = 0; i < 50; i++)
    targets.push(
      await put(s, ctx, `target-${i}`, {
        'containerd.io/gc.ref.content.l.0': await put(s, ctx, `layer-${i}`),
      }),
    );
  await s.db.transaction(async () => {
    for (let i = 0; i < 10_000; i++) {
      await s.images.create(ctx, {
        name: `registry.example.com/team/app-${i}:v1`,
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: targets[i % 50]!,
          size: 10,
        },
        labels: { 'io.cri-containerd.image': 'managed' },
      });
    }
  });
  const junk = await put(s, ctx, 'junk');
  const stats = await s.gc.collect();
  assert.equal(stats.removedContent, 1);
  const disk = await onDisk(s);
  assert.ok(!disk.has(junk));
  assert.equal(disk.size, 100);
  const usage = await s.gc.usage();
  assert.equal(usage.blobs.files, 100);
  assert.equal(usage.reclaimableBytes, 0);
  assert.equal(usage.imageBytes, usage.blobs.fileBytes);
});
