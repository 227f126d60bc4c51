// The native snapshotter: every snapshot is a complete directory tree. A child starts as a copy of its
// parent (`cp -a --reflink=auto`, so copy-on-write filesystems share the blocks); mounts are bind mounts.
// Works everywhere, costs a full copy per layer where reflinks are not available. Except when the layer
// applier prepares a layer: it replaces every file it writes (unlink, create), never writing into one,
// so there the child's files are hardlinks to the parent's (`cp -al`): directories are copied, file data
// is shared, and a chain of N layers no longer copies its base N-1 times. Views are full copies, as in
// containerd.
import type { Mount } from '../api/snapshots.ts';
import { childProcess } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';
import type { SnapshotDirs, SnapshotDriver } from './driver.ts';

/** Copy the contents of `from` into the existing directory `to`, preserving everything cp -a preserves. */
export function copyTree(
  from: string,
  to: string,
  opts: { signal?: AbortSignal | undefined; link?: boolean | undefined } = {},
): Promise<void> {
  const signal = opts.signal;
  const how = opts.link ? '--link' : '--reflink=auto';
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn('cp', ['-a', how, `${from}/.`, `${to}/`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.on('error', (err) => {
      if (err.name === 'AbortError')
        reject(
          new HoistError('HOIST_CANCELLED', 'copying the parent snapshot was cancelled', { cause: err }),
        );
      else
        reject(
          new HoistError('HOIST_INTERNAL', `cannot run cp to copy the parent snapshot: ${err.message}`, {
            cause: err,
          }),
        );
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new HoistError(
            'HOIST_INTERNAL',
            `copying the parent snapshot ${from} failed: ${stderr.trim() || `cp exited with ${code}`}`,
            {
              hint: 'check free disk space and that the store root is writable',
            },
          ),
        );
    });
  });
}

export const nativeDriver: SnapshotDriver = {
  name: 'native',
  rebase: false,
  async populate(fs, parentFs, opts): Promise<void> {
    if (parentFs !== undefined)
      await copyTree(parentFs, fs, { signal: opts.signal, link: opts.replacesFiles });
  },
  mounts(s: SnapshotDirs): Mount[] {
    return [{ type: 'bind', source: s.fs, options: ['rbind', s.kind === 'active' ? 'rw' : 'ro'] }];
  },
  whiteouts(): 'delete' {
    return 'delete';
  },
};
