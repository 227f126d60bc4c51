// What differs between snapshotters: how a new snapshot's directory starts, which mounts present it,
// and how the applier stores whiteouts. Everything else (records, leases, write safety) is shared
// (src/snapshots/snapshotter.ts).
import type { Mount, SnapshotKind } from '../api/snapshots.ts';

export interface SnapshotDirs {
  kind: SnapshotKind;
  /** The snapshot's own tree (native: the whole filesystem; overlayfs: the upper layer). */
  fs: string;
  /** overlayfs work directory (same filesystem as fs). */
  work: string;
}

export interface SnapshotDriver {
  readonly name: 'native' | 'overlayfs';
  /** A snapshot's directory does not depend on its parent's (so a parent can be given at commit). */
  readonly rebase: boolean;
  /**
   * Fill a new snapshot's fs/ before it is recorded; `parentFs` is the committed parent's fs/. With
   * `replacesFiles` (SnapshotOptions) the parent's files may be shared instead of copied.
   */
  populate(
    fs: string,
    parentFs: string | undefined,
    opts: { signal?: AbortSignal | undefined; replacesFiles?: boolean | undefined },
  ): Promise<void>;
  /** Mounts for an active or view snapshot; `parents` are the parents' fs/ dirs, nearest first. */
  mounts(snapshot: SnapshotDirs, parents: readonly string[]): Mount[];
  /** How the applier stores whiteouts in an active snapshot with or without parents. */
  whiteouts(hasParent: boolean): 'delete' | 'overlay';
}
