import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderTable } from '../../src/cli/output/tabwriter.ts';
import { humanSize, timeAgo } from '../../src/cli/output/units.ts';
import { defaultAddress, loadConfig, parseDuration, registryTimeouts } from '../../src/config/config.ts';

async function withFile(text: string, fn: (path: string) => void | Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-cfg-'));
  try {
    const p = join(dir, 'config.toml');
    await writeFile(p, text);
    await fn(p);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('defaults for root and for a user (XDG)', () => {
  const root = loadConfig({ env: {}, isRoot: true, path: undefined });
  assert.equal(root.root, '/var/lib/hoist');
  assert.equal(root.pull_lease_expiry, '1h');
  assert.equal(root.max_concurrent_downloads, 3);
  assert.ok(root.max_concurrent_unpacks >= 1 && root.max_concurrent_unpacks <= 4, 'cores, up to 4');
  const user = loadConfig({
    env: { HOME: '/home/u', XDG_DATA_HOME: '/data', XDG_CONFIG_HOME: '/nonexistent-cfg' },
    isRoot: false,
  });
  assert.equal(user.root, '/data/hoist');
  assert.equal(user.registry.config_path, '/nonexistent-cfg/hoist/certs.d');
  assert.equal(defaultAddress(true), '/run/hoist/hoist.sock');
  assert.equal(
    defaultAddress(false, { XDG_RUNTIME_DIR: '/run/user/1000' }),
    '/run/user/1000/hoist/hoist.sock',
  );
});

test('values are read and typed', async () => {
  await withFile(
    'root = "/srv/hoist"\npull_lease_expiry = "15m"\nmax_concurrent_unpacks = 1\n[registry]\nplain_http = ["127.0.0.1:5000"]\n',
    (path) => {
      const c = loadConfig({ path, env: {}, isRoot: true });
      assert.equal(c.max_concurrent_unpacks, 1);
      assert.equal(c.root, '/srv/hoist');
      assert.equal(parseDuration(c.pull_lease_expiry), 15 * 60_000);
      assert.deepEqual(c.registry.plain_http, ['127.0.0.1:5000']);
    },
  );
});

test('unknown keys and wrong types are errors naming the key and file', async () => {
  await withFile('snapshoter = "native"\n', (path) => {
    assert.throws(
      () => loadConfig({ path, env: {}, isRoot: true }),
      (e: Error & { code?: string }) =>
        e.code === 'HOIST_CONFIG' &&
        e.message.includes(path) &&
        /unknown key "snapshoter" \(did you mean "snapshotter"\?\)/.test(e.message),
    );
  });
  await withFile('[registry]\nmirrors = 1\n', (path) => {
    assert.throws(() => loadConfig({ path, env: {}, isRoot: true }), /unknown key "registry.mirrors"/);
  });
  await withFile('max_concurrent_downloads = "3"\n', (path) => {
    assert.throws(
      () => loadConfig({ path, env: {}, isRoot: true }),
      /max_concurrent_downloads must be a whole number/,
    );
  });
  await withFile('max_concurrent_unpacks = 0\n', (path) => {
    assert.throws(
      () => loadConfig({ path, env: {}, isRoot: true }),
      /max_concurrent_unpacks must be a whole number ≥ 1/,
    );
  });
  await withFile('pull_lease_expiry = "soon"\n', (path) => {
    assert.throws(() => loadConfig({ path, env: {}, isRoot: true }), /pull_lease_expiry must be a duration/);
  });
  await withFile('not toml = = 1\n', (path) => {
    assert.throws(() => loadConfig({ path, env: {}, isRoot: true }), /not valid TOML/);
  });
  assert.throws(() => loadConfig({ path: '/nonexistent/hoist.toml', env: {}, isRoot: true }), /no such file/);
});

test('registry deadlines: 30 s each by default, read from [registry], never 0', async () => {
  const d = loadConfig({ env: {}, isRoot: true, path: undefined });
  assert.deepEqual(registryTimeouts(d), { connectMs: 30_000, headerMs: 30_000, idleMs: 30_000 });
  await withFile(
    '[registry]\nconnect_timeout = "5s"\nheader_timeout = "1m"\nidle_timeout = "1m30s"\n',
    (path) => {
      const c = loadConfig({ path, env: {}, isRoot: true });
      assert.deepEqual(registryTimeouts(c), { connectMs: 5_000, headerMs: 60_000, idleMs: 90_000 });
    },
  );
  await withFile('[registry]\nheader_timeout = "0"\n', (path) => {
    assert.throws(
      () => loadConfig({ path, env: {}, isRoot: true }),
      /registry.header_timeout must be longer than 0/,
    );
  });
  await withFile('[registry]\nidle_timeout = 30\n', (path) => {
    assert.throws(
      () => loadConfig({ path, env: {}, isRoot: true }),
      /registry.idle_timeout must be a duration/,
    );
  });
});

test('durations', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('0'), 0);
  assert.throws(() => parseDuration('1d'), /invalid duration/);
  assert.throws(() => parseDuration(''), /invalid duration/);
});

test('docker-style sizes, ages and tables', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(211_500_000), '211.5MB');
  assert.equal(humanSize(1234), '1.234kB');
  const now = new Date('2026-01-01T12:00:00Z');
  assert.equal(timeAgo(now, now), 'Less than a second ago');
  assert.equal(timeAgo(new Date(now.getTime() - 38 * 60_000), now), '38 minutes ago');
  assert.equal(timeAgo(new Date(now.getTime() - 3_600_000), now), 'About an hour ago');
  assert.equal(timeAgo(new Date(now.getTime() - 3 * 86_400_000), now), '3 days ago');
  assert.equal(
    renderTable([
      ['A', 'BB', 'C'],
      ['xxxxx', 'y', 'z'],
    ]),
    'A        BB    C\nxxxxx    y     z\n',
  );
});

test("HOIST_CONFIG names the file (which must exist); HOIST_ROOT is over the file's root", async () => {
  await withFile('version = 1\nroot = "/from-file"\n', (path) => {
    assert.equal(loadConfig({ env: { HOIST_CONFIG: path }, isRoot: true }).root, '/from-file');
    assert.equal(loadConfig({ env: { HOIST_CONFIG: path, HOIST_ROOT: '/env' }, isRoot: true }).root, '/env');
    assert.throws(
      () => loadConfig({ env: { HOIST_CONFIG: `${path}.missing` }, isRoot: true }),
      /no such file/,
    );
    assert.equal(loadConfig({ env: { HOIST_ROOT: '/env' }, isRoot: true }).root, '/env');
  });
});
