// Pulling through peers (docs/peer-mirror.md): three stores and one upstream registry behind the counting
// proxy. Node A pulls from the upstream; B pulls with A's registry endpoint as a pull-only mirror, C with
// A and B: the upstream serves one copy of the layers, tags still resolve there. A peer killed mid-blob
// leaves the pull to the upstream from the same byte (a Range request, counted); a peer that sends other
// bytes of the right length is refused by digest and the blob comes from the upstream, nothing bad stored.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type CountingProxy, type RequestRecord, startCountingProxy } from '../helpers/counting-proxy.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { type PeerNode, pullVia, startPeerNode, writeHostsDir } from '../helpers/peer-nodes.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const MiB = 1024 * 1024;
let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let ref: string;
let a: PeerNode;
let b: PeerNode | undefined;
const proxies: CountingProxy[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-peers-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: 6 * MiB }, { randomBytes: 2 * MiB }] } },
  ])) as [BuiltEntry];
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.registryHost, { srcTag: 'app' });
  ref = `${reg.host}/team/app:1`;
  a = await startPeerNode();
});

after(async () => {
  for (const p of proxies) p.server.close();
  await a?.served.cleanup();
  await b?.served.cleanup();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const layers = () => image.images[0]!.layers;
const layerBytes = () => layers().reduce((n, l) => n + l.size, 0);
const blobBytes = (rs: RequestRecord[]) =>
  rs.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).reduce((n, r) => n + r.bytes, 0);

/** A counting proxy in front of a peer's endpoint: what it was asked, and a place to cut or fake answers. */
async function inFront(peer: string): Promise<{ proxy: CountingProxy; host: string; seen: RequestRecord[] }> {
  const seen: RequestRecord[] = [];
  const proxy = await startCountingProxy(Number(peer.split(':')[1]), (r) => seen.push(r));
  proxies.push(proxy);
  return { proxy, host: `127.0.0.1:${proxy.port}`, seen };
}

async function storedBlob(root: string, digest: string): Promise<Buffer> {
  return readFile(join(root, 'content', 'blobs', 'sha256', digest.slice(7)));
}

test('A from the upstream, B through A, C through A and B: the upstream serves one copy', {
  timeout: 120_000,
}, async () => {
  reg.resetStats();
  const pa = await a.served.hoist('pull', '--progress', 'plain', ref);
  assert.equal(pa.code, 0, pa.stderr);
  const fromUpstreamA = reg.stats().blobBytes;
  assert.ok(fromUpstreamA >= layerBytes(), `A took the layers from the upstream (${fromUpstreamA})`);

  b = await startPeerNode();
  const frontA = await inFront(a.registry);
  reg.resetStats();
  const hostsB = await writeHostsDir(join(work, 'hosts-b'), reg.host, [frontA.host]);
  const pb = await pullVia(b.served.root, hostsB, ref);
  assert.equal(pb.code, 0, pb.stderr);
  const cRoot = join(work, 'c');
  const hostsC = await writeHostsDir(join(work, 'hosts-c'), reg.host, [frontA.host, b.registry]);
  const pc = await pullVia(cRoot, hostsC, ref);
  assert.equal(pc.code, 0, pc.stderr);

  const upstream = reg.stats();
  assert.equal(blobBytes(upstream.requests), 0, 'B and C took no blob bytes from the upstream');
  // Tags resolve at the upstream (the mirrors are pull-only), never at a peer.
  assert.ok(
    upstream.requests.some((r) => /\/manifests\/1$/.test(r.path)),
    'the tag resolved upstream',
  );
  assert.ok(!frontA.seen.some((r) => /\/manifests\/1(\?|$)/.test(r.path)), 'no tag asked of the peer');
  // containerd's mirror protocol: the peer is told which registry the request is for.
  assert.ok(
    frontA.seen.every(
      (r) => r.path.includes(`ns=${encodeURIComponent(reg.host)}`) || r.path.includes(`ns=${reg.host}`),
    ),
  );
  assert.ok(blobBytes(frontA.seen) >= 2 * layerBytes(), 'both pulls read the layers from A');
  for (const root of [b.served.root, cRoot])
    for (const l of layers()) {
      const bytes = await storedBlob(root, l.digest);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, l.digest);
    }
});

test('a peer killed mid-blob: the pull completes from the upstream at the same offset', {
  timeout: 120_000,
}, async () => {
  assert.ok(b, 'B holds the image (previous test)');
  const big = layers()[0]!;
  const frontB = await inFront(b.registry);
  const holdAt = 3 * MiB;
  const hold = frontB.proxy.holdBlob(big.digest, holdAt);
  const hostsD = await writeHostsDir(join(work, 'hosts-d'), reg.host, [frontB.host]);
  reg.resetStats();
  const dRoot = join(work, 'd');
  const pulling = pullVia(dRoot, hostsD, ref);
  await hold.reached;
  b.served.child.kill('SIGKILL');
  await new Promise((r) => b!.served.child.once('exit', r));
  // The proxy had read ahead of what it passed on; its connections go as B's did (mid-body, no end).
  frontB.proxy.server.closeAllConnections();
  const pd = await pulling;
  assert.equal(pd.code, 0, pd.stderr);
  const up = reg
    .stats()
    .requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${big.digest}`));
  assert.equal(up.length, 1, `one upstream request for the layer: ${JSON.stringify(up)}`);
  const offset = Number(/^bytes=(\d+)-$/.exec(up[0]!.range ?? '')?.[1]);
  assert.equal(offset, holdAt, `resumed at ${up[0]!.range}`);
  assert.equal(up[0]!.bytes, big.size - offset, 'the upstream sent only the rest');
  const stored = await storedBlob(dRoot, big.digest);
  assert.equal(`sha256:${createHash('sha256').update(stored).digest('hex')}`, big.digest);

  // With the peer gone for good (its port refuses), a pull goes straight to the upstream: one try each.
  frontB.proxy.server.close();
  reg.resetStats();
  const started = Date.now();
  const pf = await pullVia(join(work, 'f'), hostsD, ref);
  assert.equal(pf.code, 0, pf.stderr);
  assert.equal(blobBytes(reg.stats().requests) >= layerBytes(), true);
  assert.ok(Date.now() - started < 20_000, `no retry wait for the dead peer (${Date.now() - started} ms)`);
});

test('a peer serving tampered bytes: refused by digest, fetched from the upstream', {
  timeout: 120_000,
}, async () => {
  const big = layers()[0]!;
  const frontA = await inFront(a.registry);
  const forged = Buffer.alloc(big.size, 0x5a);
  frontA.proxy.serve(new RegExp(`/blobs/${big.digest}`), {
    status: 200,
    headers: { 'content-type': 'application/octet-stream', 'docker-content-digest': big.digest },
    body: forged,
  });
  const hostsE = await writeHostsDir(join(work, 'hosts-e'), reg.host, [frontA.host]);
  reg.resetStats();
  const eRoot = join(work, 'e');
  const pe = await pullVia(eRoot, hostsE, ref);
  assert.equal(pe.code, 0, pe.stderr);
  assert.ok(frontA.seen.some((r) => r.path.includes(`/blobs/${big.digest}`) && r.bytes === big.size));
  const up = reg
    .stats()
    .requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${big.digest}`));
  assert.equal(up.length, 1);
  assert.equal(up[0]!.range, undefined, 'from the start');
  assert.equal(up[0]!.bytes, big.size);
  const stored = await storedBlob(eRoot, big.digest);
  assert.equal(`sha256:${createHash('sha256').update(stored).digest('hex')}`, big.digest);
  // The other blobs came from the peer, untouched.
  assert.equal(blobBytes(reg.stats().requests), big.size);
});
