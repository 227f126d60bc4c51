// `hoist serve` driven by the real ctr (containerd 1.6.20 from Debian): version, plugins, namespaces,
// content (ingest, resume, get, label, fetch from a real registry), images (created by ctr's fetch,
// listed, tagged, labelled, removed), leases, events, error codes, and the daemon's socket life cycle.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CTR } from '../helpers/containerd.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { MAIN, NODE } from '../helpers/run-hoist.ts';
import { ctrWithFile, ctrWithInput, type ServedStore, startServe } from '../helpers/serve.ts';

let reg: TestRegistry;
let work: string;
let built: BuiltEntry[];
let srv: ServedStore;

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** ctr's tab-separated tables: data rows split on runs of whitespace. */
const rows = (out: string) =>
  out
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s+/));

/** `hoist serve` in `dir` that is expected to exit by itself. */
function runServe(dir: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      NODE,
      [MAIN, '--root', join(dir, 'root'), 'serve', '--address', join(dir, 'hoist.sock')],
      { timeout: 30_000 },
      (err, _stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr }),
    );
  });
}

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-serve-ctr-'));
  built = await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ 'etc/app': 'app\n' }, { randomBytes: 200_000 }] } },
  ]);
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.host, { srcTag: 'app' });
  srv = await startServe({ args: ['--log-level', 'debug'] });
});

after(async () => {
  await srv?.stop();
  await srv?.cleanup();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

test('ctr version and plugins ls talk to hoist serve', async () => {
  const out = await srv.ctrOk('version');
  assert.match(
    out,
    /Server:\n\s+Version:\s+1\.6\.20\+hoist\.\S+\n\s+Revision:\s+hoist-\S+\n\s+UUID: [0-9a-f-]{36}\n/,
  );
  const uuid = /UUID: (\S+)/.exec(out)![1];
  assert.match(await srv.ctrOk('version'), new RegExp(`UUID: ${uuid}`), 'the UUID is stable');

  const plugins = rows(await srv.ctrOk('plugins', 'ls'));
  const find = (type: string, id: string) => plugins.find((r) => r[0] === type && r[1] === id);
  const expected: [string, string][] = [
    ['io.containerd.content.v1', 'content'],
    ['io.containerd.snapshotter.v1', 'overlayfs'],
    ['io.containerd.snapshotter.v1', 'native'],
    ['io.containerd.grpc.v1', 'content'],
    ['io.containerd.grpc.v1', 'images'],
    ['io.containerd.grpc.v1', 'leases'],
    ['io.containerd.grpc.v1', 'namespaces'],
  ];
  for (const [type, id] of expected) assert.equal(find(type, id)?.at(-1), 'ok', `${type} ${id} listed as ok`);
  const snapshotters = rows(await srv.ctrOk('plugins', 'ls', 'type==io.containerd.snapshotter.v1'));
  assert.deepEqual(snapshotters.map((r) => r[1]).sort(), ['native', 'overlayfs']);
});

test('ctr namespaces ls|create|label|rm', async () => {
  await srv.ctrOk('namespaces', 'create', 'team-a', 'owner=alice', 'tier=gold');
  let ls = rows(await srv.ctrOk('namespaces', 'ls'));
  assert.deepEqual(
    ls.find((r) => r[0] === 'team-a'),
    ['team-a', 'owner=alice,tier=gold'],
  );
  await srv.ctrOk('namespaces', 'label', 'team-a', 'owner=bob', 'tier=');
  ls = rows(await srv.ctrOk('namespaces', 'ls'));
  assert.deepEqual(
    ls.find((r) => r[0] === 'team-a'),
    ['team-a', 'owner=bob'],
  );
  assert.ok((await srv.ctrOk('namespaces', 'ls', '-q')).split('\n').includes('team-a'));

  const dup = await srv.ctr('namespaces', 'create', 'team-a');
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /namespace "team-a": already exists/);

  // A namespace that still holds content cannot go.
  const blob = randomBytes(1000);
  await ctrWithInput(srv.socket, blob, '-n', 'team-a', 'content', 'ingest', 'keep');
  const busy = await srv.ctr('namespaces', 'rm', 'team-a');
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /namespace "team-a" must be empty.*failed precondition/);
  await srv.ctrOk('-n', 'team-a', 'content', 'rm', sha(blob));
  await srv.ctrOk('namespaces', 'rm', 'team-a');
  assert.ok(!(await srv.ctrOk('namespaces', 'ls', '-q')).split('\n').includes('team-a'));
});

test('ctr content ingest|ls|get|label|active|rm, with an interrupted ingest resumed', async () => {
  const ns = ['-n', 'content-test'];
  const blob = randomBytes(3 * 1024 * 1024 + 123);
  const d = sha(blob);
  const size = String(blob.length);

  // An interrupted ingest: ctr sends 1 MiB, then its commit fails on the size; the bytes stay.
  const partial = await ctrWithInput(
    srv.socket,
    blob.subarray(0, 1024 * 1024),
    ...ns,
    'content',
    'ingest',
    '--expected-size',
    size,
    '--expected-digest',
    d,
    'blob-1',
  );
  assert.notEqual(partial.code, 0);
  const active = rows(await srv.ctrOk(...ns, 'content', 'active'));
  assert.equal(active.length, 1);
  assert.equal(active[0]![0], 'blob-1');
  assert.equal(active[0]![1], '1.049MB', 'ctr shows the 1 MiB written so far');

  const file = join(srv.dir, 'blob');
  await writeFile(file, blob);
  const resumed = await ctrWithFile(
    srv.socket,
    file,
    ...ns,
    'content',
    'ingest',
    '--expected-size',
    size,
    '--expected-digest',
    d,
    'blob-1',
  );
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(rows(await srv.ctrOk(...ns, 'content', 'active')).length, 0);
  assert.match(srv.log(), /"msg":"ingest opened","namespace":"content-test","ref":"blob-1","offset":1048576/);

  const ls = rows(await srv.ctrOk(...ns, 'content', 'ls'));
  assert.deepEqual(
    ls.map((r) => r[0]),
    [d],
  );
  const got = await srv.ctr(...ns, 'content', 'get', d);
  assert.equal(got.code, 0);
  assert.equal(sha(Buffer.from(got.stdout, 'latin1')), d, 'content get returns the same bytes');

  await srv.ctrOk(...ns, 'content', 'label', d, 'example.com/a=1', 'example.com/b=2');
  const labelsOf = async () =>
    rows(await srv.ctrOk(...ns, 'content', 'ls'))[0]!
      .at(-1)!
      .split(',')
      .sort();
  assert.deepEqual(await labelsOf(), ['example.com/a=1', 'example.com/b=2']);
  // ctr sets the keys it is given (labels.<key> field paths); an empty value removes one.
  await srv.ctrOk(...ns, 'content', 'label', d, 'example.com/a=3', 'example.com/b=');
  assert.deepEqual(await labelsOf(), ['example.com/a=3']);

  // Ingesting it again is "already exists", which ctr treats as success.
  const again = await ctrWithInput(
    srv.socket,
    blob,
    ...ns,
    'content',
    'ingest',
    '--expected-digest',
    d,
    'blob-2',
  );
  assert.equal(again.code, 0, again.stderr);

  await srv.ctrOk(...ns, 'content', 'rm', d);
  assert.equal(rows(await srv.ctrOk(...ns, 'content', 'ls')).length, 0);
  const missing = await srv.ctr(...ns, 'content', 'get', d);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not found/);
});

test('ctr content fetch --plain-http creates the image; images ls|tag|label|rm work on it', async () => {
  const ns = ['-n', 'images-test'];
  const ref = `${reg.host}/team/app:1`;
  const app = built[0]!;
  await srv.ctrOk(...ns, 'content', 'fetch', '--plain-http', ref);

  let images = rows(await srv.ctrOk(...ns, 'images', 'ls'));
  assert.equal(images.length, 1);
  assert.equal(images[0]![0], ref);
  assert.equal(images[0]![1], 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(images[0]![2], app.top.digest);
  assert.match(images[0]![5] ?? '', /^linux\//, 'ctr read the config through Content.Read for PLATFORMS');

  // Every blob is in the namespace, with the GC references ctr set on the manifest.
  const content = await srv.ctrOk(...ns, 'content', 'ls');
  for (const blob of [app.top, app.images[0]!.config, ...app.images[0]!.layers])
    assert.match(content, new RegExp(blob.digest), `${blob.digest} fetched`);
  assert.match(content, /containerd\.io\/gc\.ref\.content\.config=/);
  assert.match(content, /containerd\.io\/gc\.ref\.content\.l\.0=/);
  assert.match(content, /containerd\.io\/distribution\.source\./);

  await srv.ctrOk(...ns, 'images', 'tag', ref, 'example.com/app:stable');
  const dup = await srv.ctr(...ns, 'images', 'tag', ref, 'example.com/app:stable');
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /already exists/);
  await srv.ctrOk(...ns, 'images', 'label', 'example.com/app:stable', 'team=a');
  images = rows(await srv.ctrOk(...ns, 'images', 'ls'));
  assert.deepEqual(images.map((r) => r[0]).sort(), ['example.com/app:stable', ref].sort());
  assert.equal(images.find((r) => r[0] === 'example.com/app:stable')![2], app.top.digest);
  assert.deepEqual((await srv.ctrOk(...ns, 'images', 'ls', '-q', 'labels.team==a')).trim().split('\n'), [
    'example.com/app:stable',
  ]);

  // The hoist CLI on the same store (embedded, while the daemon runs) sees the same records.
  const hoistImages = await srv.hoist('-n', 'images-test', 'images', '--all');
  assert.equal(hoistImages.code, 0, hoistImages.stderr);
  assert.match(hoistImages.stdout, /example\.com\/app\s+stable/);
  assert.match(hoistImages.stdout, new RegExp(`${reg.host}/team/app\\s+1`));

  await srv.ctrOk(...ns, 'images', 'rm', 'example.com/app:stable');
  const gone = await srv.ctr(...ns, 'images', 'rm', 'example.com/app:stable');
  assert.equal(gone.code, 0, 'ctr images rm of a missing image warns and exits 0');
  assert.match(gone.stderr, /not found/);
  await srv.ctrOk(...ns, 'images', 'rm', '--sync', ref);
  assert.equal(rows(await srv.ctrOk(...ns, 'images', 'ls')).length, 0);
  assert.equal(
    rows(await srv.ctrOk(...ns, 'content', 'ls')).length,
    0,
    'the sync delete collected the blobs',
  );
});

test('ctr images export, then import --no-unpack into an emptied namespace, round-trips the image', async () => {
  const ns = ['-n', 'export-test'];
  const ref = `${reg.host}/team/app:1`;
  const app = built[0]!;
  await srv.ctrOk(...ns, 'content', 'fetch', '--plain-http', ref);
  const tar = join(work, 'app.tar');
  await srv.ctrOk(...ns, 'images', 'export', tar, ref);
  await srv.ctrOk(...ns, 'images', 'rm', '--sync', ref);
  assert.equal(rows(await srv.ctrOk(...ns, 'content', 'ls')).length, 0);

  await srv.ctrOk(...ns, 'images', 'import', '--no-unpack', tar);
  const images = rows(await srv.ctrOk(...ns, 'images', 'ls'));
  assert.deepEqual(
    images.map((r) => [r[0], r[2]]),
    [[ref, app.top.digest]],
  );
  const config = await srv.ctr(...ns, 'content', 'get', app.images[0]!.config.digest);
  assert.equal(Buffer.from(config.stdout, 'latin1').toString(), app.images[0]!.config.bytes.toString());
});

test('ctr leases ls|create|rm', async () => {
  const ns = ['-n', 'lease-test'];
  const out = await srv.ctrOk(...ns, 'leases', 'create', '--id', 'my-lease', 'purpose=test');
  assert.match(out, /my-lease/);
  await srv.ctrOk(...ns, 'leases', 'create', '--expires', '1h');
  const ls = rows(await srv.ctrOk(...ns, 'leases', 'ls'));
  assert.equal(ls.length, 2);
  const mine = ls.find((r) => r[0] === 'my-lease');
  assert.ok(mine, 'lease with the given id listed');
  assert.match(mine.join(' '), /purpose=test/);
  assert.match(mine.join(' '), /containerd\.io\/gc\.expire=/, 'ctr adds an expiry by default');
  assert.deepEqual((await srv.ctrOk(...ns, 'leases', 'ls', '-q', 'id==my-lease')).trim().split('\n'), [
    'my-lease',
  ]);
  const dup = await srv.ctr(...ns, 'leases', 'create', '--id', 'my-lease');
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /already exists/);
  await srv.ctrOk(...ns, 'leases', 'rm', '--sync', 'my-lease');
  const missing = await srv.ctr(...ns, 'leases', 'rm', 'my-lease');
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not found/);
  assert.equal(rows(await srv.ctrOk(...ns, 'leases', 'ls')).length, 1);
});

test('bad requests get containerd codes: no namespace, unknown services', async () => {
  const noNs = await srv.ctr('-n', '', 'images', 'ls');
  assert.notEqual(noNs.code, 0);
  assert.match(noNs.stderr, /: namespace is required: failed precondition$/m);
  const unknown = await srv.ctr('containers', 'ls');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /Containers\/List: not implemented/);
});

test('ctr events streams namespace, image and snapshot events', async () => {
  const events = spawn(CTR, ['--address', srv.socket, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  events.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    // ctr subscribes asynchronously: create namespaces until one shows up, then the subscription is live.
    for (let i = 0; !out.includes('/namespaces/create'); i++) {
      assert.ok(i < 200, 'ctr events never showed an event');
      await srv.ctrOk('namespaces', 'create', `events-probe-${i}`);
    }
    const ns = ['-n', 'events-test'];
    await srv.ctrOk(...ns, 'content', 'fetch', '--plain-http', `${reg.host}/team/app:1`);
    await srv.ctrOk(...ns, 'images', 'tag', `${reg.host}/team/app:1`, 'example.com/ev:1');
    await srv.ctrOk(...ns, 'images', 'rm', 'example.com/ev:1');
    await srv.ctrOk(...ns, 'snapshots', 'prepare', 'ev-snap');
    await srv.ctrOk(...ns, 'snapshots', 'rm', 'ev-snap');
    for (let i = 0; !out.includes('example.com/ev:1') || !out.includes('/snapshot/remove'); i++) {
      assert.ok(i < 200, `events missing from: ${out}`);
      await srv.ctrOk('version');
    }
    const lines = out.split('\n');
    const line = (topic: string, name: string) => lines.find((l) => l.includes(topic) && l.includes(name));
    assert.ok(line('/images/create', 'example.com/ev:1'), out);
    assert.ok(line('/images/delete', 'example.com/ev:1'), out);
    assert.match(line('/images/create', 'example.com/ev:1')!, /events-test/);
    assert.ok(line('/snapshot/prepare', 'ev-snap'), out);
    assert.ok(line('/snapshot/remove', 'ev-snap'), out);
  } finally {
    events.kill('SIGTERM');
  }
});

test('the daemon refuses a socket a live server holds, replaces a stale one, and stops cleanly on SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-serve-life-'));
  try {
    // A live listener (here not even hoist): refused, and its socket is left alone.
    const other = createServer(() => undefined);
    const path = join(dir, 'hoist.sock');
    await new Promise<void>((resolve) => other.listen(path, resolve));
    try {
      const refused = await runServe(dir);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /another server is already listening on .*hoist\.sock/);
      assert.ok((await stat(path)).isSocket());
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
    // A stale socket: its listener died without removing it (killed with SIGKILL).
    const stale = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await new Promise((resolve) => stale.once('exit', resolve));
    assert.ok((await stat(path)).isSocket(), 'a stale socket is left behind');

    const s = await startServe({ dir });
    try {
      assert.match(s.log(), /removed stale socket/);
      assert.equal(((await stat(path)).mode & 0o777).toString(8), '660');
      const uuid = /UUID: (\S+)/.exec(await s.ctrOk('version'))![1];
      assert.equal(await s.stop(), 0, 'exit code 0 after SIGTERM');
      assert.match(s.log(), /"msg":"stopped"/);
      await assert.rejects(stat(path), { code: 'ENOENT' }, 'the socket is removed on stop');

      // Restarted on the same store: same UUID.
      const again = await startServe({ dir });
      try {
        assert.match(await again.ctrOk('version'), new RegExp(`UUID: ${uuid}`));
        assert.equal(await again.stop(), 0);
      } finally {
        await again.cleanup();
      }
    } finally {
      await s.cleanup();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
