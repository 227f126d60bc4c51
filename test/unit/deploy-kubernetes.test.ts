// deploy/kubernetes: the ConfigMap in hoist.yaml holds exactly deploy/kubernetes/config.toml, which hoist's
// config loader accepts with the settings the manifest relies on, and the manifest's parts agree with it
// (the Service's port name is the one peer discovery looks for, the registry port is the one the pods
// expose, the Role lets the service account list EndpointSlices). The YAML is read only as far as that
// needs (block scalar and a few keys), without a YAML library.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseTcpAddress } from '../../src/config/config.ts';

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes');
const manifest = readFileSync(join(DIR, 'hoist.yaml'), 'utf8');
const documents = manifest.split(/^---$/m);

function documentOf(kind: string): string {
  const found = documents.filter((d) => new RegExp(`^kind: ${kind}$`, 'm').test(d));
  assert.equal(found.length, 1, `one ${kind} in hoist.yaml`);
  return found[0]!;
}

/** The literal block scalar under `<key>: |`: its lines, less their indentation, up to a less indented one. */
function blockScalar(doc: string, key: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trimEnd().endsWith(`${key}: |`));
  assert.ok(start >= 0, `${key}: | in the document`);
  const keyIndent = lines[start]!.search(/\S/);
  const body = lines.slice(start + 1);
  const indent = body.find((l) => l.trim() !== '')!.search(/\S/);
  assert.ok(indent > keyIndent);
  const out: string[] = [];
  for (const l of body) {
    if (l.trim() !== '' && l.search(/\S/) < indent) break;
    out.push(l.slice(indent));
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}

test("the ConfigMap's config.toml is deploy/kubernetes/config.toml, and hoist loads it", () => {
  const file = join(DIR, 'config.toml');
  assert.equal(blockScalar(documentOf('ConfigMap'), 'config.toml'), readFileSync(file, 'utf8'));
  const config = loadConfig({ path: file, env: {}, isRoot: true });
  assert.equal(config.containerd_address, '/run/containerd/containerd.sock');
  assert.deepEqual(config.serve.registry_namespaces, ['k8s.io']);
  assert.equal(config.peers.kubernetes_service, 'kube-system/hoist-peers');
  assert.equal(config.peers.port_name, 'registry');
});

test("the manifest's parts agree with the config", () => {
  const config = loadConfig({ path: join(DIR, 'config.toml'), env: {}, isRoot: true });
  const registryPort = parseTcpAddress(config.serve.registry_address!).port;
  const [namespace, service] = config.peers.kubernetes_service!.split('/');

  const svc = documentOf('Service');
  assert.match(svc, new RegExp(`^  name: ${service}$\\n^  namespace: ${namespace}$`, 'm'));
  assert.match(svc, /^ {2}clusterIP: None$/m, 'headless');
  assert.match(svc, new RegExp(`- name: ${config.peers.port_name}\\n\\s+port: ${registryPort}\\n`));

  const ds = documentOf('DaemonSet');
  assert.match(ds, new RegExp(`- name: ${config.peers.port_name}\\n\\s+containerPort: ${registryPort}\\n`));
  assert.match(ds, /^ {6}hostNetwork: true$/m);
  assert.match(ds, /^ {6}serviceAccountName: hoist$/m);
  assert.match(ds, /args: \["--config", "\/etc\/hoist\/config.toml", "serve"\]/);
  assert.match(ds, /mountPath: \/etc\/hoist\n/);

  const role = documentOf('Role');
  assert.match(role, new RegExp(`^  namespace: ${namespace}$`, 'm'));
  assert.match(
    role,
    /apiGroups: \["discovery.k8s.io"\]\n\s+resources: \["endpointslices"\]\n\s+verbs: \[.*"list".*\]/,
  );
  assert.match(documentOf('RoleBinding'), /kind: ServiceAccount\n\s+name: hoist\n/);
});
