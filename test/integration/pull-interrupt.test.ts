// Interrupted pulls against the real registry: a layer download is held part-way by the proxy, the pull is
// stopped (SIGINT, SIGKILL), and the store must show the partial data, resume it with a Range request, and
// let `system prune` reclaim it only once no live process owns it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  blobPath,
  fileDigest,
  type HoistProcess,
  layerIngestBytes,
  spawnHoist,
  waitFor,
} from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tableRows, tempStore } from '../helpers/run-hoist.ts';

/** Random bytes do not compress: the layer blob is about this big. */
const LAYER_BYTES = 40 * 1024 * 1024;
/** Where the proxy holds the layer download. */
const HOLD_AT = 12 * 1024 * 1024;

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let name: string;

const layer = () => image.images[0]!.layers[0]!;

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-interrupt-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'big', image: { layers: [{ randomBytes: LAYER_BYTES }] } },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'int/big:1', reg.host, { srcTag: 'big' });
  name = `${reg.host}/int/big:1`;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Df {
  Ingests: { Count: number; Bytes: number; Items: { Ref: string; Offset: number; OwnerAlive?: boolean }[] };
  Leases: { ID: string; Owner?: string; OwnerAlive?: boolean; Alive: boolean; Bytes: number }[];
  Blobs: { Files: number; FileBytes: number };
}

async function df(h: HoistStore, ...args: string[]): Promise<Df> {
  return JSON.parse(await h.ok(...args, 'system', 'df', '-v', '--format', 'json')) as Df;
}

/** Start a pull whose layer download the proxy holds at HOLD_AT; resolves once those bytes are on disk. */
async function heldPull(
  h: HoistStore,
  ns = 'default',
  global: string[] = [],
): Promise<{ p: HoistProcess; release: () => void }> {
  const hold = reg.holdBlob(layer().digest, HOLD_AT);
  const p = spawnHoist(h, ...global, '-n', ns, 'pull', '--plain-http', '--progress', 'plain', name);
  const early = p.exited.then((r) => {
    throw new Error(`pull exited early (${r.code ?? r.signal}): ${p.stderr()}`);
  });
  await Promise.race([hold.reached, early]);
  await Promise.race([
    waitFor(
      async () => (await layerIngestBytes(h.root, ns, layer().digest)) === HOLD_AT,
      'held bytes on disk',
    ),
    early,
  ]);
  early.catch(() => undefined);
  return { p, release: () => hold.release() };
}

/** The layer's GET requests since the last resetStats(). */
function layerGets() {
  return reg
    .stats()
    .requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer().digest}`));
}

async function assertPulledAndVerified(h: HoistStore, ns = 'default'): Promise<void> {
  const img = JSON.parse(await h.ok('-n', ns, 'image', 'inspect', name))[0] as { Id: string };
  assert.equal(img.Id, image.top.digest);
  for (const d of [layer().digest, image.images[0]!.config.digest, image.top.digest])
    assert.equal(await fileDigest(blobPath(h.root, d)), d, `blob ${d} verifies`);
  const after = await df(h, '-n', ns);
  assert.equal(after.Ingests.Count, 0, 'no partial pulls left');
  assert.deepEqual(after.Leases, [], 'the finished pull superseded the interrupted pull’s lease');
}

async function expectResume(h: HoistStore, offset: number): Promise<void> {
  reg.resetStats();
  await h.ok('pull', '--plain-http', '-q', name);
  const gets = layerGets();
  assert.equal(gets.length, 1, 'one request for the layer');
  assert.equal(gets[0]!.range, `bytes=${offset}-`, 'resumed with a Range request at the partial offset');
  assert.equal(gets[0]!.status, 206);
  assert.equal(gets[0]!.bytes, layer().size - offset, 'only the rest of the layer was transferred');
  assert.ok(reg.stats().blobBytes < layer().size);
  await assertPulledAndVerified(h);
}

test('SIGINT: exit 130 with a resume hint; df and lease ls show the partial pull; the next pull resumes with Range', async () => {
  const h = await tempStore();
  try {
    const { p, release } = await heldPull(h);
    p.child.kill('SIGINT');
    const r = await p.exited;
    release();
    assert.equal(r.code, 130, p.stderr());
    assert.match(p.stderr(), /interrupted/);
    assert.match(p.stderr(), /run the same pull to resume/);
    assert.doesNotMatch(p.stderr(), /\n\s+at /, 'no stack trace');

    const u = await df(h);
    assert.equal(u.Ingests.Count, 1);
    assert.equal(u.Ingests.Bytes, HOLD_AT, 'df counts the partial bytes');
    assert.equal(u.Leases.length, 1);
    assert.match(u.Leases[0]!.Owner ?? '', new RegExp(`/${p.pid}/`), 'the lease names its owner process');
    assert.equal(u.Leases[0]!.OwnerAlive, false);
    assert.ok(u.Leases[0]!.Bytes >= HOLD_AT, 'the lease holds the partial bytes');
    const table = await h.ok('system', 'df');
    assert.match(table, /Partial pulls\s+1\s+12\.58MB/, 'decimal units, as docker prints them');
    assert.match(table, /abandoned/);

    const leases = tableRows(await h.ok('lease', 'ls'));
    assert.equal(leases.length, 1);
    assert.equal(leases[0]![0], u.Leases[0]!.ID);
    assert.equal(leases[0]![3], `pid ${p.pid}`);
    assert.match(leases[0]!.join(' '), new RegExp(`pull ${name.replace(/[.]/g, '\\.')}`));

    await expectResume(h, HOLD_AT);
  } finally {
    await h.cleanup();
  }
});

test('SIGKILL: no cleanup ran, the next pull still resumes; prune reclaims a dead owner’s partial pull', async () => {
  const resumed = await tempStore();
  const pruned = await tempStore();
  try {
    const a = await heldPull(resumed);
    a.p.child.kill('SIGKILL');
    assert.equal((await a.p.exited).signal, 'SIGKILL');
    a.release();
    const u = await df(resumed);
    assert.equal(u.Ingests.Bytes, HOLD_AT);
    assert.equal(u.Ingests.Items[0]!.OwnerAlive, false, 'the writer lock of a dead process is not live');
    await expectResume(resumed, HOLD_AT);

    const b = await heldPull(pruned);
    b.p.child.kill('SIGKILL');
    await b.p.exited;
    b.release();
    assert.equal((await df(pruned)).Ingests.Bytes, HOLD_AT);
    const out = await pruned.ok('system', 'prune');
    assert.match(out, /Deleted lease: default\/\S+ \(owner-dead\)/);
    assert.match(out, /Total reclaimed space: 12\.58MB/);
    const after = await df(pruned);
    assert.equal(after.Ingests.Count, 0);
    assert.equal(after.Ingests.Bytes, 0);
    assert.equal(after.Leases.length, 0);
    assert.deepEqual(await readdir(join(pruned.root, 'content', 'ingest')), [], 'no ingest left on disk');
    assert.equal(tableRows(await pruned.ok('lease', 'ls')).length, 0);
  } finally {
    await resumed.cleanup();
    await pruned.cleanup();
  }
});

test('system prune while a pull runs: the live pull keeps its data and completes; a dead one is reclaimed', async () => {
  const h = await tempStore();
  try {
    // A pull killed in namespace "other": abandoned data for prune to take.
    const dead = await heldPull(h, 'other');
    dead.p.child.kill('SIGKILL');
    await dead.p.exited;
    dead.release();

    const live = await heldPull(h);
    const before = await df(h);
    assert.equal(before.Ingests.Count, 2);
    const running = before.Leases.find((l) => l.OwnerAlive === true);
    assert.ok(running, 'the running pull’s lease is live');

    const out = await h.ok('system', 'prune', '--all');
    assert.match(out, /Deleted lease: other\//);
    assert.doesNotMatch(out, new RegExp(running.ID), 'the running pull’s lease is kept');
    assert.equal(await layerIngestBytes(h.root, 'other', layer().digest), 0, 'abandoned data reclaimed');
    assert.equal(await layerIngestBytes(h.root, 'default', layer().digest), HOLD_AT, 'live data kept');
    assert.equal(live.p.child.exitCode, null, 'the pull is still running');

    live.release();
    const r = await live.p.exited;
    assert.equal(r.code, 0, live.p.stderr());
    await assertPulledAndVerified(h);
  } finally {
    await h.cleanup();
  }
});

test('lease expiry: a dead pull’s data survives GC until pull_lease_expiry passes, then GC and prune reclaim it', async () => {
  const h = await tempStore();
  const EXPIRY_MS = 4000;
  try {
    // --config: as root the default config file is /etc/hoist/config.toml, not one the test may write.
    const config = join(h.home, 'config.toml');
    await mkdir(h.home, { recursive: true });
    await writeFile(config, `pull_lease_expiry = "${EXPIRY_MS / 1000}s"\n`);
    const { p, release } = await heldPull(h, 'default', ['--config', config]);
    const signalled = Date.now();
    p.child.kill('SIGTERM'); // stops a pull as cleanly as SIGINT
    assert.notEqual((await p.exited).code, 0);
    assert.match(p.stderr(), /run the same pull to resume/);
    const exited = Date.now();
    release();
    const u = await df(h);
    const lease = u.Leases[0] as Df['Leases'][number] & { Expires: string };
    const expires = Date.parse(lease.Expires);
    // Renewed once more as the pull stopped; the label has second precision (rounded down).
    assert.ok(expires >= signalled + EXPIRY_MS - 1000 && expires <= exited + EXPIRY_MS, lease.Expires);

    // GC alone (image prune does not prune leases) keeps an unexpired lease's partial data. Asserted only
    // when the command provably finished before the expiry, so a slow machine cannot make this flaky.
    await h.ok('image', 'prune');
    if (Date.now() < expires)
      assert.equal(await layerIngestBytes(h.root, 'default', layer().digest), HOLD_AT, 'kept until expiry');

    await waitFor(() => Date.now() > expires, 'the lease to expire', EXPIRY_MS + 5000);
    assert.equal((await df(h)).Leases[0]!.Alive, false, 'an expired lease roots nothing');
    await h.ok('image', 'prune');
    assert.equal(await layerIngestBytes(h.root, 'default', layer().digest), 0, 'GC reclaimed the data');

    const out = await h.ok('system', 'prune');
    assert.match(out, new RegExp(`Deleted lease: default/${lease.ID} \\(expired\\)`));
    assert.equal((await df(h)).Leases.length, 0);
    assert.ok(!existsSync(blobPath(h.root, layer().digest)));
  } finally {
    await h.cleanup();
  }
});
