// Peer discovery's parts without a network: the rendezvous ranking and its cap, the discovery's cache
// (a failed source keeps its last good answer, this node is left out, the list is looked up again only
// when stale), the EndpointSlice list as the API documents it, the [peers] config table, and which
// addresses are this node.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { selfMatcher } from '../../src/hoist/peers.ts';
import { PeerDiscovery } from '../../src/remotes/peers/discovery.ts';
import { peersOfEndpointSlices } from '../../src/remotes/peers/kubernetes.ts';
import { rankPeers } from '../../src/remotes/peers/rendezvous.ts';
import type { PeerSource } from '../../src/remotes/peers/source.ts';

const peers = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:5050`);
const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

test('rendezvous ranking: capped, the same on every node, spread over the peers, stable as peers come and go', () => {
  const ranked = rankPeers(peers, digest(1), 3);
  assert.equal(ranked.length, 3);
  assert.equal(new Set(ranked).size, 3);
  // Order of the input does not matter: every node ranks the same way.
  assert.deepEqual(rankPeers([...peers].reverse(), digest(1), 3), ranked);
  assert.deepEqual(rankPeers(peers, digest(1), 0), []);
  assert.equal(rankPeers(['a:1', 'a:1'], digest(1), 3).length, 1, 'duplicates once');
  // Spread: over 1000 blobs each peer is ranked first for some, none for most.
  const first = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const top = rankPeers(peers, digest(i), 1)[0]!;
    first.set(top, (first.get(top) ?? 0) + 1);
  }
  assert.equal(first.size, peers.length, 'every peer is first for some blobs');
  for (const n of first.values()) assert.ok(n > 40 && n < 200, `a fair share (${n} of 1000)`);
  // A peer leaving moves only the blobs it ranked first.
  const gone = peers[3]!;
  for (let i = 0; i < 200; i++) {
    const before = rankPeers(peers, digest(i), 1)[0];
    const after = rankPeers(
      peers.filter((p) => p !== gone),
      digest(i),
      1,
    )[0];
    if (before !== gone) assert.equal(after, before);
  }
});

function source(answers: (string[] | Error)[]): PeerSource & { calls: number } {
  const s = {
    description: 'test source',
    calls: 0,
    async discover() {
      const a = answers[Math.min(s.calls++, answers.length - 1)]!;
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return s;
}

test('discovery: a union of the sources, this node left out, a failed source keeps its last answer', async () => {
  const dns = source([['10.0.0.1:5050', '10.0.0.2:5050'], new Error('SERVFAIL'), ['10.0.0.3:5050']]);
  const fixed = source([['10.0.0.9:5050', '10.0.0.1:5050']]);
  const warnings: string[] = [];
  const changes: (readonly string[])[] = [];
  const d = new PeerDiscovery({
    sources: [dns, fixed],
    registries: ['docker.io'],
    refreshMs: 60_000,
    maxPerBlob: 2,
    isSelf: (a) => a === '10.0.0.2:5050',
    dialTimeoutMs: 1500,
    onWarning: (m) => warnings.push(m),
    onChange: (p) => changes.push(p),
  });
  assert.deepEqual(await d.peers(), ['10.0.0.1:5050', '10.0.0.9:5050']);
  // Not stale yet: no second lookup.
  await d.peers();
  assert.equal(dns.calls, 1);
  await d.refresh();
  assert.deepEqual(await d.peers(), ['10.0.0.1:5050', '10.0.0.9:5050'], 'the last good answer kept');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /test source: SERVFAIL; keeping the 2 peers found before/);
  await d.refresh();
  assert.deepEqual(await d.peers(), ['10.0.0.1:5050', '10.0.0.3:5050', '10.0.0.9:5050']);
  assert.equal(changes.length, 2, 'told when the list changed, not on every lookup');

  assert.deepEqual(await d.forBlob('ghcr.io', digest(1)), [], 'a registry the peers do not mirror');
  const hosts = await d.forBlob('docker.io', digest(1));
  assert.equal(hosts.length, 2, 'capped');
  for (const h of hosts) {
    assert.deepEqual(h.capabilities, ['pull'], 'pull-only: tags resolve upstream');
    assert.equal(h.mirror, true);
    assert.equal(h.registry, 'docker.io');
    assert.equal(h.scheme, 'http');
    assert.equal(h.dialTimeoutMs, 1500);
  }
});

test('discovery: a first lookup that fails gives no peers and a warning, not an error', async () => {
  const warnings: string[] = [];
  const d = new PeerDiscovery({
    sources: [source([new Error('ENOTFOUND')])],
    registries: ['*'],
    refreshMs: 60_000,
    maxPerBlob: 3,
    isSelf: () => false,
    onWarning: (m) => warnings.push(m),
  });
  assert.deepEqual(await d.forBlob('example.com', digest(2)), []);
  assert.match(warnings[0]!, /ENOTFOUND; no peers from it for now/);
});

test('discovery: a lookup that hangs does not hold the first pull past firstLookupMs', async () => {
  const d = new PeerDiscovery({
    sources: [{ description: 'hangs', discover: () => new Promise(() => undefined) }],
    registries: ['*'],
    refreshMs: 60_000,
    maxPerBlob: 3,
    isSelf: () => false,
    firstLookupMs: 50,
    onWarning: () => undefined,
  });
  assert.deepEqual(await d.peers(), []);
});

test('EndpointSlices: ready endpoints of IP slices, the named port, this node left out', () => {
  // discovery.k8s.io/v1 EndpointSliceList as the API server returns it (nil lists as null).
  const list = {
    kind: 'EndpointSliceList',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: { resourceVersion: '1234' },
    items: [
      {
        metadata: { name: 'hoist-peers-abcde', namespace: 'kube-system' },
        addressType: 'IPv4',
        endpoints: [
          {
            addresses: ['10.1.0.1'],
            conditions: { ready: true, serving: true, terminating: false },
            nodeName: 'n1',
          },
          {
            addresses: ['10.1.0.2'],
            conditions: { ready: false, serving: false, terminating: true },
            nodeName: 'n2',
          },
          { addresses: ['10.1.0.3'], conditions: {}, nodeName: 'n3' },
          { addresses: ['10.1.0.4'], conditions: { ready: true }, nodeName: 'self' },
        ],
        ports: [
          { name: 'metrics', protocol: 'TCP', port: 9464 },
          { name: 'registry', protocol: 'TCP', port: 5050 },
        ],
      },
      {
        metadata: { name: 'hoist-peers-v6' },
        addressType: 'IPv6',
        endpoints: [{ addresses: ['fd00::5'], conditions: { ready: true } }],
        ports: [{ name: 'registry', protocol: 'TCP', port: 5050 }],
      },
      { metadata: { name: 'empty' }, addressType: 'IPv4', endpoints: null, ports: null },
      {
        metadata: { name: 'fqdn' },
        addressType: 'FQDN',
        endpoints: [{ addresses: ['x.example'] }],
        ports: [],
      },
    ],
  };
  const opts = {
    namespace: 'kube-system',
    service: 'hoist-peers',
    portName: 'registry',
    tokenFile: '',
    caFile: '',
    nodeName: 'self',
    timeoutMs: 1000,
  };
  assert.deepEqual(peersOfEndpointSlices(list, opts), ['10.1.0.1:5050', '10.1.0.3:5050', '[fd00::5]:5050']);
  assert.throws(() => peersOfEndpointSlices({ kind: 'Status' }, opts), /without an EndpointSlice list/);
});

async function withConfig(text: string, fn: (path: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-peers-cfg-'));
  try {
    await writeFile(join(dir, 'config.toml'), text);
    fn(join(dir, 'config.toml'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('[peers]: defaults, values, and what does not go together', async () => {
  const d = loadConfig({ env: {}, isRoot: true }).peers;
  assert.deepEqual(d.static, []);
  assert.deepEqual(d.registries, ['*']);
  assert.equal(d.max_per_blob, 3);
  assert.equal(d.refresh, '30s');
  assert.equal(d.kubernetes_token_file, '/var/run/secrets/kubernetes.io/serviceaccount/token');
  await withConfig(
    '[peers]\nstatic = ["10.0.0.2:5050", "[fd00::2]:5050"]\ndns = "hoist-peers.kube-system.svc.cluster.local"\nport = 5050\nkubernetes_service = "kube-system/hoist-peers"\nregistries = ["docker.io"]\nrefresh = "10s"\n',
    (path) => {
      const p = loadConfig({ path, env: {}, isRoot: true }).peers;
      assert.deepEqual(p.static, ['10.0.0.2:5050', '[fd00::2]:5050']);
      assert.equal(p.port, 5050);
      assert.equal(p.kubernetes_service, 'kube-system/hoist-peers');
      assert.deepEqual(p.registries, ['docker.io']);
    },
  );
  const bad: [string, RegExp][] = [
    ['[peers]\nstatic = ["10.0.0.2"]\n', /peers.static: "10.0.0.2" is not host:port/],
    ['[peers]\nstatic = [":5050"]\n', /is not host:port/],
    ['[peers]\ndns = "x.example"\n', /peers.dns needs peers.port/],
    ['[peers]\nport = 70000\n', /port number/],
    ['[peers]\nkubernetes_service = "hoist-peers"\n', /<namespace>\/<service>/],
    ['[peers]\nkubernetes_api = "http://10.96.0.1"\n', /https:\/\//],
    ['[peers]\nrefresh = "0s"\n', /peers.refresh must be longer than 0/],
    [
      '[peers]\ndns_sever = "10.96.0.10"\n',
      /unknown key "peers.dns_sever" \(did you mean "peers.dns_server"\?\)/,
    ],
  ];
  for (const [text, message] of bad)
    await withConfig(text, (path) => {
      assert.throws(() => loadConfig({ path, env: {}, isRoot: true }), message, text);
    });
});

test('this node among the peers: its registry address, or its host addresses at the peers port', () => {
  const exact = selfMatcher('127.0.0.3:5050', undefined);
  assert.equal(exact('127.0.0.3:5050'), true);
  assert.equal(exact('127.0.0.2:5050'), false);
  assert.equal(exact('127.0.0.3:5051'), false);
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
  const wildcard = selfMatcher(':5050', undefined);
  assert.equal(wildcard('127.0.0.1:5050'), true, 'a wildcard address is every host address');
  if (external) {
    assert.equal(wildcard(`${external}:5050`), true);
    const byPort = selfMatcher(undefined, 5050);
    assert.equal(byPort(`${external}:5050`), true, 'a hostNetwork pod is listed under the node address');
    assert.equal(byPort(`${external}:5051`), false);
    assert.equal(byPort('127.0.0.1:5050'), false, 'loopback is never found by discovery for this node');
  }
});
