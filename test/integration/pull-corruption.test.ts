// Bad data from a registry: a blob whose bytes do not match its digest, a manifest that is not JSON, a
// schema 1 manifest, and a registry that is not there. Each is one clear error, a non-zero exit, no image,
// nothing committed under a wrong digest, and a store that still works afterwards.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import {
  blobPath,
  fileDigest,
  ingestDir,
  layerIngestBytes,
  spawnHoist,
  waitFor,
} from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, type RunResult, tempStore } from '../helpers/run-hoist.ts';

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-corruption-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ 'etc/a': 'a\n' }, { randomBytes: 2 * 1024 * 1024 }] } },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'bad/blob:1', reg.host, { srcTag: 'app' });
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

/** One `hoist: …` line (plus an optional hint), no stack trace. */
function assertCleanFailure(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, 'non-zero exit');
  assert.match(r.stderr, /^hoist: /m);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const lines = r.stderr.split('\n').filter((l) => /^hoist: /.test(l));
  assert.equal(lines.length, 1, `one error line:\n${r.stderr}`);
}

async function assertNoImages(h: HoistStore): Promise<void> {
  assert.equal((await h.ok('images', '-q', '--all')).trim(), '', 'no image name was created');
}

test('a corrupt blob from the registry: the pull fails naming the digest, nothing is stored; fixed, it pulls', async () => {
  const h = await tempStore();
  const name = `${reg.host}/bad/blob:1`;
  const layer = image.images[0]!.layers[1]!;
  try {
    await reg.corruptBlob(layer.digest);
    const r = await h.run('pull', '--plain-http', '-q', name);
    assertCleanFailure(r, new RegExp(`digest mismatch: expected ${layer.digest}, got sha256:[0-9a-f]{64}`));
    assert.ok(!existsSync(blobPath(h.root, layer.digest)), 'nothing committed under that digest');
    const db = new DatabaseSync(join(h.root, 'metadata.db'), { readOnly: true });
    try {
      const row = db.prepare('SELECT count(*) AS n FROM content WHERE digest = ?').get(layer.digest);
      assert.equal((row as { n: number }).n, 0, 'no content record for that digest');
    } finally {
      db.close();
    }
    await assertNoImages(h);
    const df = JSON.parse(await h.ok('system', 'df', '-v', '--format', 'json')) as {
      Ingests: { Count: number };
    };
    assert.equal(df.Ingests.Count, 0, 'the bad bytes are not kept for a resume');

    await reg.corruptBlob(layer.digest); // flips the same byte back
    await h.ok('pull', '--plain-http', '-q', name);
    assert.equal(await fileDigest(blobPath(h.root, layer.digest)), layer.digest);
    const img = JSON.parse(await h.ok('image', 'inspect', name))[0] as { Id: string };
    assert.equal(img.Id, image.top.digest);
    const after = JSON.parse(await h.ok('system', 'df', '-v', '--format', 'json')) as { Leases: unknown[] };
    assert.deepEqual(after.Leases, [], 'the failed pull’s lease went with the pull that finished it');
  } finally {
    await h.cleanup();
  }
});

test('a partial download damaged on disk: the resumed pull fails verification, starts over and succeeds', async () => {
  const h = await tempStore();
  const name = `${reg.host}/bad/blob:1`;
  const layer = image.images[0]!.layers[1]!;
  const held = 1024 * 1024;
  try {
    const hold = reg.holdBlob(layer.digest, held);
    const p = spawnHoist(h, 'pull', '--plain-http', '-q', name);
    await hold.reached;
    await waitFor(
      async () => (await layerIngestBytes(h.root, 'default', layer.digest)) === held,
      'held bytes',
    );
    p.child.kill('SIGINT');
    assert.equal((await p.exited).code, 130, p.stderr());
    hold.release();
    // Flip one byte of the partial data, as a crash or a bad disk would.
    const data = join(ingestDir(h.root, 'default', `layer-${layer.digest}`), 'data');
    const fh = await open(data, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 1000);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, 1000);
    await fh.close();

    reg.resetStats();
    await h.ok('pull', '--plain-http', '-q', name);
    const gets = reg
      .stats()
      .requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${layer.digest}`));
    assert.deepEqual(
      gets.map((g) => g.range),
      [`bytes=${held}-`, undefined],
      'resumed, then fetched whole once the resumed bytes failed verification',
    );
    assert.equal(await fileDigest(blobPath(h.root, layer.digest)), layer.digest);
  } finally {
    await h.cleanup();
  }
});

/** Serve a manifest document the registry itself would refuse to store, under `repo:1` and its digest. */
function serveManifest(repo: string, body: string, mediaType: string): () => void {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  return reg.serve(new RegExp(`^/v2/${repo}/manifests/`), {
    status: 200,
    headers: { 'content-type': mediaType, 'docker-content-digest': digest },
    body,
  });
}

test('a manifest that is not JSON: a clear error, no image', async () => {
  const h = await tempStore();
  const stop = serveManifest(
    'bad/json',
    '{"schemaVersion": 2, "config": ',
    'application/vnd.oci.image.manifest.v1+json',
  );
  try {
    const r = await h.run('pull', '--plain-http', `${reg.host}/bad/json:1`);
    assertCleanFailure(r, /manifest/i);
    assert.match(r.stderr, /JSON|malformed|invalid/i);
    await assertNoImages(h);
  } finally {
    stop();
    await h.cleanup();
  }
});

test('a Docker schema 1 manifest is refused with a clear message, no image', async () => {
  const h = await tempStore();
  const schema1 = JSON.stringify({
    schemaVersion: 1,
    name: 'bad/schema1',
    tag: '1',
    architecture: 'amd64',
    fsLayers: [{ blobSum: image.images[0]!.layers[0]!.digest }],
    history: [{ v1Compatibility: '{}' }],
    signatures: [],
  });
  const stop = serveManifest(
    'bad/schema1',
    schema1,
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
  );
  try {
    const r = await h.run('pull', '--plain-http', `${reg.host}/bad/schema1:1`);
    assertCleanFailure(r, /schema 1 .* is not supported/);
    await assertNoImages(h);
  } finally {
    stop();
    await h.cleanup();
  }
});

test('an unreachable registry: a clear error after a bounded number of attempts', async () => {
  const h = await tempStore();
  // A port that accepts and immediately resets every connection: counts how often hoist tries.
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const reset = await h.run('pull', '--plain-http', `127.0.0.1:${port}/app/x:1`);
    assertCleanFailure(reset, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.ok(connections >= 1, 'it tried');
    assert.ok(connections <= 10, `bounded retries (${connections} connections)`);
    await assertNoImages(h);

    // Nothing listening at all.
    const closed = await freePort();
    const refused = await h.run('pull', '--plain-http', `127.0.0.1:${closed}/app/x:1`);
    assertCleanFailure(refused, new RegExp(`127\\.0\\.0\\.1:${closed}`));
    assert.match(refused.stderr, /refused|unreachable|connect/i);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h.cleanup();
  }
});
