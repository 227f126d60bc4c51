// Peers from a Service's EndpointSlices, read from the Kubernetes API as a pod's service account does:
// over HTTPS verified against the given CA, with the bearer token. The API server is a small HTTPS server
// answering EndpointSliceLists as discovery.k8s.io/v1 documents them (no kube-apiserver runs offline).
// Node A (ready, on another node) serves the pull; an endpoint that is not ready and this node's own
// endpoint are never asked (each is a listener counting connections); the upstream sends no blob.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type FakeKubeApi, startFakeKubeApi } from '../helpers/fake-kube-api.ts';
import { type PeerSite, startPeerSite } from '../helpers/peer-site.ts';

let site: PeerSite;
let api: FakeKubeApi;
const listeners: Server[] = [];

/** A listener on `host:port` that counts the connections made to it (none may be). */
async function counting(host: string, port: number): Promise<{ connections: () => number }> {
  let n = 0;
  const srv = createServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => srv.listen(port, host, resolve));
  listeners.push(srv);
  return { connections: () => n };
}

before(async () => {
  site = await startPeerSite();
  api = await startFakeKubeApi();
});

after(async () => {
  for (const l of listeners) l.close();
  await api?.close();
  await site?.close();
});

test('only ready endpoints of other nodes are asked, and the service account token is sent', {
  timeout: 120_000,
}, async () => {
  const { port } = site;
  const notReady = await counting('127.0.0.4', port);
  const self = await counting('127.0.0.5', port);
  api.setSlices('kube-system/hoist-peers', [
    {
      portName: 'registry',
      port,
      endpoints: [
        {
          addresses: ['127.0.0.2'],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: 'node-a',
        },
        {
          addresses: ['127.0.0.4'],
          conditions: { ready: false, serving: false, terminating: true },
          nodeName: 'node-c',
        },
      ],
    },
    {
      portName: 'registry',
      port,
      endpoints: [{ addresses: ['127.0.0.5'], conditions: { ready: true }, nodeName: 'node-b' }],
    },
  ]);
  const cfg = await site.config(
    'k8s',
    [
      '[peers]',
      'kubernetes_service = "kube-system/hoist-peers"',
      `kubernetes_api = "${api.url}"`,
      `kubernetes_token_file = "${api.tokenFile}"`,
      `kubernetes_ca_file = "${api.caFile}"`,
      'port_name = "registry"',
      'node_name = "node-b"',
      '',
    ].join('\n'),
  );
  site.reg.resetStats();
  const pulled = await site.pull(join(site.work, 'b'), cfg);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.doesNotMatch(pulled.stderr, /warning/);
  site.assertOnlyTagsUpstream('B');

  assert.ok(api.requests.length >= 1);
  for (const r of api.requests) {
    assert.equal(r.authorization, `Bearer ${api.token}`, 'the token, trimmed of its newline');
    assert.equal(r.status, 200);
    assert.equal(
      r.path,
      '/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dhoist-peers',
    );
  }
  assert.equal(notReady.connections(), 0, 'the endpoint that is not ready was not asked');
  assert.equal(self.connections(), 0, "this node's own endpoint was not asked");
});

test('a wrong token: the API refuses, a warning, and the pull from the upstream', {
  timeout: 120_000,
}, async () => {
  const wrongToken = join(site.work, 'wrong-token');
  await writeFile(wrongToken, 'not-the-token');
  const cfg = await site.config(
    'k8s-wrong',
    [
      '[peers]',
      'kubernetes_service = "kube-system/hoist-peers"',
      `kubernetes_api = "${api.url}"`,
      `kubernetes_token_file = "${wrongToken}"`,
      `kubernetes_ca_file = "${api.caFile}"`,
      'port_name = "registry"',
      '',
    ].join('\n'),
  );
  const pulled = await site.pull(join(site.work, 'c'), cfg);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(
    pulled.stderr,
    /level=warn msg="peer discovery: kubernetes service kube-system\/hoist-peers: .*401/,
  );
});
