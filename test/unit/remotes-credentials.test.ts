import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import {
  DOCKER_HUB_AUTH_KEY,
  dockerConfigPath,
  login,
  logout,
  lookupCredentials,
} from '../../src/remotes/credentials.ts';

let home: string;
let env: NodeJS.ProcessEnv;
let configPath: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'hoist-creds-'));
  env = { HOME: home, PATH: `${join(home, 'bin')}:${process.env.PATH}` };
  configPath = join(home, '.docker', 'config.json');
  await mkdir(join(home, '.docker'));
  await mkdir(join(home, 'bin'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const writeConfig = (doc: unknown) => writeFile(configPath, JSON.stringify(doc));

test('config path: explicit, $DOCKER_CONFIG, then $HOME/.docker', () => {
  assert.equal(dockerConfigPath({ configPath: '/x/c.json' }), '/x/c.json');
  assert.equal(dockerConfigPath({ env: { DOCKER_CONFIG: '/d', HOME: '/h' } }), '/d/config.json');
  assert.equal(dockerConfigPath({ env: { HOME: '/h' } }), '/h/.docker/config.json');
});

test('auths: base64 auth, username/password, identitytoken, URL-shaped keys', async () => {
  await writeConfig({
    auths: {
      'reg.example:5000': { auth: b64('alice:s3cr:et') },
      'https://plain.example/v1/': { username: 'bob', password: 'pw' },
      'tok.example': { auth: b64('carol:'), identitytoken: 'idtok' },
      [DOCKER_HUB_AUTH_KEY]: { auth: b64('hubuser:hubpw') },
    },
  });
  assert.deepEqual(await lookupCredentials('reg.example:5000', { env }), {
    username: 'alice',
    password: 's3cr:et',
  });
  assert.deepEqual(await lookupCredentials('plain.example', { env }), { username: 'bob', password: 'pw' });
  assert.deepEqual(await lookupCredentials('tok.example', { env }), {
    username: 'carol',
    password: '',
    identityToken: 'idtok',
  });
  for (const hub of ['docker.io', 'registry-1.docker.io', 'index.docker.io'])
    assert.deepEqual(await lookupCredentials(hub, { env }), { username: 'hubuser', password: 'hubpw' });
  assert.equal(await lookupCredentials('reg.example:5001', { env }), undefined);
  assert.equal(await lookupCredentials('nothing.example', { env }), undefined);
});

test('a missing config file means no credentials; invalid JSON is a HOIST_CONFIG error', async () => {
  assert.equal(await lookupCredentials('x.example', { env }), undefined);
  await writeFile(configPath, '{ not json');
  await assert.rejects(lookupCredentials('x.example', { env }), (err: unknown) => {
    assert.ok(err instanceof HoistError);
    assert.equal(err.code, 'HOIST_CONFIG');
    assert.match(err.message, /config\.json/);
    return true;
  });
});

async function fakeHelper(name: string): Promise<string> {
  const log = join(home, `${name}.log`);
  const script = `#!/bin/sh
read -r input || true
echo "$1 $input" >> "${log}"
case "$1" in
  get)
    case "$input" in
      "${DOCKER_HUB_AUTH_KEY}") echo '{"ServerURL":"x","Username":"hub","Secret":"fromhelper"}' ;;
      helper.example) echo '{"ServerURL":"x","Username":"<token>","Secret":"identity"}' ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  store|erase) exit 0 ;;
esac
`;
  const file = join(home, 'bin', `docker-credential-${name}`);
  await writeFile(file, script);
  await chmod(file, 0o755);
  return log;
}

test('credHelpers and credsStore run docker-credential-<name> get', async () => {
  const log = await fakeHelper('fake');
  await writeConfig({
    credHelpers: { 'helper.example': 'fake' },
    credsStore: 'fake',
    auths: { 'fallback.example': { auth: b64('f:g') } },
  });
  assert.deepEqual(await lookupCredentials('helper.example', { env }), { identityToken: 'identity' });
  assert.deepEqual(await lookupCredentials('docker.io', { env }), {
    username: 'hub',
    password: 'fromhelper',
  });
  // the store has nothing: fall back to auths
  assert.deepEqual(await lookupCredentials('fallback.example', { env }), { username: 'f', password: 'g' });
  const calls = (await readFile(log, 'utf8')).trim().split('\n');
  assert.deepEqual(calls, ['get helper.example', `get ${DOCKER_HUB_AUTH_KEY}`, 'get fallback.example']);
});

test('a helper that cannot run is a HOIST_CONFIG error naming it', async () => {
  await writeConfig({ credsStore: 'missing-helper' });
  await assert.rejects(lookupCredentials('x.example', { env }), (err: unknown) => {
    assert.ok(err instanceof HoistError);
    assert.equal(err.code, 'HOIST_CONFIG');
    assert.match(err.message, /docker-credential-missing-helper/);
    return true;
  });
});

test('login writes auths with mode 0600 and keeps other keys; logout removes every alias', async () => {
  await writeConfig({
    auths: { 'other.example': { auth: b64('o:p') }, 'https://reg.example/v1/': { auth: b64('old:x') } },
    psFormat: 'table',
  });
  await chmod(configPath, 0o644);
  const where = await login('reg.example', { username: 'new', password: 'pw' }, { env, skipVerify: true });
  assert.equal(where, configPath);
  const doc = JSON.parse(await readFile(configPath, 'utf8'));
  assert.equal(doc.psFormat, 'table');
  assert.deepEqual(Object.keys(doc.auths).sort(), ['other.example', 'reg.example']);
  assert.equal(doc.auths['reg.example'].auth, b64('new:pw'));
  assert.equal((await stat(configPath)).mode & 0o777, 0o600);
  assert.deepEqual(await lookupCredentials('reg.example', { env }), { username: 'new', password: 'pw' });

  await login('docker.io', { username: 'h', password: 'p' }, { env, skipVerify: true });
  assert.ok(JSON.parse(await readFile(configPath, 'utf8')).auths[DOCKER_HUB_AUTH_KEY]);

  assert.equal(await logout('reg.example', { env }), true);
  assert.equal(await logout('reg.example', { env }), false);
  const after = JSON.parse(await readFile(configPath, 'utf8'));
  assert.deepEqual(Object.keys(after.auths).sort(), [DOCKER_HUB_AUTH_KEY, 'other.example']);
  assert.equal(after.psFormat, 'table');
});

test('login creates the config directory when there is none', async () => {
  const fresh = join(home, 'fresh', 'config.json');
  await login('reg.example', { username: 'a', password: 'b' }, { configPath: fresh, skipVerify: true });
  assert.equal((await stat(fresh)).mode & 0o777, 0o600);
});

test('login through a configured credential helper stores there, not in the file', async () => {
  const log = await fakeHelper('store');
  await writeConfig({ credHelpers: { 'reg.example': 'store' } });
  const where = await login('reg.example', { username: 'u', password: 'p' }, { env, skipVerify: true });
  assert.equal(where, 'docker-credential-store');
  const calls = await readFile(log, 'utf8');
  assert.match(calls, /^store \{"ServerURL":"reg.example","Username":"u","Secret":"p"\}/);
  assert.equal(JSON.parse(await readFile(configPath, 'utf8')).auths, undefined);
});
