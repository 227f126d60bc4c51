// The layers below an overlayfs upper directory, read-only, for applying a layer straight into the upper
// directory (containerd's `WithParents`). Without them the applier only sees what this layer wrote; with
// them, a path missing from the upper directory is looked up the way overlayfs would find it:
// - a missing parent directory is created with the metadata of the lower one (containerd's mkparent),
//   so the merged view does not show a 0755 root-owned directory instead;
// - a symlink in a lower layer is followed (inside the root) when a later layer writes through it;
// - a hardlink to a file in a lower layer copies that file up first, as overlayfs does on link(2).
//
// Lookups never follow anything on the host: every component is checked with lstat in each lower
// directory. Not modelled: opaque markers in lower layers (reading trusted.overlay.opaque needs a
// process per directory), so a lookup can see through one.
import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  readlinkSync,
  type Stats,
} from 'node:fs';
import { resolve } from 'node:path';
import type { RelPath } from './root-path.ts';

export type LowerHit =
  | { kind: 'dir'; stat: Stats; abs: Buffer }
  | { kind: 'symlink'; target: string }
  | { kind: 'file'; stat: Stats; abs: Buffer }
  | { kind: 'other' };

type State = 'dir' | 'missing' | 'other';

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function lstatOrNull(p: Buffer): Stats | null {
  try {
    return lstatSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

export class LowerDirs {
  readonly #dirs: Buffer[];
  /** Per lower directory: what each looked-up path is (lower directories do not change during apply). */
  readonly #states: Array<Map<RelPath, State>>;

  /** `dirs`: the lower layers' directories, nearest (the parent snapshot) first. */
  constructor(dirs: string[]) {
    this.#dirs = dirs.map((d) => Buffer.from(resolve(d)));
    this.#states = dirs.map(() => new Map());
  }

  get size(): number {
    return this.#dirs.length;
  }

  #abs(i: number, rel: RelPath): Buffer {
    return rel === '' ? this.#dirs[i]! : Buffer.concat([this.#dirs[i]!, Buffer.from(`/${rel}`, 'latin1')]);
  }

  /** Is `rel` a directory in lower i, reached through directories only (no symlinks followed)? */
  #state(i: number, rel: RelPath): State {
    if (rel === '') return 'dir';
    const memo = this.#states[i]!.get(rel);
    if (memo !== undefined) return memo;
    const slash = rel.lastIndexOf('/');
    const up = this.#state(i, slash === -1 ? '' : rel.slice(0, slash));
    let state: State = up;
    if (up === 'dir') {
      const st = lstatOrNull(this.#abs(i, rel));
      state = st === null ? 'missing' : st.isDirectory() ? 'dir' : 'other';
    }
    this.#states[i]!.set(rel, state);
    return state;
  }

  /**
   * What the merged view below the upper directory has at `dir/name` (`dir` being a directory there):
   * the nearest lower layer that has the path decides; a whiteout or a non-directory at `dir` hides
   * everything further down. Null when nothing is there.
   */
  lookup(dir: RelPath, name: string): LowerHit | null {
    const rel = dir === '' ? name : `${dir}/${name}`;
    for (let i = 0; i < this.#dirs.length; i++) {
      const at = this.#state(i, dir);
      if (at === 'missing') continue;
      if (at === 'other') return null;
      const abs = this.#abs(i, rel);
      const st = lstatOrNull(abs);
      if (st === null) continue;
      if (isWhiteout(st)) return null;
      if (st.isDirectory()) return { kind: 'dir', stat: st, abs };
      if (st.isSymbolicLink())
        return { kind: 'symlink', target: readlinkSync(abs, 'buffer').toString('latin1') };
      if (st.isFile()) return { kind: 'file', stat: st, abs };
      return { kind: 'other' };
    }
    return null;
  }
}

/** Copy a lower layer's file to `dest` (which must not exist) with its owner, mode and times. */
export function copyUpFile(hit: { stat: Stats; abs: Buffer }, dest: Buffer, chown: boolean): void {
  // A reflink where the filesystem has them (btrfs, xfs): instant and shares the blocks.
  copyFileSync(hit.abs, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  if (chown) lchownSync(dest, hit.stat.uid, hit.stat.gid); // before chmod: chown clears setuid
  chmodSync(dest, hit.stat.mode & 0o7777);
  lutimesSync(dest, hit.stat.atime, hit.stat.mtime);
}
