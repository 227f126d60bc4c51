// `hoist serve`'s settings: the [serve] table (every key typed, unknown keys refused), the socket mode and
// TCP address spellings the flags share, and the two log formats.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseSocketMode, parseTcpAddress } from '../../src/config/config.ts';
import { createLogger } from '../../src/core/log.ts';

async function load(text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-serve-cfg-'));
  try {
    const path = join(dir, 'config.toml');
    await writeFile(path, text);
    return loadConfig({ path, env: {}, isRoot: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('[serve] defaults, and every key read and typed', async () => {
  const d = loadConfig({ env: {}, isRoot: true, path: undefined });
  assert.deepEqual(d.serve, {
    socket_mode: 0o660,
    log_level: 'info',
    log_format: 'json',
    shutdown_timeout: '10s',
    registry_namespaces: ['k8s.io', 'default'],
  });
  const c = await load(
    [
      '[serve]',
      'address = "/run/hoist/hoist.sock"',
      'group = "hoist"',
      'socket_mode = "0666"',
      'log_level = "debug"',
      'log_format = "logfmt"',
      'metrics_address = "127.0.0.1:9464"',
      'shutdown_timeout = "30s"',
      'registry_address = ":5050"',
      'registry_namespaces = ["k8s.io"]',
      '',
    ].join('\n'),
  );
  assert.deepEqual(c.serve, {
    address: '/run/hoist/hoist.sock',
    group: 'hoist',
    socket_mode: 0o666,
    log_level: 'debug',
    log_format: 'logfmt',
    metrics_address: '127.0.0.1:9464',
    shutdown_timeout: '30s',
    registry_address: ':5050',
    registry_namespaces: ['k8s.io'],
  });
  assert.equal((await load('[serve]\ngroup = 1001\nsocket_mode = 0o640\n')).serve.group, '1001');
  assert.equal((await load('[serve]\nsocket_mode = 0o640\n')).serve.socket_mode, 0o640);
});

test('[serve] refuses unknown keys and bad values, naming the key', async () => {
  await assert.rejects(
    load('[serve]\nlog_formt = "json"\n'),
    /unknown key "serve.log_formt" \(did you mean "serve.log_format"\?\)/,
  );
  await assert.rejects(
    load('[serve]\nlog_format = "text"\n'),
    /serve.log_format must be one of "json", "logfmt"/,
  );
  await assert.rejects(
    load('[serve]\nlog_level = "trace"\n'),
    /serve.log_level must be one of "debug", "info"/,
  );
  await assert.rejects(
    load('[serve]\nsocket_mode = 660\n'),
    /serve.socket_mode must be permission bits in octal/,
  );
  await assert.rejects(load('[serve]\nsocket_mode = "0066"\n'), /takes read or write away from the owner/);
  await assert.rejects(
    load('[serve]\nmetrics_address = "9464"\n'),
    /serve.metrics_address must be a host:port/,
  );
  await assert.rejects(load('[serve]\nshutdown_timeout = 10\n'), /serve.shutdown_timeout must be a duration/);
  await assert.rejects(load('serve = "yes"\n'), /serve must be a table/);
});

test('socket modes and TCP addresses: the spellings flags and keys share', () => {
  assert.equal(parseSocketMode('0660'), 0o660);
  assert.equal(parseSocketMode('600'), 0o600);
  assert.throws(() => parseSocketMode('0999'), /not permission bits/);
  assert.throws(() => parseSocketMode('04660'), /not permission bits/);
  assert.deepEqual(parseTcpAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseTcpAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseTcpAddress(':9464'), { host: '::', port: 9464 });
  assert.deepEqual(parseTcpAddress('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['9464', '127.0.0.1', 'host:99999', '::1:9464', 'a b:1'])
    assert.throws(() => parseTcpAddress(bad), /is not host:port/, bad);
});

test('log lines as JSON or logfmt', () => {
  const lines: string[] = [];
  const json = createLogger('info', (l) => lines.push(l));
  json.debug('dropped');
  json.with({ component: 'gc' }).info('gc', { removed: 3, error: new Error('x') });
  assert.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]!);
  assert.deepEqual(
    { ...entry, time: undefined },
    { time: undefined, level: 'info', msg: 'gc', component: 'gc', removed: 3, error: 'x' },
  );

  lines.length = 0;
  const logfmt = createLogger('debug', (l) => lines.push(l), {}, 'logfmt').with({ 'a key': 'v' });
  logfmt.warn('rpc failed', {
    method: '/containerd.services.content.v1.Content/Read',
    ms: 1.5,
    ok: false,
    empty: '',
    quote: 'say "hi"\nbye',
    list: ['a', 'b'],
  });
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line');
  assert.match(line, /^time=\d{4}-\d\d-\d\dT[\d:.]+Z level=warn msg="rpc failed" a_key=v /);
  assert.match(
    line,
    / method=\/containerd\.services\.content\.v1\.Content\/Read ms=1\.5 ok=false empty="" quote="say \\"hi\\"\\nbye" list="\[\\"a\\",\\"b\\"\]"\n$/,
  );
});
