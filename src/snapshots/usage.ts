// Disk usage of a snapshot directory, as containerd reports it: bytes of regular files, each inode
// counted once (hardlinks), and the number of distinct inodes (directories, links and devices included).
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotUsage } from '../api/snapshots.ts';

/** Stat this many entries of one directory at a time: fast on big directories, bounded file handles. */
const STAT_BATCH = 64;

export async function diskUsage(root: string, signal?: AbortSignal): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  const count = (st: { dev: number; ino: number; size: number; isFile(): boolean }) => {
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    if (st.isFile()) size += st.size;
  };
  count(await lstat(root));
  const dirs = [root];
  while (dirs.length > 0) {
    signal?.throwIfAborted();
    const dir = dirs.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // Removed while walking (an active snapshot being written): count what is there.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (let i = 0; i < entries.length; i += STAT_BATCH) {
      const batch = entries.slice(i, i + STAT_BATCH);
      const stats = await Promise.all(
        batch.map((e) =>
          lstat(join(dir, e.name)).catch((err: unknown) => {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
            throw err;
          }),
        ),
      );
      for (const [j, st] of stats.entries()) {
        if (!st) continue;
        count(st);
        if (st.isDirectory()) dirs.push(join(dir, batch[j]!.name));
      }
    }
  }
  return { size, inodes: seen.size };
}
