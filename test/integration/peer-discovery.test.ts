// Peers found through DNS, the way a DaemonSet's headless Service publishes them (docs/peer-mirror.md):
// a real DNS server (dnsmasq) answers `peers.test` with 127.0.0.2 and 127.0.0.3, where two hoist serve
// daemons listen on the SAME registry port (127/8 is all loopback: the shape of pods behind a headless
// Service), and `_registry._tcp.peers.test` with an SRV record naming A's host and port. Node A pulls from
// the upstream registry; B, configured with only `[peers] dns = …` and no hosts.toml, pulls through A
// (leaving itself out): the upstream serves the tag's manifest but no second copy of the blobs, and A's
// metrics count what its endpoint sent. A daemon's CRI pull goes through the SRV record; a static list
// works the same; a name that does not resolve costs a warning, not the pull.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { type DnsServer, startDnsmasq } from '../helpers/dnsmasq.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.ts';
import { type RequestRecord, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { MAIN, NODE } from '../helpers/run-hoist.ts';
import { type CommandResult, type ServedStore, startServe } from '../helpers/serve.ts';

const MiB = 1024 * 1024;
let work: string;
let reg: TestRegistry;
let dns: DnsServer;
let image: BuiltEntry;
let ref: string;
/** The registry port every node listens on, each on its own loopback address. */
let port: number;
let a: ServedStore;
const daemons: ServedStore[] = [];

async function freePortOn(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const { port: p } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return p;
}

function metricsPort(node: ServedStore): number {
  const p = Number(/"metrics":"127\.0\.0\.1:(\d+)"/.exec(node.log())?.[1]);
  assert.ok(p > 0, `the serving line names the metrics address: ${node.log()}`);
  return p;
}

function scrape(node: ServedStore) {
  return new Promise<ReturnType<typeof parsePrometheusText>>((resolve, reject) => {
    request({ host: '127.0.0.1', port: metricsPort(node), path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(parsePrometheusText(body)));
    })
      .on('error', reject)
      .end();
  });
}

/** A config file: no hosts.toml anywhere (an empty certs.d), plus the given TOML. */
async function config(name: string, toml: string): Promise<string> {
  const certs = join(work, `${name}-certs.d`);
  await mkdir(certs, { recursive: true });
  const file = join(work, `${name}.toml`);
  await writeFile(file, `snapshotter = "native"\n[registry]\nconfig_path = "${certs}"\n${toml}`);
  return file;
}

/** `hoist --root <root> --config <file> pull <ref>` in a process of its own. */
function pull(root: string, configFile: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'HOIST_ADDRESS', 'HOIST_NAMESPACE']) delete env[k];
    execFile(
      NODE,
      [MAIN, '--root', root, '--config', configFile, 'pull', '--progress', 'plain', ref],
      { env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const layerBytes = () => image.images[0]!.layers.reduce((n, l) => n + l.size, 0);
const blobBytes = (rs: RequestRecord[]) =>
  rs.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).reduce((n, r) => n + r.bytes, 0);

/** The upstream was asked for the tag (peers are pull-only) and sent no blob. */
function assertOnlyTagsUpstream(what: string): void {
  const upstream = reg.stats().requests;
  assert.equal(blobBytes(upstream), 0, `${what}: no blob bytes from the upstream`);
  assert.ok(
    upstream.some((r) => /\/manifests\/1$/.test(r.path)),
    `${what}: the tag resolved upstream`,
  );
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-peer-discovery-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: 3 * MiB }, { randomBytes: MiB }] } },
  ])) as [BuiltEntry];
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.registryHost, { srcTag: 'app' });
  ref = `${reg.host}/team/app:1`;
  port = await freePortOn('127.0.0.2');
  dns = await startDnsmasq({
    hosts: { 'peers.test': ['127.0.0.2', '127.0.0.3'], 'a.peers.test': ['127.0.0.2'] },
    srv: [{ name: '_registry._tcp.peers.test', target: 'a.peers.test', port }],
  });
  a = await startServe({
    args: ['--registry-address', `127.0.0.2:${port}`, '--metrics-address', '127.0.0.1:0'],
  });
  daemons.push(a);
  const pa = await a.hoist('pull', '--progress', 'plain', ref);
  assert.equal(pa.code, 0, pa.stderr);
});

after(async () => {
  for (const d of daemons) await d.cleanup();
  await dns?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('B, with only [peers] dns and no hosts.toml, pulls through A: the upstream sends no blob twice', {
  timeout: 120_000,
}, async () => {
  // B listens on the same port as A, on the other address the name resolves to: itself.
  const b = await startServe({
    args: ['--registry-address', `127.0.0.3:${port}`, '--metrics-address', '127.0.0.1:0'],
  });
  daemons.push(b);
  const cfg = await config(
    'b',
    `[serve]\nregistry_address = "127.0.0.3:${port}"\n[peers]\ndns = "peers.test"\ndns_server = "${dns.server}"\nport = ${port}\n`,
  );
  const sentBefore = sampleValue(await scrape(a), 'hoist_registry_sent_bytes_total', { route: 'blobs' }) ?? 0;
  reg.resetStats();
  const pb = await b.hoist('--config', cfg, 'pull', '--progress', 'plain', ref);
  assert.equal(pb.code, 0, pb.stderr);
  assert.doesNotMatch(pb.stderr, /warning/);
  assertOnlyTagsUpstream('B');

  const fromA = await scrape(a);
  const sent = sampleValue(fromA, 'hoist_registry_sent_bytes_total', { route: 'blobs' })! - sentBefore;
  assert.ok(sent >= layerBytes(), `A's endpoint sent the layers (${sent} bytes)`);
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
  const cfg = await config(
    'c',
    `[peers]\ndns = "peers.test"\ndns_server = "${dns.server}"\nport_name = "registry"\n`,
  );
  const c = await startServe({ args: ['--config', cfg] });
  daemons.push(c);
  const clients = new TestClients(c.socket);
  try {
    reg.resetStats();
    const cri = clients.client(ImageService);
    await unary(cri, 'pullImage', { image: { image: ref } }, new Metadata());
    assertOnlyTagsUpstream('the CRI pull');
    assert.match(c.log(), new RegExp(`"msg":"peers","peers":\\["127\\.0\\.0\\.2:${port}"\\]`));
  } finally {
    clients.close();
  }
});

test('a static list of peers', { timeout: 120_000 }, async () => {
  const cfg = await config('d', `[peers]\nstatic = ["127.0.0.2:${port}"]\nregistries = ["${reg.host}"]\n`);
  reg.resetStats();
  const pd = await pull(join(work, 'd'), cfg);
  assert.equal(pd.code, 0, pd.stderr);
  assertOnlyTagsUpstream('D');
});

test('a name that does not resolve: a warning, and the pull from the upstream', {
  timeout: 120_000,
}, async () => {
  const cfg = await config(
    'e',
    `[peers]\ndns = "nowhere.test"\ndns_server = "${dns.server}"\nport = ${port}\n`,
  );
  reg.resetStats();
  const pe = await pull(join(work, 'e'), cfg);
  assert.equal(pe.code, 0, pe.stderr);
  assert.match(pe.stderr, /warning: peer discovery: dns nowhere\.test: .*no peers from it for now/);
  assert.ok(blobBytes(reg.stats().requests) >= layerBytes(), 'the layers came from the upstream');
});
