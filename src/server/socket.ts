// The unix socket the daemon listens on: where it goes by default, whether a live server already holds
// it (then we refuse to start) or it is stale (left by a crash: removed), and its permissions (0660, an
// optional group, like containerd's socket; config serve.socket_mode may open it further).

import { chmod, chown, lstat, mkdir, readFile, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { failedPrecondition, HoistError, invalidArgument } from '../core/errors.ts';

/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** `/run/hoist/hoist.sock` as root, else `$XDG_RUNTIME_DIR/hoist/hoist.sock`. */
export function defaultAddress(
  env: NodeJS.ProcessEnv = process.env,
  isRoot = process.getuid?.() === 0,
): string {
  if (isRoot) return '/run/hoist/hoist.sock';
  const runtime = env.XDG_RUNTIME_DIR;
  if (!runtime)
    throw invalidArgument(
      'XDG_RUNTIME_DIR is not set, so there is no default socket for a non-root hoist serve',
      'pass --address /path/to/hoist.sock',
    );
  return join(runtime, 'hoist', 'hoist.sock');
}

/** Accepts `unix:///path`, `unix:/path` or a plain path; returns the path. */
export function socketPath(address: string): string {
  const path = address.startsWith('unix://')
    ? address.slice(7)
    : address.startsWith('unix:')
      ? address.slice(5)
      : address;
  if (!path) throw invalidArgument('socket address must not be empty');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw invalidArgument(
      `socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes`,
      'choose a shorter --address',
    );
  return path;
}

/** Is something accepting connections on the socket? */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * Make `path` ready to bind: refuse when a live server answers there or when it is not a socket; remove
 * a stale socket. Creates the parent directory (0711, like /run/containerd) when missing.
 */
export async function prepareSocket(path: string): Promise<{ replacedStale: boolean }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { replacedStale: false };
    throw err;
  }
  if (!st.isSocket())
    throw failedPrecondition(`${path} exists and is not a socket`, 'remove it or choose another --address');
  if (await answers(path))
    throw failedPrecondition(
      `another server is already listening on ${path}`,
      'stop it first, or choose another --address',
    );
  await unlink(path);
  return { replacedStale: true };
}

/** A group name or numeric id to a gid (from /etc/group: Node has no getgrnam). */
export async function resolveGroup(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw invalidArgument(
    `unknown group ${JSON.stringify(group)}`,
    'pass a group name from /etc/group or a numeric gid',
  );
}

/** 0660 (or `mode`) and, when asked, the group that may connect. */
export async function secureSocket(path: string, gid: number | undefined, mode = 0o660): Promise<void> {
  await chmod(path, mode);
  if (gid !== undefined)
    try {
      await chown(path, -1, gid);
    } catch (err) {
      throw new HoistError('HOIST_DENIED', `cannot give ${path} to group ${gid}: ${(err as Error).message}`, {
        cause: err,
      });
    }
}
