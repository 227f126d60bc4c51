// The environment a docker/nerdctl/ctr user's shell carries: HOIST_ROOT and HOIST_CONFIG pick the store and
// the config file, CONTAINERD_NAMESPACE and CONTAINERD_ADDRESS are read after hoist's own variables, and
// a flag always wins over its variable.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MAIN, NODE, type RunResult } from '../helpers/run-hoist.ts';

let dir: string;
let base: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-env-'));
  base = { ...process.env, HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'home', '.config') };
  for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'HOIST_NAMESPACE', 'HOIST_ADDRESS']) delete base[k];
  for (const k of ['CONTAINERD_NAMESPACE', 'CONTAINERD_ADDRESS', 'XDG_DATA_HOME']) delete base[k];
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function hoist(env: NodeJS.ProcessEnv, ...args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(NODE, [MAIN, ...args], { env: { ...base, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('HOIST_ROOT picks the store; --root wins over it', async () => {
  const root = join(dir, 'env-root');
  const r = await hoist({ HOIST_ROOT: root }, 'namespace', 'create', 'from-env');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(root));
  assert.match((await hoist({ HOIST_ROOT: root }, 'namespace', 'ls')).stdout, /from-env/);
  const other = join(dir, 'flag-root');
  assert.equal((await hoist({ HOIST_ROOT: root }, '--root', other, 'namespace', 'create', 'x')).code, 0);
  assert.doesNotMatch((await hoist({ HOIST_ROOT: root }, 'namespace', 'ls')).stdout, /^x$/m);
  assert.match((await hoist({}, '--root', other, 'namespace', 'ls')).stdout, /^x$/m);
});

test('HOIST_CONFIG names the config file; a missing one is an error naming it', async () => {
  const root = join(dir, 'config-root');
  const file = join(dir, 'hoist.toml');
  await writeFile(file, `version = 1\nroot = ${JSON.stringify(root)}\nnamespace = "from-config"\n`);
  assert.equal((await hoist({ HOIST_CONFIG: file }, 'namespace', 'create', 'y')).code, 0);
  assert.ok(existsSync(root));
  // HOIST_ROOT is between the file's root and --root.
  const envRoot = join(dir, 'env-over-config');
  assert.equal(
    (await hoist({ HOIST_CONFIG: file, HOIST_ROOT: envRoot }, 'namespace', 'create', 'z')).code,
    0,
  );
  assert.ok(existsSync(envRoot));
  const missing = await hoist({ HOIST_CONFIG: join(dir, 'nope.toml') }, 'namespace', 'ls');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.toml: no such file/);
});

test('CONTAINERD_NAMESPACE after HOIST_NAMESPACE, the flag over both', async () => {
  const root = join(dir, 'ns-root');
  const env = { HOIST_ROOT: root };
  // The chosen namespace shows in the error for a malformed one ("bad/…"); a well-formed one lists.
  const nsOf = async (extra: NodeJS.ProcessEnv, ...flags: string[]) => {
    const r = await hoist({ ...env, ...extra }, ...flags, 'images', '-q');
    return r.code === 0 ? 'ok' : r.stderr;
  };
  assert.equal(await nsOf({ CONTAINERD_NAMESPACE: 'cns' }), 'ok');
  assert.match(await nsOf({ CONTAINERD_NAMESPACE: 'bad/c' }), /invalid namespace "bad\/c"/);
  assert.match(await nsOf({ CONTAINERD_NAMESPACE: 'cns', HOIST_NAMESPACE: 'bad/h' }), /"bad\/h"/);
  assert.match(
    await nsOf({ CONTAINERD_NAMESPACE: 'bad/c', HOIST_NAMESPACE: 'bad/h' }, '-n', 'bad/f'),
    /"bad\/f"/,
  );
});

test('CONTAINERD_ADDRESS after HOIST_ADDRESS', async () => {
  const env = { HOIST_ROOT: join(dir, 'addr-root') };
  const c = await hoist({ ...env, CONTAINERD_ADDRESS: join(dir, 'containerd.sock') }, 'images');
  assert.equal(c.code, 1);
  assert.match(c.stderr, /containerd\.sock/);
  const h = await hoist(
    { ...env, CONTAINERD_ADDRESS: join(dir, 'containerd.sock'), HOIST_ADDRESS: join(dir, 'hoist.sock') },
    'images',
  );
  assert.equal(h.code, 1);
  assert.match(h.stderr, /hoist\.sock/);
});
