// Peers found through DNS, the way a DaemonSet's headless Service publishes them (docs/peer-mirror.md):
// a real DNS server (dnsmasq) answers `peers.test` with 127.0.0.2 and 127.0.0.3, where two hoist serve
// daemons listen on the SAME registry port (127/8 is all loopback: the shape of pods behind a headless
// Service), and `_registry._tcp.peers.test` with an SRV record naming A's host and port. Node A pulls from
// the upstream registry; B, configured with only `[peers] dns = …` and no hosts.toml, pulls through A
// (leaving itself out): the upstream serves the tag's manifest but no second copy of the blobs, and A's
// metrics count what its endpoint sent. A daemon's CRI pull goes through the SRV record; a static list
// works the same; a name that does not resolve costs a warning, not the pull.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { type DnsServer, startDnsmasq } from '../helpers/dnsmasq.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { pullVia, writeHostsDir } from '../helpers/peer-nodes.ts';
import { blobBytes, type PeerSite, scrape, startPeerSite } from '../helpers/peer-site.ts';
import { sampleValue } from '../helpers/prom-text.ts';

let site: PeerSite;
let dns: DnsServer;

before(async () => {
  site = await startPeerSite();
  dns = await startDnsmasq({
    hosts: { 'peers.test': ['127.0.0.2', '127.0.0.3'], 'a.peers.test': ['127.0.0.2'] },
    srv: [{ name: '_registry._tcp.peers.test', target: 'a.peers.test', port: site.port }],
  });
});

after(async () => {
  await dns?.stop();
  await site?.close();
});

test('B, with only [peers] dns and no hosts.toml, pulls through A: the upstream sends no blob twice', {
  timeout: 120_000,
}, async () => {
  const { a, port, reg } = site;
  // B listens on the same port as A, on the other address the name resolves to: itself.
  const b = await site.startNode([
    '--registry-address',
    `127.0.0.3:${port}`,
    '--metrics-address',
    '127.0.0.1:0',
  ]);
  const cfg = await site.config(
    'b',
    `[serve]\nregistry_address = "127.0.0.3:${port}"\n[peers]\ndns = "peers.test"\ndns_server = "${dns.server}"\nport = ${port}\n`,
  );
  const sentBefore = sampleValue(await scrape(a), 'hoist_registry_sent_bytes_total', { route: 'blobs' }) ?? 0;
  reg.resetStats();
  const pb = await b.hoist('--config', cfg, 'pull', '--progress', 'plain', site.ref);
  assert.equal(pb.code, 0, pb.stderr);
  assert.doesNotMatch(pb.stderr, /warning/);
  site.assertOnlyTagsUpstream('B');

  const fromA = await scrape(a);
  const sent = sampleValue(fromA, 'hoist_registry_sent_bytes_total', { route: 'blobs' })! - sentBefore;
  assert.ok(sent >= site.layerBytes, `A's endpoint sent the layers (${sent} bytes)`);
  assert.ok(sampleValue(fromA, 'hoist_registry_requests_total', { route: 'blobs', code: '200' })! >= 3);
  // B left itself out of the peers: its own endpoint was never asked.
  const fromB = await scrape(b);
  assert.equal(sampleValue(fromB, 'hoist_registry_requests_total', { route: 'blobs', code: '200' }), 0);
  assert.equal(
    sampleValue(fromB, 'hoist_registry_requests_total', { route: 'blobs', code: '404' }),
    undefined,
  );
});

test("a daemon's CRI pull goes through the peers of an SRV record", { timeout: 120_000 }, async () => {
  const cfg = await site.config(
    'c',
    `[peers]\ndns = "peers.test"\ndns_server = "${dns.server}"\nport_name = "registry"\n`,
  );
  const c = await site.startNode(['--config', cfg]);
  const clients = new TestClients(c.socket);
  try {
    site.reg.resetStats();
    const cri = clients.client(ImageService);
    await unary(cri, 'pullImage', { image: { image: site.ref } }, new Metadata());
    site.assertOnlyTagsUpstream('the CRI pull');
    assert.match(c.log(), new RegExp(`"msg":"peers","peers":\\["127\\.0\\.0\\.2:${site.port}"\\]`));
  } finally {
    clients.close();
  }
});

test('a static list of peers', { timeout: 120_000 }, async () => {
  const cfg = await site.config(
    'd',
    `[peers]\nstatic = ["127.0.0.2:${site.port}"]\nregistries = ["${site.reg.host}"]\n`,
  );
  site.reg.resetStats();
  const pd = await site.pull(join(site.work, 'd'), cfg);
  assert.equal(pd.code, 0, pd.stderr);
  site.assertOnlyTagsUpstream('D');
});

test('a name that does not resolve: a warning, and the pull from the upstream', {
  timeout: 120_000,
}, async () => {
  const cfg = await site.config(
    'e',
    `[peers]\ndns = "nowhere.test"\ndns_server = "${dns.server}"\nport = ${site.port}\n`,
  );
  site.reg.resetStats();
  const pe = await site.pull(join(site.work, 'e'), cfg);
  assert.equal(pe.code, 0, pe.stderr);
  assert.match(pe.stderr, /level=warn msg="peer discovery: dns nowhere\.test: .*no peers from it for now/);
  assert.ok(blobBytes(site.reg.stats().requests) >= site.layerBytes, 'the layers came from the upstream');
});

test('an endpoint redirects a blob it lacks to a peer that has it: a pull listing only that endpoint gets peer bytes', {
  timeout: 120_000,
}, async () => {
  const { port, reg } = site;
  // R knows two peers: A, and an address where nothing listens (its probe fails at once).
  const cfg = await site.config('r', `[peers]\nstatic = ["127.0.0.2:${port}", "127.0.0.7:${port}"]\n`);
  await site.startNode(['--config', cfg, '--registry-address', `127.0.0.6:${port}`]);
  const r = `127.0.0.6:${port}`;
  const layer = site.layers[0]!;
  const ns = `ns=${encodeURIComponent(reg.host)}`;
  const res = await fetch(`http://${r}/v2/team/app/blobs/${layer.digest}?${ns}`, { redirect: 'manual' });
  assert.equal(res.status, 307);
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.host, `127.0.0.2:${port}`);
  assert.equal(location.pathname, `/v2/team/app/blobs/${layer.digest}`);
  assert.equal(location.searchParams.get('ns'), reg.host);
  assert.equal(location.searchParams.get('redirected'), '1', 'A never redirects it again');
  // A blob no peer has is a 404 at once, with no redirect.
  const missing = `sha256:${'0'.repeat(64)}`;
  const none = await fetch(`http://${r}/v2/team/app/blobs/${missing}?${ns}`, { redirect: 'manual' });
  assert.equal(none.status, 404);

  // A client whose hosts.toml lists only R (a plain containerd and its node-local hoist): no blob upstream.
  const hostsDir = await writeHostsDir(join(site.work, 'hosts-r'), reg.host, [r]);
  reg.resetStats();
  const pulled = await pullVia(join(site.work, 'behind-r'), hostsDir, site.ref);
  assert.equal(pulled.code, 0, pulled.stderr);
  site.assertOnlyTagsUpstream('the pull through R');
});
