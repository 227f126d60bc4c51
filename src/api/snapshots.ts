// The Snapshotter interface: containerd's snapshots.Snapshotter as seen through its metadata store
// (names per namespace, leases, labels), plus what hoist's layer applier needs to write a layer without
// mounting anything. The gRPC Snapshots service is a thin adapter over this.
import type { Context } from '../core/context.ts';

export type SnapshotKind = 'active' | 'view' | 'committed';

/** containerd's snapshots.Info (wire: Info{name, parent, kind, created_at, updated_at, labels}). */
export interface SnapshotInfo {
  kind: SnapshotKind;
  /** The key (active, view) or name (committed). */
  name: string;
  /** Key of the committed parent; absent for a base snapshot. */
  parent?: string;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

/** containerd's snapshots.Usage: bytes of regular files (each inode once) and number of inodes. */
export interface SnapshotUsage {
  size: number;
  inodes: number;
}

/** containerd.types.Mount: what to pass to mount(8) (`mount -t type -o options source target`). */
export interface Mount {
  type: string;
  source: string;
  /** Sub-path of the mount point (multi-mount stacks); absent = the mount point itself. */
  target?: string;
  options: string[];
}

/** Where the applier writes a layer for an active snapshot, and how it must store whiteouts. */
export interface ApplyTarget {
  dir: string;
  /**
   * `delete`: apply whiteouts by removing what they name (the directory is the whole tree).
   * `overlay`: store them as overlayfs expects (0:0 character device, trusted.overlay.opaque=y).
   */
  whiteouts: 'delete' | 'overlay';
  /** The parents' directories, nearest first, when they stay separate layers (overlayfs); else empty. */
  parents: string[];
}

export interface LayerDirs {
  dir: string;
  parents: string[];
  /** true when `dir` holds only this snapshot's changes (overlayfs), false for a full tree (native). */
  layered: boolean;
}

export interface SnapshotOptions {
  labels?: Record<string, string>;
  /**
   * Local snapshotters, prepare only (never over the wire): the writer of this snapshot replaces files
   * and never modifies one in place (hoist's layer applier: every file is unlinked and created anew), so
   * a native child may hardlink its parent's files instead of copying them. A snapshot that a container
   * or a user writes into must not set this: an in-place write would change the parent too.
   */
  replacesFiles?: boolean;
}

export interface CommitOptions extends SnapshotOptions {
  /**
   * Rebase: commit an active snapshot that was prepared without a parent on top of the committed
   * `parent` (containerd 2's "rebase" capability). Only where `rebase` is true; lets layers be applied
   * in parallel, each into its own directory, and stacked in order afterwards.
   */
  parent?: string;
}

export interface CleanupResult {
  /** Backend directories removed (crash leftovers with no record). */
  removed: number;
}

export interface Snapshotter {
  readonly name: 'native' | 'overlayfs';
  /** Whether commit takes a `parent` (layers stay separate directories: overlayfs, not native). */
  readonly rebase: boolean;
  /**
   * Create an active (writable) snapshot on top of the committed `parent`. `snapshot "<key>": already
   * exists` (the lease still gets the key), `parent snapshot <p> does not exist: not found`, `parent "<p>"
   * is not committed snapshot: invalid argument`.
   */
  prepare(ctx: Context, key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Like prepare, but read-only; cannot be committed. */
  view(ctx: Context, key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  /** Mounts of an active or view snapshot. */
  mounts(ctx: Context, key: string): Promise<Mount[]>;
  /** Turn the active snapshot `key` into the committed `name`; labels replace the active's labels. */
  commit(ctx: Context, name: string, key: string, opts?: CommitOptions): Promise<void>;
  /** `cannot remove snapshot with child: failed precondition` while anything is built on it. */
  remove(ctx: Context, key: string): Promise<void>;
  /** `snapshot <key> does not exist: not found`. */
  stat(ctx: Context, key: string): Promise<SnapshotInfo>;
  /** Only labels are mutable: fieldpaths `labels`, `labels.<k>`; none = replace all labels. */
  update(
    ctx: Context,
    info: Pick<SnapshotInfo, 'name' | 'labels'>,
    fieldpaths?: string[],
  ): Promise<SnapshotInfo>;
  /** containerd filters over `kind`, `name`, `parent`, `labels.<k>`. */
  list(ctx: Context, filters?: string[]): Promise<SnapshotInfo[]>;
  /** Committed snapshots: cached after the first walk; active ones are walked every time. */
  usage(ctx: Context, key: string): Promise<SnapshotUsage>;
  /** Remove backend directories that have no record (left by crashes). Not namespaced. */
  cleanup(ctx: Context): Promise<CleanupResult>;
}

/**
 * A snapshotter whose directories are this process's (the embedded store's): what the layer applier and
 * the differ need beyond containerd's interface. A daemon's snapshotter has none of this; `hasDirectories`
 * tells them apart.
 */
export interface DirectorySnapshotter extends Snapshotter {
  /** The directory a layer is extracted into for the active snapshot `key`. */
  applyTarget(ctx: Context, key: string): Promise<ApplyTarget>;
  /** The snapshot's own directory and its parents' (nearest first), for computing its layer (diff). */
  dirs(ctx: Context, key: string): Promise<LayerDirs>;
}

export function hasDirectories(sn: Snapshotter): sn is DirectorySnapshotter {
  return 'applyTarget' in sn && 'dirs' in sn;
}
