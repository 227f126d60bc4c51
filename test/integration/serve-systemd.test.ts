// hoist serve under systemd: the unit files pass `systemd-analyze verify` (which runs without a running
// systemd), and socket activation works as systemd does it: the test binds and listens on a unix socket,
// starts `hoist serve` with it as fd 3 and LISTEN_FDS=1, LISTEN_FDNAMES=hoist, LISTEN_PID=its own pid
// (a `sh -c 'LISTEN_PID=$$ exec …'` wrapper: exec keeps the shell's pid), and the real ctr and a grpc-js
// client work through it. On SIGTERM the daemon stops and leaves the socket file to its owner.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Serving,
} from '../../src/api/gen/grpc/health/v1/health_pb.ts';
import { CTR } from '../helpers/containerd.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { waitFor } from '../helpers/hoist-process.ts';
import { MAIN, NODE } from '../helpers/run-hoist.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const UNITS = join(REPO, 'deploy', 'systemd');

function hasSystemdAnalyze(): boolean {
  try {
    readFileSync('/usr/bin/systemd-analyze');
    return true;
  } catch {
    return false;
  }
}

test('the unit files pass systemd-analyze verify, with no warning, and ship in the package', {
  skip: !hasSystemdAnalyze() && 'systemd-analyze is missing (scripts/install-test-deps.sh installs systemd)',
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-units-'));
  try {
    // verify checks that ExecStart's program exists: point it at this checkout's bin/hoist.
    const service = await readFile(join(UNITS, 'hoist.service'), 'utf8');
    assert.match(service, /^ExecStart=\/usr\/local\/bin\/hoist serve$/m);
    await writeFile(
      join(dir, 'hoist.service'),
      service.replace('/usr/local/bin/hoist', join(REPO, 'bin', 'hoist')),
    );
    await cp(join(UNITS, 'hoist.socket'), join(dir, 'hoist.socket'));
    const r = await run('systemd-analyze', ['verify', '--man=no', './hoist.socket', './hoist.service'], {
      cwd: dir,
    });
    assert.equal(r.stderr, '', 'no warnings (an unknown key or section is only a warning)');
    // And it does fail on a broken unit, so a pass means something.
    await writeFile(join(dir, 'broken.service'), '[Service]\nExecStart=/nonexistent/hoist serve\nBogus=1\n');
    await assert.rejects(run('systemd-analyze', ['verify', '--man=no', './broken.service'], { cwd: dir }));
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('deploy/'), 'package.json files lists deploy/');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Listen on `path` the way systemd does before starting the service. */
async function listening(path: string): Promise<Server> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return server;
}

test('socket activation: hoist serve takes the listening socket as fd 3 and serves ctr and grpc-js on it', {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-activation-'));
  const socket = join(dir, 'hoist.sock');
  const holder = await listening(socket);
  const inode = (await stat(socket)).ino;
  // --address names another path: the daemon must serve the socket it was given, and never bind this one.
  const unused = join(dir, 'unused.sock');
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'LISTEN_PID=$$ exec "$@"',
      'sh',
      NODE,
      MAIN,
      '--root',
      join(dir, 'root'),
      'serve',
      '--address',
      unused,
    ],
    {
      env: { ...process.env, HOME: join(dir, 'home'), LISTEN_FDS: '1', LISTEN_FDNAMES: 'hoist' },
      // The listening socket's fd, shared with the child as its fd 3.
      stdio: ['ignore', 'ignore', 'pipe', (holder as unknown as { _handle: { fd: number } })._handle.fd],
    },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The child has its own copy now. The test's copy must stop accepting, but closing a socket Node bound
  // by path also unlinks that path: move the file aside for the close, then back (the socket is its inode).
  await rename(socket, `${socket}.aside`);
  await new Promise<void>((resolve) => holder.close(() => resolve()));
  await rename(`${socket}.aside`, socket);
  const clients = new TestClients(socket);
  try {
    await waitFor(
      () => log.includes('"msg":"serving"') || child.exitCode !== null,
      'hoist serve to start',
      20_000,
    );
    assert.equal(child.exitCode, null, log);
    assert.match(log, new RegExp(`"msg":"serving the socket systemd passed","fd":3,"path":"${socket}"`));
    await assert.rejects(stat(unused), 'the --address path is not bound');

    const version = await run(CTR, ['--address', socket, 'version']);
    assert.match(version.stdout, /Server:\s+Version:\s+1\.6\.\d+\+hoist/);
    await run(CTR, ['--address', socket, 'namespaces', 'create', 'activated']);
    const ns = await run(CTR, ['--address', socket, 'namespaces', 'ls', '-q']);
    assert.match(ns.stdout, /activated/);
    const health = clients.client(Health);
    const r = await unary<HealthCheckResponse>(health, 'check', { service: '' }, new Metadata());
    assert.equal(r.status, Serving.SERVING);
    const marker = JSON.parse(await readFile(join(dir, 'root', 'hoist-serve.json'), 'utf8')) as {
      address: string;
    };
    assert.equal(marker.address, socket, 'CLI runs on the store find the daemon at the socket path');

    clients.close();
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.match(log, /"msg":"stopped"/);
    assert.equal((await stat(socket)).ino, inode, 'the socket file is systemd’s: still there, the same one');
  } finally {
    clients.close();
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
