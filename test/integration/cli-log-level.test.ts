// `--log-level` (and HOIST_LOG_LEVEL, --debug): a pull from a real loopback registry with Basic auth logs
// each registry request, the challenge and the switch to plain HTTP at debug level, and never a password
// or an Authorization value; the default level logs none of it; a level hoist does not know is an error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { storeEnv } from '../helpers/hoist-process.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { DEFAULT_USERS, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, MAIN, NODE, type RunResult, tempStore } from '../helpers/run-hoist.ts';

const [[USER, PASSWORD]] = Object.entries(DEFAULT_USERS) as [[string, string]];
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

let reg: TestRegistry;
let work: string;
let name: string;

before(async () => {
  reg = await startRegistry({ auth: 'basic' });
  work = await mkdtemp(join(tmpdir(), 'hoist-log-level-'));
  await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ 'etc/a': 'a\n' }, { randomBytes: 100_000 }] } },
  ]);
  await pushLayout(join(work, 'layout'), 'logs/app:1', reg.host, {
    srcTag: 'app',
    creds: { username: USER, password: PASSWORD },
  });
  name = `${reg.host}/logs/app:1`;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A store logged in to the registry (no --plain-http: the loopback registry is found to speak HTTP). */
async function loggedInStore(): Promise<HoistStore> {
  const h = await tempStore();
  await h.ok('login', '--username', USER, '--password', PASSWORD, reg.host);
  return h;
}

/** Run hoist with extra environment variables (tempStore().run takes none). */
function runWithEnv(h: HoistStore, env: Record<string, string>, ...args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      NODE,
      [MAIN, '--root', h.root, ...args],
      { env: { ...storeEnv(h), ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function assertNoSecrets(stderr: string): void {
  assert.ok(!stderr.includes(PASSWORD), 'no password');
  assert.ok(!stderr.includes(BASIC), 'no Basic credentials');
  assert.doesNotMatch(stderr, /authorization/i, 'no Authorization header');
  assert.doesNotMatch(stderr, /Bearer |Basic [A-Za-z0-9+/=]{8}/, 'no Authorization value');
}

test('--log-level debug: each registry request, the challenge and the HTTP fallback, no credential', async () => {
  const h = await loggedInStore();
  try {
    const r = await h.run('--log-level', 'debug', 'pull', '--progress', 'plain', name);
    assert.equal(r.code, 0, r.stderr);
    const requests = r.stderr.split('\n').filter((l) => l.includes('msg="registry request"'));
    const path = `/v2/logs/app/manifests/1`;
    assert.ok(
      requests.some((l) =>
        new RegExp(
          `level=debug .*method=HEAD url=http://${reg.host}${path} status=401 duration_ms=\\d+`,
        ).test(l),
      ),
      `the unauthorized HEAD of the manifest:\n${r.stderr}`,
    );
    assert.ok(
      requests.some((l) => new RegExp(`method=HEAD url=http://${reg.host}${path} status=200`).test(l)),
      `the authorized retry:\n${r.stderr}`,
    );
    assert.ok(
      requests.some((l) =>
        /method=GET url=http:\/\/[^ ]+\/v2\/logs\/app\/blobs\/sha256:[0-9a-f]{64} status=200/.test(l),
      ),
      `blob downloads:\n${r.stderr}`,
    );
    assert.match(r.stderr, /msg="registry asks for authentication" host=127\.0\.0\.1:\d+ scheme=basic/);
    assert.match(r.stderr, /msg="loopback registry answers over plain HTTP, not HTTPS/);
    assert.match(r.stderr, /msg="pull lease held: [^"]*" lease=/);
    assertNoSecrets(r.stderr);
  } finally {
    await h.cleanup();
  }
});

test('--debug logs at debug level too; HOIST_LOG_LEVEL sets the level', async () => {
  const h = await loggedInStore();
  try {
    const debug = await h.run('--debug', 'pull', '--progress', 'quiet', name);
    assert.equal(debug.code, 0, debug.stderr);
    assert.match(debug.stderr, /msg="registry request"/);
    assertNoSecrets(debug.stderr);
    await h.ok('rmi', name);
    const env = await runWithEnv(h, { HOIST_LOG_LEVEL: 'debug' }, 'pull', '--progress', 'quiet', name);
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stderr, /msg="registry request"/);
    assertNoSecrets(env.stderr);
  } finally {
    await h.cleanup();
  }
});

test('the default level (warn) logs no request of a pull that goes well', async () => {
  const h = await loggedInStore();
  try {
    const r = await h.run('pull', '--progress', 'plain', name);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /level=|registry request/, r.stderr);
    const info = await h.run('--log-level', 'info', 'images');
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.stderr, '');
  } finally {
    await h.cleanup();
  }
});

test('token auth at debug level: the token fetch is logged (realm, service, scope), the token never', async () => {
  const tokenReg = await startRegistry({ auth: 'token' });
  const h = await tempStore();
  try {
    await pushLayout(join(work, 'layout'), 'logs/app:1', tokenReg.host, {
      srcTag: 'app',
      creds: { username: USER, password: PASSWORD },
    });
    await h.ok('login', '--username', USER, '--password', PASSWORD, tokenReg.host);
    const r = await h.run(
      '--log-level',
      'debug',
      'pull',
      '--progress',
      'quiet',
      `${tokenReg.host}/logs/app:1`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /msg="registry asks for authentication" host=[^ ]+ scheme=bearer realm=http/);
    assert.match(
      r.stderr,
      /msg="fetching a registry token" host=[^ ]+ realm=http[^ ]+ service=[^ ]+ scope=repository:logs\/app:pull with="username and password"/,
    );
    // The token server's request is logged without its query's account; a JWT starts `eyJ`.
    assert.match(
      r.stderr,
      /msg="registry request" method=GET url="http[^ ]+\/token\?service=[^ &]+&scope=repository:logs\/app:pull&account=REDACTED" status=200/,
    );
    assert.doesNotMatch(r.stderr, /eyJ|access_token|refresh_token/);
    assertNoSecrets(r.stderr);
  } finally {
    await h.cleanup();
    await tokenReg.stop();
  }
});

test('an unknown level is an error naming the levels, from the flag or the environment', async () => {
  const h = await tempStore();
  try {
    const flag = await h.run('--log-level', 'loud', 'images');
    assert.notEqual(flag.code, 0);
    assert.match(flag.stderr, /--log-level <level>.*'loud'.*invalid.*debug, info, warn, error/s);
    const env = await runWithEnv(h, { HOIST_LOG_LEVEL: 'verbose' }, 'images');
    assert.notEqual(env.code, 0);
    assert.match(env.stderr, /'verbose' from env 'HOIST_LOG_LEVEL' is invalid/);
  } finally {
    await h.cleanup();
  }
});

test("--log-format json (or HOIST_LOG_FORMAT): log lines and a failing command's error as JSON, with its stable code", async () => {
  const h = await loggedInStore();
  try {
    const pulled = await h.run('--log-format', 'json', '--log-level', 'debug', 'pull', '-q', name);
    assert.equal(pulled.code, 0, pulled.stderr);
    const lines = pulled.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l.msg === 'registry request' && l.level === 'debug' && l.method === 'GET'));
    assert.ok(!pulled.stderr.includes(BASIC) && !pulled.stderr.includes(PASSWORD));

    const missing = await runWithEnv(h, { HOIST_LOG_FORMAT: 'json' }, 'rmi', 'nothing:here');
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    const [err, ...rest] = missing.stderr.trim().split('\n');
    assert.deepEqual(rest, [], 'one line');
    const e = JSON.parse(err!) as Record<string, unknown>;
    assert.equal(e.level, 'error');
    assert.equal(e.code, 'HOIST_NOT_FOUND');
    assert.equal(e.exit, 1);
    assert.match(String(e.msg), /nothing:here.*not found/);
    assert.match(String(e.hint), /hoist images/);

    // The default stays the human form.
    const human = await h.run('rmi', 'nothing:here');
    assert.match(human.stderr, /^hoist: image "nothing:here": not found\nhint: /);
    const bad = await h.run('--log-format', 'xml', 'images');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /json, logfmt/);
  } finally {
    await h.cleanup();
  }
});
