// hosts.toml against a Distribution registry that serves TLS with an openssl-made CA and demands a client
// certificate: `ca` verifies the registry, `client` (a [certificate, key] pair or one PEM file) answers its
// demand, for pushes (hoist copy) and pulls; without `client` or `ca` the error says why; skip_verify
// stands in for `ca`; skopeo reads what hoist pushed with the same certificates. A mirror that accepts a
// connection and never finishes the handshake is given up on after its `dial_timeout`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';
import { makeCa } from '../helpers/tls-certs.ts';

const run = promisify(execFile);

let reg: TestRegistry;
let h: HoistStore;
let work: string;
let certs: string;
let silent: Server;
const sockets = new Set<Socket>();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-mtls-'));
  const ca = await makeCa(work);
  const server = await ca.issue('registry', { ip: ['127.0.0.1'] });
  const client = await ca.issue('client', { client: true });
  reg = await startRegistry({ tls: { ...server, clientCa: ca.cert } });
  h = await tempStore();
  await writeOciLayout(join(work, 'layout'), [{ tag: 'v1', image: { layers: [{ 'etc/mtls': 'mtls\n' }] } }]);
  // The files next to each hosts.toml, named relative to it; a combined PEM for the one-file form.
  certs = join(work, 'certs.d');
  await mkdir(join(certs, reg.host), { recursive: true });
  for (const [from, to] of [
    [ca.cert, 'ca.crt'],
    [client.cert, 'client.cert'],
    [client.key, 'client.key'],
  ] as const)
    await copyFile(from, join(certs, reg.host, to));
  await writeFile(
    join(certs, reg.host, 'client.pem'),
    `${await readFile(client.cert, 'utf8')}${await readFile(client.key, 'utf8')}`,
  );
  // skopeo's certificate directory: *.crt CAs, client.cert and client.key.
  await mkdir(join(work, 'skopeo-certs'));
  for (const f of ['ca.crt', 'client.cert', 'client.key'])
    await copyFile(join(certs, reg.host, f), join(work, 'skopeo-certs', f));
  silent = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  for (const s of sockets) s.destroy();
  silent?.close();
  await reg?.stop();
  await h?.cleanup();
  await rm(work, { recursive: true, force: true });
});

async function hostsToml(text: string): Promise<void> {
  await writeFile(join(certs, reg.host, 'hosts.toml'), `server = "https://${reg.host}"\n${text}\n`);
}

test('ca and a [certificate, key] client pair: hoist copy pushes, skopeo reads it with the same certificates', async () => {
  await hostsToml('ca = "ca.crt"\nclient = [["client.cert", "client.key"]]');
  const digest = (
    await h.ok(
      'copy',
      '-q',
      '--hosts-dir',
      certs,
      `oci:${join(work, 'layout')}:v1`,
      `${reg.host}/mtls/app:v1`,
    )
  ).trim();
  const { stdout } = await run('skopeo', [
    'inspect',
    '--raw',
    '--cert-dir',
    join(work, 'skopeo-certs'),
    `docker://${reg.host}/mtls/app:v1`,
  ]);
  const { createHash } = await import('node:crypto');
  assert.equal(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, digest);
  await h.ok('pull', '--no-unpack', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
});

test('client as one PEM file; skip_verify instead of ca', async () => {
  await hostsToml('ca = "ca.crt"\nclient = "client.pem"');
  await h.ok('manifest', 'inspect', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
  await hostsToml('skip_verify = true\nclient = ["client.pem"]');
  await h.ok('manifest', 'inspect', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
});

test('without client the registry refuses the handshake; without ca its certificate is not trusted', async () => {
  await hostsToml('ca = "ca.crt"');
  const noClient = await h.run('manifest', 'inspect', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
  assert.equal(noClient.code, 1);
  assert.match(noClient.stderr, new RegExp(`registry ${reg.host}.*(certificate|TLS|ECONNRESET)`, 'i'));
  assert.match(noClient.stderr, /hint: .*client certificate/);
  await hostsToml('client = "client.pem"');
  const noCa = await h.run('manifest', 'inspect', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
  assert.equal(noCa.code, 1);
  assert.match(noCa.stderr, /certificate/i);
});

test('dial_timeout: a mirror that never completes the handshake is left after it, then the server answers', async () => {
  const mirror = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  await hostsToml(
    `ca = "ca.crt"\nclient = "client.pem"\n[host."https://${mirror}"]\n  capabilities = ["pull", "resolve"]\n  dial_timeout = "300ms"`,
  );
  const started = Date.now();
  await h.ok('manifest', 'inspect', '--hosts-dir', certs, `${reg.host}/mtls/app:v1`);
  assert.ok(
    Date.now() - started < 10_000,
    `took ${Date.now() - started} ms (the default connect timeout is 30 s)`,
  );
});
