// sd_listen_fds(3) semantics of takeListenFds: the variables count only for the pid they name, are
// unset either way, and name the fds from 3 on; pickListenFd's choice among several; boundPath's lookup of
// a listening socket's path through /proc.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { boundPath, pickListenFd, takeListenFds } from '../../src/server/systemd.ts';

test('LISTEN_FDS for this pid: fds from 3 with their names; the variables are unset', () => {
  const env: NodeJS.ProcessEnv = {
    LISTEN_PID: '42',
    LISTEN_FDS: '2',
    LISTEN_FDNAMES: 'hoist:metrics',
    PATH: '/bin',
  };
  assert.deepEqual(takeListenFds(env, 42), [
    { fd: 3, name: 'hoist' },
    { fd: 4, name: 'metrics' },
  ]);
  assert.deepEqual(env, { PATH: '/bin' });
  assert.deepEqual(takeListenFds({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 42), [{ fd: 3, name: 'unknown' }]);
});

test('LISTEN_FDS meant for another process (inherited) is ignored, and still unset', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '41', LISTEN_FDS: '1', LISTEN_FDNAMES: 'hoist' };
  assert.deepEqual(takeListenFds(env, 42), []);
  assert.deepEqual(env, {});
  assert.deepEqual(takeListenFds({ LISTEN_FDS: '1' }, 42), [], 'no LISTEN_PID: not for us');
  assert.deepEqual(takeListenFds({}, 42), []);
  assert.throws(() => takeListenFds({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42), /not a number/);
});

test('one socket is served; among several, the one named hoist', () => {
  assert.equal(pickListenFd([], 'hoist'), undefined);
  assert.deepEqual(pickListenFd([{ fd: 3, name: 'x' }], 'hoist'), { fd: 3, name: 'x' });
  assert.deepEqual(
    pickListenFd(
      [
        { fd: 3, name: 'other' },
        { fd: 4, name: 'hoist' },
      ],
      'hoist',
    ),
    { fd: 4, name: 'hoist' },
  );
  assert.throws(
    () =>
      pickListenFd(
        [
          { fd: 3, name: 'a' },
          { fd: 4, name: 'b' },
        ],
        'hoist',
      ),
    /2 sockets \(a, b\) and none is named "hoist"/,
  );
});

test('boundPath finds a listening unix socket by its fd, and nothing for other fds', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bound-'));
  const path = join(dir, 's.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    assert.equal(await boundPath(fd), path);
    assert.equal(await boundPath(0), undefined);
    assert.equal(await boundPath(100_000), undefined);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
});
