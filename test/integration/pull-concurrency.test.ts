// Two hoist processes pulling the same image into the same store at the same time: both succeed, every
// blob crosses the network once (the second process waits for the first one's download), and nothing is
// left behind: no partial ingest, no writer lock, no lease.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import { blobPath, fileDigest, layerIngestBytes, spawnHoist, waitFor } from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';

const BIG_LAYER = 16 * 1024 * 1024;

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let name: string;

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-concurrency-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'app',
      image: {
        layers: [{ 'etc/a': 'a\n' }, { randomBytes: BIG_LAYER }, { randomBytes: 300_000, path: 'small.bin' }],
      },
    },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'conc/app:1', reg.host, { srcTag: 'app' });
  name = `${reg.host}/conc/app:1`;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const blobs = () => [image.images[0]!.config, ...image.images[0]!.layers];

/** Successful GETs of each config and layer blob since the last resetStats(). */
function downloadsPerBlob(): Map<string, number> {
  const counts = new Map(blobs().map((b) => [b.digest, 0]));
  for (const r of reg.stats().requests) {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(r.path);
    if (r.method === 'GET' && m && r.status >= 200 && r.status < 300 && counts.has(m[1]!))
      counts.set(m[1]!, counts.get(m[1]!)! + 1);
  }
  return counts;
}

/** The image is there, every blob verifies, and no ingest, lock or lease is left. */
async function assertCleanStore(h: HoistStore): Promise<void> {
  const img = JSON.parse(await h.ok('image', 'inspect', name))[0] as { Id: string };
  assert.equal(img.Id, image.top.digest);
  for (const b of [...blobs(), image.top])
    assert.equal(await fileDigest(blobPath(h.root, b.digest)), b.digest);
  const df = JSON.parse(await h.ok('system', 'df', '-v', '--format', 'json')) as {
    Ingests: { Count: number };
    Leases: unknown[];
  };
  assert.equal(df.Ingests.Count, 0, 'no partial ingest');
  assert.deepEqual(df.Leases, [], 'both pulls released their leases');
  assert.deepEqual(await readdir(join(h.root, 'content', 'ingest')), [], 'no ingest directory');
  // Writer locks are not shown by any command; read the table directly.
  const db = new DatabaseSync(join(h.root, 'metadata.db'), { readOnly: true });
  try {
    const row = db.prepare('SELECT count(*) AS n FROM ingest_locks').get() as { n: number };
    assert.equal(row.n, 0, 'no writer lock left');
  } finally {
    db.close();
  }
}

test('a pull started while another downloads the same layer waits for it, then both succeed', async () => {
  const h = await tempStore();
  try {
    reg.resetStats();
    const big = image.images[0]!.layers[1]!;
    const hold = reg.holdBlob(big.digest, 4 * 1024 * 1024);
    const first = spawnHoist(h, 'pull', '--plain-http', '--progress', 'plain', name);
    await hold.reached;
    const second = spawnHoist(h, 'pull', '--plain-http', '--progress', 'plain', name);
    // Event, not time: the second process reports it is waiting for the first one's download.
    await waitFor(
      () => /another pull is fetching it/.test(second.stderr()) || second.child.exitCode !== null,
      'the second pull to wait',
    );
    hold.release();
    const [a, b] = await Promise.all([first.exited, second.exited]);
    assert.equal(a.code, 0, first.stderr());
    assert.equal(b.code, 0, second.stderr());
    assert.match(second.stderr(), /waiting \(another pull is fetching it\)/);
    for (const [d, n] of downloadsPerBlob()) assert.equal(n, 1, `${d} downloaded once`);
    await assertCleanStore(h);
  } finally {
    await h.cleanup();
  }
});

test('two pulls started together both succeed and download each blob once', async () => {
  const h = await tempStore();
  try {
    reg.resetStats();
    const procs = [1, 2].map(() => spawnHoist(h, 'pull', '--plain-http', '--progress', 'plain', name));
    const results = await Promise.all(procs.map((p) => p.exited));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, procs[i]!.stderr());
    });
    for (const [d, n] of downloadsPerBlob()) assert.equal(n, 1, `${d} downloaded once`);
    await assertCleanStore(h);
    assert.equal((await h.ok('images', '-q')).trim().split('\n').length, 1, 'one image');
  } finally {
    await h.cleanup();
  }
});

test('the waiting pull takes over when the downloading one is killed, resuming its partial layer', async () => {
  const h = await tempStore();
  try {
    reg.resetStats();
    const big = image.images[0]!.layers[1]!;
    const held = 4 * 1024 * 1024;
    const hold = reg.holdBlob(big.digest, held);
    const first = spawnHoist(h, 'pull', '--plain-http', '--progress', 'plain', name);
    await hold.reached;
    await waitFor(async () => (await layerIngestBytes(h.root, 'default', big.digest)) === held, 'held bytes');
    const second = spawnHoist(h, 'pull', '--plain-http', '--progress', 'plain', name);
    await waitFor(
      () => /another pull is fetching it/.test(second.stderr()) || second.child.exitCode !== null,
      'the second pull to wait',
    );
    hold.release(); // the second pull's own request must not be held
    first.child.kill('SIGKILL');
    await first.exited;
    const r = await second.exited;
    assert.equal(r.code, 0, second.stderr());
    const gets = reg
      .stats()
      .requests.filter(
        (q) => q.method === 'GET' && q.path.endsWith(`/blobs/${big.digest}`) && q.status < 300,
      );
    assert.equal(gets.length, 2, 'the killed download and the resumed one');
    assert.equal(gets[1]!.range, `bytes=${held}-`, 'the second process resumed the first one’s ingest');
    assert.equal(gets[1]!.bytes, big.size - held);
    // The killed pull's lease is superseded by the finished pull of the same reference.
    await assertCleanStore(h);
  } finally {
    await h.cleanup();
  }
});
