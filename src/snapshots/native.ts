// The native snapshotter: every snapshot is a complete directory tree. A child starts as a copy of its
// parent (`cp -a --reflink=auto`, so copy-on-write filesystems share the blocks); mounts are bind mounts.
// Works everywhere, costs a full copy per layer where reflinks are not available.
import { spawn } from 'node:child_process';
import { HoistError } from '../core/errors.ts';
import type { SnapshotDirs, SnapshotDriver } from './driver.ts';
import type { Mount } from './types.ts';

/** Copy the contents of `from` into the existing directory `to`, preserving everything cp -a preserves. */
export function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', ['-a', '--reflink=auto', `${from}/.`, `${to}/`], {
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
  async populate(fs: string, parentFs: string | undefined, signal?: AbortSignal): Promise<void> {
    if (parentFs !== undefined) await copyTree(parentFs, fs, signal);
  },
  mounts(s: SnapshotDirs): Mount[] {
    return [{ type: 'bind', source: s.fs, options: ['rbind', s.kind === 'active' ? 'rw' : 'ro'] }];
  },
  whiteouts(): 'delete' {
    return 'delete';
  },
};
