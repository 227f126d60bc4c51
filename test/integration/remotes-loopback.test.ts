// A registry on this machine (127.0.0.0/8, ::1, localhost) is tried over HTTPS and then over plain HTTP
// without --plain-http, as docker and containerd do; and a pull that talked HTTP (--plain-http) is
// remembered on the image record, so the layers it discarded are fetched again over HTTP by a later save
// without the flag.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { DEFAULT_USERS, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';

let reg: TestRegistry;
let h: HoistStore;
let work: string;

before(async () => {
  reg = await startRegistry();
  h = await tempStore();
  work = await mkdtemp(join(tmpdir(), 'hoist-loopback-'));
  const layout = join(work, 'layout');
  await writeOciLayout(layout, [{ tag: 'v1', image: { layers: [{ 'etc/loop': 'loop\n' }] } }]);
  await pushLayout(layout, 'loop/app:v1', reg.host);
});

after(async () => {
  await reg?.stop();
  await h?.cleanup();
  await rm(work, { recursive: true, force: true });
});

/** The labels of an image record (`image inspect` gives them per name). */
async function recordLabels(name: string): Promise<Record<string, string>> {
  const [image] = JSON.parse(await h.ok('image', 'inspect', name)) as {
    Labels: Record<string, Record<string, string>>;
  }[];
  return image?.Labels[name] ?? {};
}

test('a loopback registry speaking plain HTTP is pulled without --plain-http (127.0.0.1 and localhost)', async () => {
  const port = reg.host.split(':')[1];
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
    const r = await h.run('pull', '--no-unpack', '-q', `${host}/loop/app:v1`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `${host}/loop/app:v1`);
  }
  // Without --plain-http nothing is recorded: the next re-fetch falls back by itself.
  const name = `127.0.0.1:${port}/loop/app:v1`;
  assert.equal((await recordLabels(name))['hoist.io/registry.scheme'], undefined);
});

test('a pull with --plain-http is remembered: save re-fetches discarded layers over HTTP without the flag', async () => {
  // A hosts.toml for the registry turns the loopback fallback off: only the recorded scheme can help.
  const certs = join(work, 'certs.d');
  await mkdir(join(certs, reg.host), { recursive: true });
  await writeFile(join(certs, reg.host, 'hosts.toml'), `server = "${reg.host}"\n`);
  const config = join(work, 'config.toml');
  await writeFile(config, `version = 1\n[registry]\nconfig_path = ${JSON.stringify(certs)}\n`);
  const name = `${reg.host}/loop/app:v1`;
  await h.ok('--config', config, 'rmi', name).catch(() => '');
  await h.ok(
    '--config',
    config,
    'pull',
    '--plain-http',
    '--snapshotter',
    'native',
    '--discard-unpacked-layers',
    '-q',
    name,
  );
  assert.equal((await recordLabels(name))['hoist.io/registry.scheme'], 'http');
  const missing = await h.run('--config', config, 'save', '--no-fetch', '-o', join(work, 'no.tar'), name);
  assert.notEqual(missing.code, 0, 'the layer was discarded');
  reg.resetStats();
  await h.ok('--config', config, 'save', '-q', '-o', join(work, 'app.tar'), name);
  assert.ok(reg.stats().requests.some((r) => r.method === 'GET' && /\/blobs\//.test(r.path)));
});

test('login to a loopback registry needs no --plain-http either', async () => {
  const secured = await startRegistry({ auth: 'basic' });
  try {
    const [[user, password]] = Object.entries(DEFAULT_USERS) as [[string, string]];
    const bad = await h.run('login', secured.host, '-u', user, '-p', 'wrong');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /authentication failed/);
    await h.ok('login', secured.host, '-u', user, '-p', password);
    await h.ok('logout', secured.host);
  } finally {
    await secured.stop();
  }
});
