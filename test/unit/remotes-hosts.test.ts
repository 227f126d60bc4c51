import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { configureHosts, hostMatches } from '../../src/remotes/hosts.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-hosts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function hostsToml(registry: string, text: string): Promise<void> {
  await mkdir(join(dir, registry), { recursive: true });
  await writeFile(join(dir, registry, 'hosts.toml'), text);
}

test('defaults: https upstream, docker.io → registry-1.docker.io, plain HTTP and skip-verify lists', () => {
  const [hub] = configureHosts('docker.io');
  assert.equal(hub?.host, 'registry-1.docker.io');
  assert.equal(hub?.scheme, 'https');
  assert.equal(hub?.path, '/v2');
  assert.deepEqual(hub?.capabilities, ['pull', 'resolve', 'push']);
  const [local] = configureHosts('localhost:5000', {
    plainHttp: ['localhost:5000'],
    insecureSkipVerify: true,
  });
  assert.equal(local?.scheme, 'http');
  assert.equal(local?.tls.skipVerify, true);
  assert.equal(configureHosts('other:5000', { plainHttp: ['localhost:5000'] })[0]?.scheme, 'https');
  assert.equal(hostMatches(['reg.example'], 'reg.example:5000'), true);
  assert.equal(hostMatches(['reg.example:5001'], 'reg.example:5000'), false);
});

test('hosts.toml: mirrors in order, then server; capabilities, headers, ca, skip_verify, override_path', async () => {
  await writeFile(join(dir, 'ca.pem'), 'PEM');
  await hostsToml(
    'docker.io',
    `server = "https://registry-1.docker.io"

[host."https://mirror-a.example"]
  capabilities = ["pull"]
  skip_verify = true
  [host."https://mirror-a.example".header]
    x-one = "1"
    x-many = ["a", "b"]

[host."http://mirror-b.example:8080/custom/api"]
  capabilities = ["pull", "resolve"]
  override_path = true
  ca = "../ca.pem"
`,
  );
  const hosts = configureHosts('docker.io', { hostsDir: dir });
  assert.deepEqual(
    hosts.map((h) => `${h.scheme}://${h.host}${h.path}`),
    [
      'https://mirror-a.example/v2',
      'http://mirror-b.example:8080/custom/api',
      'https://registry-1.docker.io/v2',
    ],
  );
  assert.deepEqual(hosts[0]?.capabilities, ['pull']);
  assert.equal(hosts[0]?.tls.skipVerify, true);
  assert.deepEqual(hosts[0]?.headers, { 'x-one': '1', 'x-many': 'a, b' });
  assert.deepEqual(hosts[1]?.tls.ca, ['PEM']);
  assert.equal(hosts[0]?.mirror, true);
  assert.equal(hosts[2]?.mirror, false);
  assert.deepEqual(hosts[2]?.capabilities, ['pull', 'resolve', 'push']);
});

test('_default/hosts.toml applies to registries without their own directory', async () => {
  await hostsToml('_default', '[host."https://cache.example"]\n');
  const hosts = configureHosts('ghcr.io', { hostsDir: dir });
  assert.deepEqual(
    hosts.map((h) => h.host),
    ['cache.example', 'ghcr.io'],
  );
  await hostsToml('ghcr.io', 'server = "https://ghcr.io"\n');
  assert.deepEqual(
    configureHosts('ghcr.io', { hostsDir: dir }).map((h) => h.host),
    ['ghcr.io'],
  );
});

test('invalid hosts.toml is a HOIST_CONFIG error naming the file', async () => {
  await hostsToml('bad.example', 'server = \n');
  assert.throws(
    () => configureHosts('bad.example', { hostsDir: dir }),
    (err: unknown) =>
      err instanceof HoistError &&
      err.code === 'HOIST_CONFIG' &&
      err.message.includes('bad.example/hosts.toml'),
  );
  await hostsToml('caps.example', '[host."https://m.example"]\ncapabilities = ["fly"]\n');
  assert.throws(
    () => configureHosts('caps.example', { hostsDir: dir }),
    (err: unknown) => err instanceof HoistError && /unknown capability "fly"/.test(err.message),
  );
});

test('hosts.toml: client pairs and single files, dial_timeout, proxy; loopback defaults to HTTPS then HTTP', async () => {
  await writeFile(join(dir, 'c.pem'), 'CERT-AND-KEY');
  await writeFile(join(dir, 'c.crt'), 'CERT');
  await writeFile(join(dir, 'c.key'), 'KEY');
  await hostsToml(
    'reg.example',
    [
      'server = "https://reg.example"',
      `client = [[${JSON.stringify(join(dir, 'c.crt'))}, "../c.key"], ["../c.pem", ""]]`,
      'dial_timeout = "1.5s"',
      '[host."https://mirror.example"]',
      '  client = "../c.pem"',
      '  proxy = "http://proxy.example:3128"',
    ].join('\n'),
  );
  const [mirror, server] = configureHosts('reg.example', { hostsDir: dir });
  assert.deepEqual(mirror?.tls.cert, ['CERT-AND-KEY']);
  assert.deepEqual(mirror?.tls.key, ['CERT-AND-KEY']);
  assert.equal(mirror?.proxy?.host, 'proxy.example:3128');
  assert.equal(mirror?.dialTimeoutMs, undefined);
  assert.deepEqual(server?.tls.cert, ['CERT', 'CERT-AND-KEY']);
  assert.deepEqual(server?.tls.key, ['KEY', 'CERT-AND-KEY']);
  assert.equal(server?.dialTimeoutMs, 1500);
  const [loop] = configureHosts('127.0.0.1:5000');
  assert.equal(loop?.scheme, 'https');
  assert.equal(loop?.httpFallback, true);
  assert.equal(configureHosts('127.0.0.1:5000', { plainHttp: true })[0]?.httpFallback, undefined);
});

test('hosts.toml: an unknown key or a bad value is a HOIST_CONFIG error naming the file and the key', async () => {
  const cases: [string, RegExp][] = [
    ['skip_verfy = true', /unknown key "skip_verfy"/],
    [
      '[host."https://m.example"]\n  server = "https://x"',
      /unknown key "server" in \[host\."https:\/\/m\.example"\]/,
    ],
    ['[host."https://m.example"]\n  dial_timeout = "soon"', /dial_timeout must be a duration/],
    ['client = [["a", "b", "c"]]', /client must be/],
    ['client = "missing.pem"', /cannot read client certificate .*missing\.pem/],
    ['proxy = "socks5://p:1080"', /proxy must be an http:\/\/ URL/],
    ['skip_verify = "yes"', /skip_verify must be true or false/],
  ];
  for (const [text, message] of cases) {
    await hostsToml('bad.example', text);
    assert.throws(
      () => configureHosts('bad.example', { hostsDir: dir }),
      (e: unknown) =>
        e instanceof HoistError &&
        e.code === 'HOIST_CONFIG' &&
        e.message.includes(join(dir, 'bad.example', 'hosts.toml')) &&
        message.test(e.message),
      text,
    );
  }
});
