// systemd socket activation (sd_listen_fds(3)): systemd binds the socket (hoist.socket), starts the
// daemon with it open as fd 3 and says so in LISTEN_FDS (how many, from fd 3 on), LISTEN_PID (for which
// process: a variable inherited by a child is not meant for the child) and LISTEN_FDNAMES (their
// FileDescriptorName=s, `:`-separated). The daemon then serves on that socket instead of binding one,
// and leaves the file alone on stop: systemd owns it, and keeps it accepting (queueing) while the
// daemon restarts.
import { readFile, readlink } from 'node:fs/promises';
import { failedPrecondition } from '../core/errors.ts';

/** SD_LISTEN_FDS_START */
export const LISTEN_FDS_START = 3;

export interface ListenFd {
  fd: number;
  /** Its FileDescriptorName= (systemd's default is the socket unit's name). */
  name: string;
}

/**
 * The fds systemd passed to this process, with the variables unset (as sd_listen_fds(1) does, so they
 * do not leak into children). None when the variables are absent or name another pid.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ListenFd[] {
  const { LISTEN_PID: forPid, LISTEN_FDS: count, LISTEN_FDNAMES: names } = env;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (forPid === undefined || count === undefined) return [];
  if (!/^\d+$/.test(forPid) || Number(forPid) !== pid) return [];
  if (!/^\d+$/.test(count))
    throw failedPrecondition(`LISTEN_FDS=${JSON.stringify(count)} is not a number of file descriptors`);
  const nameList = names === undefined ? [] : names.split(':');
  return Array.from({ length: Number(count) }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: nameList[i] ?? 'unknown',
  }));
}

/**
 * The one fd to serve on: the only one passed, or the one named `name` when there are several (a socket
 * unit with more than one Listen… line). hoist serves a single socket; which one must be unambiguous.
 */
export function pickListenFd(fds: readonly ListenFd[], name: string): ListenFd | undefined {
  if (fds.length <= 1) return fds[0];
  const named = fds.filter((f) => f.name === name);
  if (named.length === 1) return named[0];
  throw failedPrecondition(
    `systemd passed ${fds.length} sockets (${fds.map((f) => f.name).join(', ')}) and ${named.length === 0 ? 'none' : 'more than one'} is named ${JSON.stringify(name)}`,
    `give the socket hoist serves FileDescriptorName=${name} in the socket unit`,
  );
}

/**
 * The file-system path a passed unix socket is bound to, from /proc/net/unix by the socket's inode (Node
 * cannot getsockname a socket it did not bind). Undefined when it is not a unix socket with a path (an
 * abstract or a TCP socket) or /proc cannot tell.
 */
export async function boundPath(fd: number): Promise<string | undefined> {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/self/fd/${fd}`));
    if (!m) return undefined;
    // Num RefCount Protocol Flags Type St Inode Path
    for (const line of (await readFile('/proc/net/unix', 'utf8')).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[6] === m[1] && cols[7]?.startsWith('/')) return cols.slice(7).join(' ');
    }
  } catch {
    // No /proc (a container without it): the caller falls back to the configured address.
  }
  return undefined;
}
