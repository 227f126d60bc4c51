// Writes the entries of one layer tar into a snapshot directory, safely.
//
// Safety rests on three rules: every parent path is resolved chroot-style by RootResolver (so nothing
// outside the root is ever created, modified or followed); the final component is never followed (an
// existing file, symlink or device there is removed first, and files are opened O_EXCL|O_NOFOLLOW); and
// work deferred to the end of the layer (xattrs, directory times) only names real paths, flushed or
// forgotten before anything under them is removed.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { makeNode, readXattrsSync, setXattrs, type XattrWrite } from './fs-tools.ts';
import type { LayerEntry } from './layer-entry.ts';
import { copyUpFile, LowerDirs } from './lowers.ts';
import { cleanName, display, joinRel, type RelPath, RootResolver, refuseEntry } from './root-path.ts';
import { clearOpaqueDir, parseWhiteout, WHITEOUT_PREFIX, WhiteoutDevices } from './whiteouts.ts';

export type { LayerEntry } from './layer-entry.ts';

export interface WriterOptions {
  root: string;
  whiteouts: 'delete' | 'overlay';
  /** Overlay only: the lower layers' directories, nearest first (see lowers.ts). */
  lowers?: string[] | undefined;
  /**
   * Overlay only, instead of `lowers`: apply before the lower layers exist (parallel unpack). What the
   * lowers would have decided is left for settleDeferred() once they are there: the parent directories
   * this layer had to create are reported by finish(), and a hardlink to a file this layer does not hold
   * stops the apply with NeedsLowers (the caller applies the layer again, with its lowers).
   */
  deferLowers?: boolean;
  privileged: boolean;
  warn: (message: string) => void;
}

/** A parent directory the layer did not list but needed; settled against the lowers afterwards. */
export interface CreatedDir {
  rel: RelPath;
  /** A directory entry for it came later in the layer: its metadata is the layer's, not the lower's. */
  explicit: boolean;
}

/** Receives a regular file's body, then end(). */
export interface FileBody {
  write(chunk: Buffer): void;
  end(): void;
}

/** Thrown in deferLowers mode when only the lower layers can answer (a hardlink to a lower file). */
export class NeedsLowers extends Error {}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

interface DirTimes {
  mode: number;
  atime: number;
  mtime: number;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** A short list for summary warnings: the first few items and how many more. */
function sample(items: string[]): string {
  const shown = items.slice(0, 3).join(', ');
  return items.length > 3 ? `${shown}, and ${items.length - 3} more` : shown;
}

export class LayerWriter {
  readonly #opts: WriterOptions;
  readonly #resolver: RootResolver;
  /** Paths this layer has put in place (delete mode: opaque markers keep them). */
  readonly #layerPaths: Set<RelPath> | null;
  readonly #devices: WhiteoutDevices;
  #xattrs: XattrWrite[] = [];
  #xattrPaths = new Set<RelPath>();
  readonly #dirs = new Map<RelPath, DirTimes>();
  /** deferLowers: parent directories created by the walk, in order, and those listed later. */
  readonly #created: RelPath[] = [];
  readonly #explicit = new Set<RelPath>();
  readonly #skippedDevices: string[] = [];
  readonly #skippedXattrs: string[] = [];
  readonly #unsupportedXattrs: string[] = [];
  #userOpaque = false;

  constructor(opts: WriterOptions) {
    this.#opts = opts;
    this.#layerPaths = opts.whiteouts === 'delete' ? new Set<RelPath>() : null;
    const lowers =
      opts.whiteouts === 'overlay' && opts.lowers && !opts.deferLowers
        ? new LowerDirs(opts.lowers)
        : undefined;
    this.#resolver = new RootResolver(opts.root, {
      onCreate: (rel, lower) => this.#parentCreated(rel, lower),
      lowers,
    });
    this.#devices = new WhiteoutDevices(this.#resolver);
  }

  /**
   * Apply one entry. A regular file returns the sink for its body (write each chunk, then end());
   * everything else is done when this returns.
   */
  begin(e: LayerEntry): FileBody | null {
    const comps = cleanName(e.name);
    if (comps === null) throw refuseEntry(e.name, 'escapes the snapshot root');
    if (comps.length === 0) return null; // the root itself: its metadata belongs to the snapshotter
    const base = comps[comps.length - 1]!;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.#whiteout(e, comps.slice(0, -1), base);
      return null;
    }
    const parent = this.#resolver.resolveDir(comps.slice(0, -1), e.name, true);
    const rel = joinRel(parent!, base);
    let body: FileBody | null = null;
    switch (e.typeflag) {
      case 0:
      case 7:
        body = this.#file(e, rel);
        break;
      case 5:
        this.#dir(e, rel);
        break;
      case 2:
        this.#symlink(e, rel);
        break;
      case 1:
        this.#hardlink(e, rel);
        break;
      case 3:
      case 4:
      case 6:
        this.#node(e, rel);
        break;
      default:
        throw refuseEntry(
          e.name,
          `has tar type '${String.fromCharCode(e.typeflag + 0x30)}', which hoist cannot apply`,
        );
    }
    this.#layerPaths?.add(rel);
    return body;
  }

  /**
   * Finish the layer: xattrs, directory modes and times (after their contents), one warning per kind.
   * Returns, in deferLowers mode, the parent directories left for settleDeferred().
   */
  finish(): CreatedDir[] {
    this.#flushXattrs();
    for (const [rel, t] of this.#dirs) {
      const abs = this.#resolver.abs(rel);
      if (!this.#opts.privileged) chmodSync(abs, t.mode);
      lutimesSync(abs, t.atime, t.mtime);
    }
    this.dispose();
    const { warn } = this.#opts;
    if (this.#skippedDevices.length > 0) {
      warn(
        `skipped ${this.#skippedDevices.length} device node(s) (${sample(this.#skippedDevices)}): creating devices needs root`,
      );
    }
    if (this.#skippedXattrs.length > 0) {
      warn(
        `skipped ${this.#skippedXattrs.length} extended attribute(s) (${sample(this.#skippedXattrs)}): ` +
          'trusted.* and security.* need root, and user.* cannot be set on links or special files',
      );
    }
    if (this.#unsupportedXattrs.length > 0) {
      warn(`the filesystem does not support some extended attributes: ${sample(this.#unsupportedXattrs)}`);
    }
    if (this.#userOpaque) {
      warn(
        'opaque directories are marked with user.overlay.opaque (not trusted.overlay.opaque) because hoist ' +
          'is not running as root; mount the overlay with the userxattr option',
      );
    }
    return this.#created.map((rel) => ({ rel, explicit: this.#explicit.has(rel) }));
  }

  /** Remove helper files (whiteout templates); safe to call more than once. */
  dispose(): void {
    this.#devices.dispose();
  }

  // --- entry kinds -------------------------------------------------------------------------------

  #file(e: LayerEntry, rel: RelPath): FileBody {
    const abs = this.#resolver.abs(rel);
    const fd = this.#create(rel, () => openSync(abs, FILE_FLAGS, 0o600));
    const privileged = this.#opts.privileged;
    let open = true;
    const close = () => {
      if (open) closeSync(fd);
      open = false;
    };
    return {
      write(chunk: Buffer) {
        try {
          let off = 0;
          while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        } catch (err) {
          close();
          throw err;
        }
      },
      end: () => {
        try {
          // chown clears setuid/setgid, so the mode comes after it; times come after the last write.
          if (privileged) fchownSync(fd, e.uid, e.gid);
          fchmodSync(fd, e.mode);
          futimesSync(fd, e.atime, e.mtime);
        } finally {
          close();
        }
        this.#queueXattrs(e, rel, true);
      },
    };
  }

  #dir(e: LayerEntry, rel: RelPath): void {
    const abs = this.#resolver.abs(rel);
    try {
      mkdirSync(abs, { mode: 0o700 });
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      // A directory over a directory keeps its contents (as tar does); anything else is replaced.
      if (!lstatSync(abs).isDirectory()) {
        this.#remove(rel);
        mkdirSync(abs, { mode: 0o700 });
      }
    }
    this.#resolver.noteDir(rel);
    if (this.#opts.deferLowers) this.#explicit.add(rel);
    if (this.#opts.privileged) lchownSync(abs, e.uid, e.gid);
    // Without root, keep the directory writable until the end of the layer; the real mode comes last.
    chmodSync(abs, this.#opts.privileged ? e.mode : e.mode | 0o700);
    this.#dirs.set(rel, { mode: e.mode, atime: e.atime, mtime: e.mtime });
    this.#queueXattrs(e, rel, true);
  }

  #symlink(e: LayerEntry, rel: RelPath): void {
    // The target is stored as written; it is only ever followed by RootResolver, inside the root.
    const abs = this.#resolver.abs(rel);
    this.#create(rel, () => symlinkSync(Buffer.from(e.linkname, 'latin1'), abs));
    if (this.#opts.privileged) lchownSync(abs, e.uid, e.gid);
    lutimesSync(abs, e.atime, e.mtime);
    this.#queueXattrs(e, rel, false);
  }

  #hardlink(e: LayerEntry, rel: RelPath): void {
    const comps = cleanName(e.linkname);
    if (comps === null) {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', outside the snapshot root`);
    }
    const target = comps.length === 0 ? null : this.#resolver.resolveTarget(comps, e.name);
    const missing = () =>
      refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not in the snapshot`);
    if (target === null) throw this.#opts.deferLowers ? needsLowers(e) : missing();
    const targetAbs = this.#resolver.abs(target);
    let tst = lstatSync(targetAbs, { throwIfNoEntry: false }) ?? null;
    if (tst === null && this.#opts.deferLowers) throw needsLowers(e);
    if (tst === null) tst = this.#copyUp(e, target);
    if (tst === null) throw missing();
    if (!tst.isFile()) {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not a regular file`);
    }
    const existing = lstatSync(this.#resolver.abs(rel), { throwIfNoEntry: false });
    if (existing && existing.ino === tst.ino && existing.dev === tst.dev) return; // already that file
    this.#create(rel, () => linkSync(targetAbs, this.#resolver.abs(rel)));
  }

  /**
   * A hardlink to a file only a lower layer has: copy it into the upper directory first (content, owner,
   * mode, times, xattrs), as overlayfs does before link(2). Returns its stat, or null if there is none.
   */
  #copyUp(e: LayerEntry, target: RelPath): Stats | null {
    const lowers = this.#resolver.lowers;
    if (!lowers) return null;
    const slash = target.lastIndexOf('/');
    const dir = slash === -1 ? '' : target.slice(0, slash);
    const hit = lowers.lookup(dir, target.slice(slash + 1));
    if (hit === null) return null;
    if (hit.kind !== 'file') {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not a regular file`);
    }
    this.#resolver.resolveDir(dir === '' ? [] : dir.split('/'), e.name, true);
    const abs = this.#resolver.abs(target);
    copyUpFile(hit, abs, this.#opts.privileged);
    this.#queueXattrs({ ...e, xattrs: readXattrsSync(hit.abs) }, target, true);
    return lstatSync(abs);
  }

  #node(e: LayerEntry, rel: RelPath): void {
    const kind = e.typeflag === 6 ? 'fifo' : e.typeflag === 3 ? 'char' : 'block';
    if (kind !== 'fifo' && !this.#opts.privileged) {
      this.#skippedDevices.push(display(rel));
      return;
    }
    // mknod gets an ASCII name of our choosing in the root; the node is then renamed into place, so the
    // tool never resolves an entry-controlled path.
    const tmp = `.hoist-node-${randomBytes(8).toString('hex')}`;
    makeNode(this.#resolver.abs(tmp).toString(), kind, e.mode, e.devmajor, e.devminor);
    const abs = this.#resolver.abs(rel);
    try {
      this.#remove(rel);
      renameSync(this.#resolver.abs(tmp), abs);
    } catch (err) {
      rmSync(this.#resolver.abs(tmp), { force: true });
      throw err;
    }
    if (this.#opts.privileged) lchownSync(abs, e.uid, e.gid);
    chmodSync(abs, e.mode);
    lutimesSync(abs, e.atime, e.mtime);
    this.#queueXattrs(e, rel, false);
  }

  #whiteout(e: LayerEntry, parentComps: string[], base: string): void {
    const wh = parseWhiteout(base);
    if (wh === null) throw refuseEntry(e.name, 'is not a valid whiteout');
    if (wh.kind === 'meta') return;
    const overlay = this.#opts.whiteouts === 'overlay';
    // The overlay form records the whiteout in the upper directory, so its parent must exist; the delete
    // form has nothing to do when the parent is missing.
    const dir = this.#resolver.resolveDir(parentComps, e.name, overlay);
    if (dir === null) return;
    if (wh.kind === 'opaque') {
      if (overlay) {
        const name = this.#opts.privileged ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
        this.#userOpaque ||= !this.#opts.privileged;
        this.#pushXattr(dir, name, Buffer.from('y'));
        return;
      }
      this.#flushXattrs();
      const removed = clearOpaqueDir(this.#resolver, dir, this.#layerPaths!);
      if (removed.length > 0) this.#forgetDirs(removed);
      return;
    }
    const rel = joinRel(dir, wh.name);
    this.#remove(rel);
    if (overlay) this.#devices.create(rel, e.uid, e.gid, this.#opts.privileged);
  }

  // --- helpers -----------------------------------------------------------------------------------

  /** A missing parent directory was created: it is this layer's, and mirrors the lower one if any. */
  #parentCreated(rel: RelPath, lower: Stats | undefined): void {
    this.#layerPaths?.add(rel);
    if (this.#opts.deferLowers) this.#created.push(rel);
    if (!lower) return;
    const abs = this.#resolver.abs(rel);
    if (this.#opts.privileged) lchownSync(abs, lower.uid, lower.gid);
    const mode = lower.mode & 0o7777;
    chmodSync(abs, this.#opts.privileged ? mode : mode | 0o700);
    this.#dirs.set(rel, { mode, atime: lower.atime.getTime() / 1000, mtime: lower.mtime.getTime() / 1000 });
  }

  /** Run `make` (which creates `rel` exclusively); when something is already there, replace it once. */
  #create<T>(rel: RelPath, make: () => T): T {
    try {
      return make();
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    this.#remove(rel);
    return make();
  }

  /** Remove whatever is at `rel` (a directory with its contents), never following a symlink. */
  #remove(rel: RelPath): void {
    const abs = this.#resolver.abs(rel);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st === undefined) return;
    if (st.isDirectory()) {
      // Deferred xattrs may name paths below it: set them now, while the paths are still ours.
      this.#flushXattrs();
      rmSync(abs, { recursive: true, force: true });
      this.#forgetDirs([rel]);
    } else {
      if (this.#xattrPaths.has(rel)) this.#flushXattrs();
      unlinkSync(abs);
    }
  }

  /** Drop deferred directory times under removed directories; a new path there may be a symlink. */
  #forgetDirs(removed: RelPath[]): void {
    this.#resolver.invalidate();
    const gone = new Set(removed);
    for (const rel of this.#dirs.keys()) {
      for (let p = rel; p !== ''; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) {
        if (gone.has(p)) {
          this.#dirs.delete(rel);
          break;
        }
      }
    }
  }

  #queueXattrs(e: LayerEntry, rel: RelPath, userAllowed: boolean): void {
    for (const [name, value] of e.xattrs) {
      const user = name.startsWith('user.');
      if ((user && !userAllowed) || (!user && !this.#opts.privileged)) {
        this.#skippedXattrs.push(`${display(name)} on ${display(rel)}`);
        continue;
      }
      this.#pushXattr(rel, name, value);
    }
  }

  #pushXattr(rel: RelPath, name: string, value: Buffer): void {
    this.#xattrs.push({ path: this.#resolver.abs(rel).toString('latin1'), name, value });
    this.#xattrPaths.add(rel);
  }

  #flushXattrs(): void {
    if (this.#xattrs.length === 0) return;
    const writes = this.#xattrs;
    this.#xattrs = [];
    this.#xattrPaths = new Set();
    this.#unsupportedXattrs.push(...setXattrs(writes).unsupported);
  }
}

function needsLowers(e: LayerEntry): NeedsLowers {
  return new NeedsLowers(`'${display(e.name)}' is a hardlink to '${display(e.linkname)}', not in this layer`);
}

/**
 * After a deferLowers apply, once the lower layers exist: give each parent directory the layer created
 * the metadata of the lower directory it stands for (as the walk with lowers would have), or answer
 * false when the lowers would have resolved the path differently (a symlink or a file there): the layer
 * must then be applied again with its lowers.
 */
export function settleDeferred(
  root: string,
  lowerDirs: string[],
  created: CreatedDir[],
  privileged: boolean,
): boolean {
  const lowers = new LowerDirs(lowerDirs);
  const resolver = new RootResolver(root);
  const dirs: Array<[Buffer, Stats]> = [];
  for (const { rel, explicit } of created) {
    const slash = rel.lastIndexOf('/');
    const hit = lowers.lookup(slash === -1 ? '' : rel.slice(0, slash), rel.slice(slash + 1));
    if (hit === null) continue;
    if (hit.kind !== 'dir') return false;
    if (!explicit) dirs.push([resolver.abs(rel), hit.stat]);
  }
  // Deepest first, so setting a directory's times is not undone by work in a directory below it.
  for (const [abs, st] of dirs.reverse()) {
    // The layer may have replaced the directory since (a whiteout, a symlink): never follow anything.
    if (!lstatSync(abs, { throwIfNoEntry: false })?.isDirectory()) continue;
    if (privileged) lchownSync(abs, st.uid, st.gid);
    chmodSync(abs, st.mode & 0o7777);
    lutimesSync(abs, st.atime, st.mtime);
  }
  return true;
}
