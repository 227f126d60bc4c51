import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { bootId, currentOwner, formatOwner, isOwnerAlive, parseOwner } from '../../src/leases/owner.ts';
import { writeBlob } from '../../src/metadata/content.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function store(): Promise<LocalStore> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-gcl-'));
  dirs.push(d);
  const s = await openLocalStore(d);
  stores.push(s);
  return s;
}
const ctx: Context = { namespace: 'default' };
const PAST = '2000-01-01T00:00:00Z';
const FUTURE = '2999-01-01T00:00:00Z';

async function put(
  s: LocalStore,
  c: Context,
  text: string,
  labels: Record<string, string> = {},
): Promise<Digest> {
  const data = Buffer.from(text);
  return (
    await writeBlob(
      s.content,
      c,
      `ref-${text}`,
      [data] as unknown as AsyncIterable<Uint8Array>,
      {
        digest: sha256(data),
        size: data.length,
      },
      { labels },
    )
  ).digest;
}

/** This process, but with another start time: the pid exists, yet it is not the same process. */
function deadOwner(): string {
  const me = parseOwner(currentOwner())!;
  return formatOwner({ ...me, startTicks: String(Number(me.startTicks) + 12345) });
}

test('owner identity: the current process is alive; fabricated ones are not', () => {
  const me = currentOwner();
  assert.match(me, /^[0-9a-f-]+\/\d+\/\d+$/);
  assert.equal(parseOwner(me)?.pid, process.pid);
  assert.equal(isOwnerAlive(me), true);
  assert.equal(isOwnerAlive(deadOwner()), false, 'same pid, different start ticks');
  assert.equal(isOwnerAlive(`${bootId()}/999999999/1`), false, 'no such pid');
  assert.equal(isOwnerAlive(`other-boot/${process.pid}/${parseOwner(me)!.startTicks}`), false, 'other boot');
  assert.equal(isOwnerAlive('garbage'), false);
});

test('pruneLeases removes expired and dead-owner leases, never a live owner’s', async () => {
  const s = await store();
  await s.leases.create(ctx, {
    id: 'live-owner-expired',
    labels: { 'hoist.io/owner': currentOwner(), 'containerd.io/gc.expire': PAST },
  });
  await s.leases.create(ctx, { id: 'live-owner', labels: { 'hoist.io/owner': currentOwner() } });
  await s.leases.create(ctx, {
    id: 'dead-owner',
    labels: { 'hoist.io/owner': deadOwner(), 'containerd.io/gc.expire': FUTURE },
  });
  await s.leases.create(ctx, { id: 'expired', labels: { 'containerd.io/gc.expire': PAST } });
  await s.leases.create(ctx, { id: 'unexpired', labels: { 'containerd.io/gc.expire': FUTURE } });
  await s.leases.create(ctx, { id: 'forever' });
  await s.leases.create(ctx, { id: 'bad-expiry', labels: { 'containerd.io/gc.expire': 'not a time' } });
  await s.leases.create(
    { namespace: 'k8s.io' },
    { id: 'expired', labels: { 'containerd.io/gc.expire': PAST } },
  );

  const removed = await s.gc.pruneLeases();
  assert.deepEqual(removed.map((r) => `${r.namespace}/${r.id}:${r.reason}`).sort(), [
    'default/dead-owner:owner-dead',
    'default/expired:expired',
    'k8s.io/expired:expired',
  ]);
  assert.deepEqual((await s.leases.list(ctx)).map((l) => l.id).sort(), [
    'bad-expiry',
    'forever',
    'live-owner',
    'live-owner-expired',
    'unexpired',
  ]);
  // `now` moves expiry; a live owner still wins.
  const later = await s.gc.pruneLeases({ now: new Date('3000-01-01T00:00:00Z') });
  assert.deepEqual(
    later.map((r) => r.id),
    ['unexpired'],
  );
  assert.ok((await s.leases.list(ctx)).some((l) => l.id === 'live-owner-expired'));
});

test('an expired lease whose owner is alive still protects its content from collect()', async () => {
  const s = await store();
  await s.leases.create(ctx, {
    id: 'pull',
    labels: { 'hoist.io/owner': currentOwner(), 'containerd.io/gc.expire': PAST },
  });
  await s.leases.create(ctx, {
    id: 'crashed',
    labels: { 'hoist.io/owner': deadOwner(), 'containerd.io/gc.expire': PAST },
  });
  const kept = await put(s, { ...ctx, lease: 'pull' }, 'in-flight');
  const lost = await put(s, { ...ctx, lease: 'crashed' }, 'abandoned');
  await s.gc.collect();
  const left = new Set((await s.content.list(ctx)).map((i) => i.digest));
  assert.ok(left.has(kept));
  assert.ok(!left.has(lost));
});

test('usage reports reachable, shared, reclaimable bytes, partial ingests and leases', async () => {
  const s = await store();
  const shared = await put(s, ctx, 'shared-layer'); // 12 bytes
  const own1 = await put(s, ctx, 'own-1'); // 5
  const own2 = await put(s, ctx, 'own-22'); // 6
  const m1 = await put(s, ctx, 'manifest-1', {
    'containerd.io/gc.ref.content.l.0': shared,
    'containerd.io/gc.ref.content.l.1': own1,
  }); // 10
  const m2 = await put(s, ctx, 'manifest-22', {
    'containerd.io/gc.ref.content.l.0': shared,
    'containerd.io/gc.ref.content.l.1': own2,
  }); // 11
  const mt = 'application/vnd.oci.image.manifest.v1+json';
  await s.images.create(ctx, { name: 'a:1', target: { mediaType: mt, digest: m1, size: 10 }, labels: {} });
  await s.images.create(ctx, {
    name: 'a:latest',
    target: { mediaType: mt, digest: m1, size: 10 },
    labels: {},
  });
  await s.images.create(ctx, { name: 'b:1', target: { mediaType: mt, digest: m2, size: 11 }, labels: {} });
  await s.leases.create(ctx, { id: 'L', labels: { 'hoist.io/owner': currentOwner() } });
  const leasedBlob = await put(s, { ...ctx, lease: 'L' }, 'leased-only'); // 11
  const w = await s.content.writer(
    { ...ctx, lease: 'L' },
    { ref: 'layer-partial', expected: { digest: sha256('x'.repeat(100)), size: 100 } },
  );
  await w.write(Buffer.from('x'.repeat(40)));
  await w.close();

  const u = await s.gc.usage();
  assert.equal(u.blobs.files, 6);
  assert.equal(u.blobs.records, 6);
  assert.equal(u.blobs.fileBytes, 12 + 5 + 6 + 10 + 11 + 11);
  assert.equal(u.imageBytes, 12 + 5 + 6 + 10 + 11);
  assert.equal(u.sharedBytes, 12);
  assert.equal(u.reclaimableBytes, 11);
  assert.equal(u.ingests.count, 1);
  assert.equal(u.ingests.bytes, 40);
  const item = u.ingests.items[0]!;
  assert.equal(item.ref, 'layer-partial');
  assert.equal(item.offset, 40);
  assert.equal(item.total, 100);
  assert.deepEqual(item.leases, ['L']);
  assert.equal(item.owner, undefined, 'closed writer holds no lock');
  assert.equal(u.leases.length, 1);
  const lease = u.leases[0]!;
  assert.equal(lease.id, 'L');
  assert.equal(lease.resources, 2);
  assert.equal(lease.bytes, 11 + 40);
  assert.equal(lease.ownerAlive, true);
  assert.equal(lease.alive, true);
  assert.equal(lease.expires, undefined);
  assert.ok(leasedBlob);
});
