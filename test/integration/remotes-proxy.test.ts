// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (and their lowercase names): the registry client tunnels HTTPS with
// CONNECT and sends plain HTTP as absolute-URI requests through the proxy, and goes direct for NO_PROXY's
// hosts, domains, ports and `*`. The registries are named `*.test`, which only the proxy can resolve.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { proxyFor } from '../../src/remotes/proxy.ts';
import { type ForwardProxy, startForwardProxy } from '../helpers/forward-proxy.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { MAIN, NODE, type RunResult } from '../helpers/run-hoist.ts';
import { makeCa } from '../helpers/tls-certs.ts';

let plain: TestRegistry;
let secure: TestRegistry;
let proxy: ForwardProxy;
let work: string;
let env: NodeJS.ProcessEnv;
const PLAIN = 'plain.registry.test:5000';
const SECURE = 'secure.registry.test:5443';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-proxy-'));
  const ca = await makeCa(work);
  const server = await ca.issue('secure.registry.test', { dns: ['secure.registry.test'] });
  [plain, secure] = await Promise.all([startRegistry(), startRegistry({ tls: server })]);
  proxy = await startForwardProxy({ [PLAIN]: plain.host, [SECURE]: secure.host });
  const layout = join(work, 'layout');
  await writeOciLayout(layout, [{ tag: 'v1', image: { layers: [{ 'etc/proxied': 'yes\n' }] } }]);
  await Promise.all([
    pushLayout(layout, 'p/app:v1', plain.host),
    pushLayout(layout, 'p/app:v1', secure.host),
  ]);
  // The CA for the TLS registry, the containerd way.
  const certs = join(work, 'certs.d');
  await mkdir(join(certs, SECURE), { recursive: true });
  await writeFile(
    join(certs, SECURE, 'hosts.toml'),
    `server = "https://${SECURE}"\nca = ${JSON.stringify(ca.cert)}\n`,
  );
  env = { ...process.env, HOME: join(work, 'home'), XDG_CONFIG_HOME: join(work, 'home', '.config') };
  for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'HOIST_NAMESPACE', 'HOIST_ADDRESS', 'CONTAINERD_ADDRESS'])
    delete env[k];
  for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'])
    delete env[k];
  env.HOIST_ROOT = join(work, 'root');
});

after(async () => {
  await Promise.all([plain?.stop(), secure?.stop(), proxy?.close()]);
  await rm(work, { recursive: true, force: true });
});

function hoist(extra: NodeJS.ProcessEnv, ...args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(NODE, [MAIN, ...args], { env: { ...env, ...extra } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('NO_PROXY: hosts, domain suffixes, ports, *; lowercase first; loopback never proxied', () => {
  const p = 'http://proxy.example:3128';
  const url = new URL('https://registry.example.com:5000/v2/');
  const via = (e: NodeJS.ProcessEnv, u = url) => proxyFor(u, e)?.host;
  assert.equal(via({ HTTPS_PROXY: p }), 'proxy.example:3128');
  assert.equal(via({ HTTP_PROXY: p }), undefined, 'an https registry uses HTTPS_PROXY only');
  assert.equal(via({ HTTP_PROXY: p }, new URL('http://registry.example.com/v2/')), 'proxy.example:3128');
  assert.equal(via({ https_proxy: 'http://lower:1', HTTPS_PROXY: p }), 'lower:1');
  for (const bypass of [
    'registry.example.com',
    'example.com',
    '.example.com',
    '*.example.com',
    '*',
    'x, example.com:5000',
  ])
    assert.equal(via({ HTTPS_PROXY: p, NO_PROXY: bypass }), undefined, bypass);
  for (const proxied of ['other.com', 'example.com:443', 'ample.com', 'registry.example.com.evil'])
    assert.equal(via({ HTTPS_PROXY: p, no_proxy: proxied }), 'proxy.example:3128', proxied);
  for (const loopback of ['https://127.0.0.1:5000/', 'https://localhost/', 'https://[::1]:5000/'])
    assert.equal(via({ HTTPS_PROXY: p }, new URL(loopback)), undefined, loopback);
  assert.equal(via({ HTTPS_PROXY: 'proxy.example:8080' }), 'proxy.example:8080', 'a proxy without a scheme');
});

test('HTTP_PROXY: a plain-HTTP registry through absolute-URI requests; NO_PROXY goes direct', async () => {
  proxy.seen.length = 0;
  const ref = `${PLAIN}/p/app:v1`;
  const r = await hoist({ HTTP_PROXY: proxy.url }, 'pull', '--plain-http', '--no-unpack', '-q', ref);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(proxy.seen.length > 0);
  assert.ok(proxy.seen.every((s) => s.method !== 'CONNECT' && s.target.startsWith(`http://${PLAIN}/v2/`)));
  // Direct: the name does not resolve, so the pull fails without the proxy seeing it.
  proxy.seen.length = 0;
  for (const noProxy of ['.test', 'registry.test:5000', '*']) {
    const direct = await hoist(
      { http_proxy: proxy.url, no_proxy: noProxy },
      'manifest',
      'inspect',
      '--plain-http',
      ref,
    );
    assert.equal(direct.code, 1, noProxy);
    assert.match(direct.stderr, /cannot reach registry plain\.registry\.test:5000/);
  }
  assert.equal(proxy.seen.length, 0);
  // A NO_PROXY entry for another port does not apply.
  const other = await hoist(
    { HTTP_PROXY: proxy.url, NO_PROXY: 'registry.test:5001' },
    'manifest',
    'inspect',
    '--plain-http',
    ref,
  );
  assert.equal(other.code, 0, other.stderr);
});

test('HTTPS_PROXY: CONNECT tunnels, TLS verified end to end with the hosts.toml CA, proxy credentials sent', async () => {
  proxy.seen.length = 0;
  const proxyUrl = proxy.url.replace('http://', 'http://user:s%3Acret@');
  const r = await hoist(
    { HTTPS_PROXY: proxyUrl },
    'pull',
    '--hosts-dir',
    join(work, 'certs.d'),
    '--no-unpack',
    '-q',
    `${SECURE}/p/app:v1`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok(proxy.seen.length > 0);
  for (const s of proxy.seen) {
    assert.equal(s.method, 'CONNECT');
    assert.equal(s.target, SECURE);
    assert.equal(s.proxyAuthorization, `Basic ${Buffer.from('user:s:cret').toString('base64')}`);
  }
});
