// Plain containerd (1.6) nodes pull through a hoist peer: `ctr images pull --hosts-dir` with hoist's
// registry endpoint as a hosts.toml mirror. Pull-only (capabilities = ["pull"]): the tag resolves at the
// upstream, every blob comes from hoist while the upstream's blobs are unreachable (503). With
// capabilities = ["pull", "resolve"] the upstream may be down altogether: containerd then takes the tag
// from hoist, which is trusting the peer's tag (docs/peer-mirror.md).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { type PeerNode, startPeerNode, writeHostsDir } from '../helpers/peer-nodes.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { startServe } from '../helpers/serve.ts';

const skip = process.getuid?.() === 0 ? false : 'needs root (containerd)';
let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let ref: string;
let a: PeerNode;
let d: Containerd;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-peer-ctr-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: 2 * 1024 * 1024 }] } },
  ])) as [BuiltEntry];
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.registryHost, { srcTag: 'app' });
  ref = `${reg.host}/team/app:1`;
  a = await startPeerNode();
  const pa = await a.served.hoist('pull', '--progress', 'plain', ref);
  assert.equal(pa.code, 0, pa.stderr);
  d = await startContainerd();
});

after(async () => {
  await d?.stop();
  await a?.served.cleanup();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('ctr pulls through hoist while the upstream serves no blob; the tag resolves upstream', {
  skip,
  timeout: 120_000,
}, async () => {
  const undo = reg.serve(/\/blobs\//, { status: 503, body: 'upstream blobs unreachable' });
  try {
    reg.resetStats();
    const hosts = await writeHostsDir(join(work, 'hosts-pull'), reg.host, [a.registry]);
    const r = await d.ctr('images', 'pull', '--hosts-dir', hosts, ref);
    assert.equal(r.code, 0, r.stderr);
    const upstream = reg.stats().requests;
    assert.ok(
      upstream.some((q) => /\/manifests\/1$/.test(q.path)),
      'the tag resolved at the upstream',
    );
    assert.ok(!upstream.some((q) => q.path.includes('/blobs/')), 'no blob was asked of the upstream');
    const listed = await d.ctrOk('images', 'ls', '-q');
    assert.ok(listed.split('\n').includes(ref));
    const content = await d.ctrOk('content', 'ls', '-q');
    for (const l of image.images[0]!.layers) assert.ok(content.includes(l.digest));
    await d.ctrOk('images', 'rm', '--sync', ref);
  } finally {
    undo();
  }
});

test('with "resolve" too, ctr pulls from hoist with the upstream down', {
  skip,
  timeout: 120_000,
}, async () => {
  const down = `127.0.0.1:${await freePort()}`;
  const dir = join(work, 'hosts-resolve');
  await mkdir(join(dir, reg.host), { recursive: true });
  // The upstream's directory names the registry; its server is a port nothing listens on.
  await writeFile(
    join(dir, reg.host, 'hosts.toml'),
    `server = "http://${down}"\n\n[host."http://${a.registry}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
  const r = await d.ctr('images', 'pull', '--hosts-dir', dir, ref);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await d.ctrOk('images', 'ls', '-q')).split('\n').includes(ref));
});

test('hoist serve --containerd serves the store of that containerd to peers', {
  skip,
  timeout: 120_000,
}, async () => {
  // The image ctr pulled above is in containerd's default namespace.
  const front = await startServe({ args: ['--containerd', d.socket, '--registry-address', '127.0.0.1:0'] });
  try {
    const at = /"registry":"(127\.0\.0\.1:\d+)"/.exec(front.log())?.[1];
    assert.ok(at, front.log());
    const head = await fetch(`http://${at}/v2/team/app/manifests/1?ns=${reg.host}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), image.images[0]!.manifest.digest);
    const layer = image.images[0]!.layers[0]!;
    const blob = await fetch(`http://${at}/v2/team/app/blobs/${layer.digest}`, {
      headers: { range: 'bytes=10-' },
    });
    assert.equal(blob.status, 206);
    assert.equal((await blob.arrayBuffer()).byteLength, layer.size - 10);
  } finally {
    await front.cleanup();
  }
});

test("ctr listing only its node's hoist gets the blobs that hoist lacks from a peer (307)", {
  skip,
  timeout: 120_000,
}, async () => {
  // The node-local hoist R has an empty store and knows A as a peer ([peers] static).
  const config = join(work, 'r.toml');
  await writeFile(config, `[peers]\nstatic = ["${a.registry}"]\n`);
  const local = await startServe({
    args: ['--config', config, '--registry-address', '127.0.0.1:0', '--metrics-address', '127.0.0.1:0'],
  });
  // containerd holds none of the image's blobs (the tests above pulled it).
  await d.ctr('images', 'rm', '--sync', ref);
  const before = await d.ctrOk('content', 'ls', '-q');
  for (const l of image.images[0]!.layers) assert.ok(!before.includes(l.digest), 'removed first');
  const undo = reg.serve(/\/blobs\//, { status: 503, body: 'upstream blobs unreachable' });
  try {
    const at = /"registry":"(127\.0\.0\.1:\d+)"/.exec(local.log())?.[1];
    assert.ok(at, local.log());
    reg.resetStats();
    const hosts = await writeHostsDir(join(work, 'hosts-local'), reg.host, [at]);
    const r = await d.ctr('images', 'pull', '--hosts-dir', hosts, ref);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!reg.stats().requests.some((q) => q.path.includes('/blobs/')), 'no blob asked upstream');
    const content = await d.ctrOk('content', 'ls', '-q');
    for (const l of image.images[0]!.layers) assert.ok(content.includes(l.digest));
    // R answered the blobs with redirects (its store is empty), and A sent them.
    const metricsAt = /"metrics":"(127\.0\.0\.1:\d+)"/.exec(local.log())?.[1];
    const metrics = await (await fetch(`http://${metricsAt}/metrics`)).text();
    assert.match(metrics, /hoist_registry_requests_total\{route="blobs",code="307"\} [1-9]/);
    assert.match(metrics, /^hoist_peers 1$/m, 'the one peer it knows');
  } finally {
    undo();
    await local.cleanup();
  }
});
