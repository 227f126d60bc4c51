// The CLI as a client of containerd's API (`--address`): against a real containerd 1.6, a node's image
// stored under the CRI's three names in `k8s.io` shows as one row (`--all`: three), and `rmi <short id>`
// removes all three and containerd collects the blobs before rmi returns; the same against `hoist serve`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tableRows, tempStore } from '../helpers/run-hoist.ts';
import { startServe } from '../helpers/serve.ts';

const isRoot = process.getuid?.() === 0;
const skopeo = async (...args: string[]) => (await promisify(execFile)('skopeo', args)).stdout;
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;
let cli: HoistStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-client-'));
  built = await writeOciLayout(join(dir, 'layout'), [
    { tag: 'v1', image: { layers: [{ 'etc/os-release': 'ID=fixture\n' }, { 'bin/app': 'app\n' }] } },
  ]);
  reg = await startRegistry();
  await pushLayout(join(dir, 'layout'), 'node/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/node/app:v1`;
  cli = await tempStore(); // only its HOME and config: every command below goes through --address
});

after(async () => {
  await cli?.cleanup();
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The CRI's three names for the image (containerd's CRI plugin creates exactly these). */
function criNames(): string[] {
  const img = built[0]!.images[0]!;
  return [ref, `${reg.registryHost}/node/app@${img.manifest.digest}`, img.config.digest];
}

/** Run `fn` against a fresh containerd 1.6 and a fresh hoist serve, one after the other. */
async function onBothDaemons(
  fn: (socket: string, ctr: (...args: string[]) => Promise<string>, which: 'ctrd' | 'hoist') => Promise<void>,
): Promise<void> {
  const d = await startContainerd();
  const srv = await startServe();
  try {
    await fn(d.socket, (...a) => d.ctrOk(...a), 'ctrd');
    await fn(srv.socket, (...a) => srv.ctrOk(...a), 'hoist');
  } finally {
    await srv.cleanup();
    await d.stop();
  }
}

async function checkOneView(socket: string, listNames: () => Promise<string[]>): Promise<void> {
  const hoist = (...args: string[]) => cli.ok('--address', socket, '-n', 'k8s.io', ...args);
  const rows = tableRows(await hoist('images'));
  assert.equal(rows.length, 1, `one row for one image:\n${rows.join('\n')}`);
  assert.equal(rows[0]![0], `${reg.registryHost}/node/app`);
  assert.equal(rows[0]![1], 'v1');
  const all = tableRows(await hoist('images', '--all'));
  assert.equal(all.length, 3, `--all shows every name:\n${all.join('\n')}`);
  const manifest = built[0]!.images[0]!.manifest.digest;
  const out = await hoist('rmi', manifest.slice(7, 19));
  for (const n of criNames()) assert.ok(out.includes(n), `rmi reports ${n}:\n${out}`);
  assert.deepEqual(await listNames(), [], 'every name is gone from the daemon');
}

test('against containerd 1.6: after a CRI pull, its three names are one image; rmi <short id> removes all three, GC done', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  const d = await startContainerd({ cri: true });
  try {
    // A real CRI pull (as the kubelet does) through containerd's own CRI plugin.
    const clients = new TestClients(d.socket);
    try {
      await unary(clients.client(ImageService), 'pullImage', { image: { image: ref } }, new Metadata());
    } finally {
      clients.close();
    }
    const names = async () =>
      (await d.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q')).split('\n').filter(Boolean).sort();
    assert.deepEqual(await names(), [...criNames()].sort(), 'containerd lists three names');
    await checkOneView(d.socket, names);
    // The daemon collected the image's blobs before rmi returned (Delete with sync).
    assert.equal((await d.ctrOk('-n', 'k8s.io', 'content', 'ls', '-q')).trim(), '');
    // Reading works too: inspect through the daemon sees the image's config.
    await d.ctrOk('-n', 'k8s.io', 'content', 'fetch', '--plain-http', ref);
    const inspect = await cli.ok('--address', d.socket, '-n', 'k8s.io', 'image', 'inspect', ref);
    assert.ok(inspect.includes(built[0]!.images[0]!.config.digest), inspect);
    // containerd has no store-maintenance service: system df says so and where to look instead.
    const df = await cli.run('--address', d.socket, 'system', 'df');
    assert.notEqual(df.code, 0);
    assert.match(df.stderr, /no store maintenance service/);
    assert.match(df.stderr, /ctr content ls/);
    // Leases still list there, without the bytes only a usage service could tell.
    const lease = (await d.ctrOk('leases', 'create', '--id', 'from-ctr')).trim();
    const leases = await cli.run('--address', d.socket, 'lease', 'ls');
    assert.equal(leases.code, 0, leases.stderr);
    assert.ok(leases.stdout.includes('from-ctr'), `${lease}\n${leases.stdout}`);
  } finally {
    await d.stop();
  }
});

test('against hoist serve: the same view and the same rmi', async () => {
  const srv = await startServe();
  try {
    await srv.ctrOk('-n', 'k8s.io', 'content', 'fetch', '--plain-http', ref);
    for (const alias of criNames().slice(1)) await srv.ctrOk('-n', 'k8s.io', 'images', 'tag', ref, alias);
    const names = async () =>
      (await srv.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q')).split('\n').filter(Boolean).sort();
    await checkOneView(srv.socket, names);
  } finally {
    await srv.cleanup();
  }
});

test('an unreachable address: one clear error', async () => {
  const r = await cli.run('--address', join(dir, 'nothing.sock'), 'images');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the containerd API at .*nothing\.sock/);
});

test('pull through --address fetches client-side, writes and unpacks through the daemon (containerd 1.6, hoist serve)', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  await onBothDaemons(async (socket, ctr) => {
    const out = await cli.run(
      '--address',
      socket,
      'pull',
      '--plain-http',
      '--unpack=false',
      '--progress',
      'plain',
      ref,
    );
    assert.equal(out.code, 0, out.stderr);
    const check = await ctr('images', 'check');
    assert.match(check.split('\n').find((l) => l.startsWith(ref)) ?? '', /\scomplete\s/, check);
    // A second pull finds everything there ("exists"), as ctr does.
    const again = await cli.run(
      '--address',
      socket,
      'pull',
      '--plain-http',
      '--unpack=false',
      '--progress',
      'plain',
      ref,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /0 fetched/);
    // With unpack (the default): Prepare, Diff.Apply on the daemon, Commit — as ctr does.
    const unpack = await cli.run('--address', socket, 'pull', '--plain-http', '--snapshotter', 'native', ref);
    assert.equal(unpack.code, 0, unpack.stderr);
    const unpacked = await ctr('images', 'check', '--snapshotter', 'native');
    assert.match(unpacked.split('\n').find((l) => l.startsWith(ref)) ?? '', /complete.*\strue\s*$/, unpacked);
    const checked = await cli.run('--address', socket, 'image', 'check', ref);
    assert.match(checked.stdout, /native=true/, checked.stderr);
  });
});

test('on a store a live hoist serve owns, the CLI goes through the daemon (df, check, prune too); after it stops, the store again', async () => {
  const srv = await startServe();
  try {
    await srv.ctrOk('content', 'fetch', '--plain-http', ref);
    const listed = await srv.hoist('images');
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(tableRows(listed.stdout).length, 1);
    // Maintenance runs in the daemon (it knows which writes are live): df, check and prune.
    const usage = async () => {
      const r = await srv.hoist('system', 'df', '-v', '--format', 'json');
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { Images: number; Blobs: { Files: number } };
    };
    const before = await usage();
    assert.equal(before.Images, 1);
    assert.ok(before.Blobs.Files >= 3, JSON.stringify(before));
    const check = await srv.hoist('system', 'check');
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /Checked 1 images, .*The store is consistent\./s);
    const pruned = await srv.hoist('system', 'prune', '--all');
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.ok(pruned.stdout.includes(`Untagged: ${ref}`), pruned.stdout);
    assert.equal((await usage()).Blobs.Files, 0, 'the daemon collected the pruned image');
    assert.equal((await srv.ctrOk('content', 'ls', '-q')).trim(), '');
    assert.equal(await srv.stop(), 0);
    const after = await srv.hoist('system', 'df');
    assert.equal(after.code, 0, after.stderr);
  } finally {
    await srv.cleanup();
  }
});

test('snapshot prepare and commit through --address (containerd 1.6 and hoist serve): Diff.Diff on the daemon', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  await onBothDaemons(async (socket, ctr, which) => {
    const h = (...a: string[]) => cli.ok('--address', socket, ...a);
    await h('pull', '--plain-http', '--snapshotter', 'native', ref);
    const work = (await h('snapshot', '--snapshotter', 'native', 'prepare', 'work', '--from', ref)).trim();
    await writeFile(join(work, 'etc', 'committed.txt'), 'through the daemon\n');
    const out = await h('commit', '--snapshotter', 'native', '-m', 'via daemon', 'work', 'local/committed:1');
    assert.match(out, /docker\.io\/local\/committed:1 sha256:[0-9a-f]{64}/);
    const check = await ctr('images', 'check', '--snapshotter', 'native');
    assert.match(
      check.split('\n').find((l) => l.startsWith('docker.io/local/committed:1')) ?? '',
      /complete.*\strue\s*$/,
      check,
    );
    const plain = join(dir, `committed-${which}`);
    await h('image', 'unpack', 'local/committed:1', '--to', plain);
    assert.equal(await readFile(join(plain, 'etc', 'committed.txt'), 'utf8'), 'through the daemon\n');
    assert.equal(await readFile(join(plain, 'etc', 'os-release'), 'utf8'), 'ID=fixture\n');
  });
});

test('save, load, convert, push and inspect through --address (hoist serve)', async () => {
  const srv = await startServe();
  try {
    const h = (...a: string[]) => cli.ok('--address', srv.socket, ...a);
    await h('pull', '--plain-http', '--unpack=false', ref);
    const tar = join(dir, 'through-daemon.tar');
    await h('save', '-o', tar, ref);
    await h('-n', 'other', 'load', '--unpack=false', '-i', tar);
    assert.ok(
      (await srv.ctrOk('-n', 'other', 'images', 'ls', '-q')).includes(ref),
      'loaded through the daemon',
    );
    await h('image', 'convert', '--zstd', ref, 'local/zstd:1');
    assert.match(await h('image', 'check', 'local/zstd:1'), /\scomplete\s/);
    await h('tag', 'local/zstd:1', `${reg.registryHost}/node/zstd:1`);
    await h('push', '--plain-http', `${reg.registryHost}/node/zstd:1`);
    // The registry holds the zstd image the daemon converted: skopeo reads its manifest.
    const raw = JSON.parse(
      await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.registryHost}/node/zstd:1`),
    ) as { layers: { mediaType: string }[] };
    assert.ok(raw.layers.length > 0);
    for (const l of raw.layers) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  } finally {
    await srv.cleanup();
  }
});
