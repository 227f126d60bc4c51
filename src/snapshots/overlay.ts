// The overlayfs snapshotter: one directory per layer, stacked at mount time. A snapshot's fs/ holds only
// what its layer changed (whiteouts as 0:0 character devices, opaque directories marked with
// trusted.overlay.opaque=y), so preparing on top of any chain is instant and layers share nothing.
// Mount shapes follow containerd's: no parent → bind of fs/; a view of one parent → read-only bind of
// the parent; otherwise an overlay with lowerdir = parents, nearest first.

import type { Mount } from '../api/snapshots.ts';
import type { SnapshotDirs, SnapshotDriver } from './driver.ts';

export const overlayDriver: SnapshotDriver = {
  name: 'overlayfs',
  rebase: true,
  async populate(): Promise<void> {
    // Nothing to copy: the parents stay where they are and become lower directories.
  },
  mounts(s: SnapshotDirs, parents: readonly string[]): Mount[] {
    const rw = s.kind === 'active' ? 'rw' : 'ro';
    if (parents.length === 0) return [{ type: 'bind', source: s.fs, options: ['rbind', rw] }];
    if (s.kind !== 'active') {
      if (parents.length === 1) return [{ type: 'bind', source: parents[0]!, options: ['rbind', 'ro'] }];
      return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${parents.join(':')}`] }];
    }
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${parents.join(':')}`, `upperdir=${s.fs}`, `workdir=${s.work}`],
      },
    ];
  },
  whiteouts(hasParent: boolean): 'delete' | 'overlay' {
    // A base layer has nothing below it to hide: applying its whiteouts as deletions gives the same tree.
    return hasParent ? 'overlay' : 'delete';
  },
};
