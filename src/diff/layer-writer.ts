// Writes the entries of one layer tar into a snapshot directory, safely.
//
// Safety rests on three rules: every parent path is resolved chroot-style by RootResolver (so nothing
// outside the root is ever created, modified or followed); the final component is never followed (an
// existing file, symlink or device there is removed first, and files are opened O_EXCL|O_NOFOLLOW); and
// work deferred to the end of the layer (xattrs, directory times) only names real paths, flushed or
// forgotten before anything under them is removed.
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  rename,
  rm,
  symlink,
  unlink,
} from 'node:fs/promises';
import { makeNode, readXattrs, setXattrs, type XattrWrite } from './fs-tools.ts';
import { copyUpFile, LowerDirs } from './lowers.ts';
import { cleanName, display, joinRel, type RelPath, RootResolver, refuseEntry } from './root-path.ts';
import { clearOpaqueDir, parseWhiteout, WHITEOUT_PREFIX, WhiteoutDevices } from './whiteouts.ts';

/** One tar entry, decoded: names are latin1 byte strings, times are seconds. */
export interface LayerEntry {
  name: string;
  linkname: string;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  atime: number;
  devmajor: number;
  devminor: number;
  xattrs: Array<[name: string, value: Buffer]>;
}

export interface WriterOptions {
  root: string;
  whiteouts: 'delete' | 'overlay';
  /** Overlay only: the lower layers' directories, nearest first (see lowers.ts). */
  lowers?: string[] | undefined;
  privileged: boolean;
  signal?: AbortSignal | undefined;
  warn: (message: string) => void;
}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** File bodies are gathered into writes of about this size (bounded memory, few syscalls). */
const WRITE_BATCH = 1024 * 1024;

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
  readonly #skippedDevices: string[] = [];
  readonly #skippedXattrs: string[] = [];
  readonly #unsupportedXattrs: string[] = [];
  #userOpaque = false;

  constructor(opts: WriterOptions) {
    this.#opts = opts;
    this.#layerPaths = opts.whiteouts === 'delete' ? new Set<RelPath>() : null;
    this.#resolver = new RootResolver(opts.root, {
      onCreate: (rel, lower) => this.#parentCreated(rel, lower),
      lowers: opts.whiteouts === 'overlay' && opts.lowers ? new LowerDirs(opts.lowers) : undefined,
    });
    this.#devices = new WhiteoutDevices(this.#resolver, opts.signal);
  }

  /** Apply one entry; `body` must be consumed (the caller drains what is left). */
  async write(e: LayerEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const comps = cleanName(e.name);
    if (comps === null) throw refuseEntry(e.name, 'escapes the snapshot root');
    if (comps.length === 0) return; // the root itself: its metadata belongs to the snapshotter
    const base = comps[comps.length - 1]!;
    if (base.startsWith(WHITEOUT_PREFIX)) return this.#whiteout(e, comps.slice(0, -1), base);
    const parent = await this.#resolver.resolveDir(comps.slice(0, -1), e.name, true);
    const rel = joinRel(parent!, base);
    switch (e.typeflag) {
      case 0:
      case 7:
        await this.#file(e, rel, body);
        break;
      case 5:
        await this.#dir(e, rel);
        break;
      case 2:
        await this.#symlink(e, rel);
        break;
      case 1:
        await this.#hardlink(e, rel);
        break;
      case 3:
      case 4:
      case 6:
        await this.#node(e, rel);
        break;
      default:
        throw refuseEntry(
          e.name,
          `has tar type '${String.fromCharCode(e.typeflag + 0x30)}', which hoist cannot apply`,
        );
    }
    this.#layerPaths?.add(rel);
  }

  /** Finish the layer: xattrs, directory modes and times (after their contents), one warning per kind. */
  async finish(): Promise<void> {
    await this.#flushXattrs();
    const dirs = [...this.#dirs];
    for (let i = 0; i < dirs.length; i += 32) {
      await Promise.all(
        dirs.slice(i, i + 32).map(async ([rel, t]) => {
          const abs = this.#resolver.abs(rel);
          if (!this.#opts.privileged) await chmod(abs, t.mode);
          await lutimes(abs, t.atime, t.mtime);
        }),
      );
    }
    await this.dispose();
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
  }

  /** Remove helper files (whiteout templates); safe to call more than once. */
  async dispose(): Promise<void> {
    await this.#devices.dispose();
  }

  // --- entry kinds -------------------------------------------------------------------------------

  async #file(e: LayerEntry, rel: RelPath, body: AsyncIterable<Buffer>): Promise<void> {
    const abs = this.#resolver.abs(rel);
    const fh = await this.#create(rel, () => open(abs, FILE_FLAGS, 0o600));
    try {
      let batch: Buffer[] = [];
      let batched = 0;
      for await (const chunk of body) {
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH) {
          await fh.writev(batch);
          batch = [];
          batched = 0;
        }
      }
      if (batch.length > 0) await fh.writev(batch);
      // chown clears setuid/setgid, so the mode comes after it; times come after the last write.
      if (this.#opts.privileged) await fh.chown(e.uid, e.gid);
      await fh.chmod(e.mode);
      await fh.utimes(e.atime, e.mtime);
    } finally {
      await fh.close();
    }
    this.#queueXattrs(e, rel, true);
  }

  async #dir(e: LayerEntry, rel: RelPath): Promise<void> {
    const abs = this.#resolver.abs(rel);
    try {
      await mkdir(abs, { mode: 0o700 });
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      // A directory over a directory keeps its contents (as tar does); anything else is replaced.
      if (!(await lstat(abs)).isDirectory()) {
        await this.#remove(rel);
        await mkdir(abs, { mode: 0o700 });
      }
    }
    this.#resolver.noteDir(rel);
    if (this.#opts.privileged) await lchown(abs, e.uid, e.gid);
    // Without root, keep the directory writable until the end of the layer; the real mode comes last.
    await chmod(abs, this.#opts.privileged ? e.mode : e.mode | 0o700);
    this.#dirs.set(rel, { mode: e.mode, atime: e.atime, mtime: e.mtime });
    this.#queueXattrs(e, rel, true);
  }

  async #symlink(e: LayerEntry, rel: RelPath): Promise<void> {
    // The target is stored as written; it is only ever followed by RootResolver, inside the root.
    const abs = this.#resolver.abs(rel);
    await this.#create(rel, () => symlink(Buffer.from(e.linkname, 'latin1'), abs));
    if (this.#opts.privileged) await lchown(abs, e.uid, e.gid);
    await lutimes(abs, e.atime, e.mtime);
    this.#queueXattrs(e, rel, false);
  }

  async #hardlink(e: LayerEntry, rel: RelPath): Promise<void> {
    const comps = cleanName(e.linkname);
    if (comps === null) {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', outside the snapshot root`);
    }
    const target = comps.length === 0 ? null : await this.#resolver.resolveTarget(comps, e.name);
    const missing = () =>
      refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not in the snapshot`);
    if (target === null) throw missing();
    const targetAbs = this.#resolver.abs(target);
    let tst = await lstat(targetAbs).catch(() => null);
    if (tst === null) tst = await this.#copyUp(e, target);
    if (tst === null) throw missing();
    if (!tst.isFile()) {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not a regular file`);
    }
    const existing = await lstat(this.#resolver.abs(rel)).catch(() => null);
    if (existing && existing.ino === tst.ino && existing.dev === tst.dev) return; // already that file
    await this.#create(rel, () => link(targetAbs, this.#resolver.abs(rel)));
  }

  /**
   * A hardlink to a file only a lower layer has: copy it into the upper directory first (content, owner,
   * mode, times, xattrs), as overlayfs does before link(2). Returns its stat, or null if there is none.
   */
  async #copyUp(e: LayerEntry, target: RelPath): Promise<Stats | null> {
    const lowers = this.#resolver.lowers;
    if (!lowers) return null;
    const slash = target.lastIndexOf('/');
    const dir = slash === -1 ? '' : target.slice(0, slash);
    const hit = await lowers.lookup(dir, target.slice(slash + 1));
    if (hit === null) return null;
    if (hit.kind !== 'file') {
      throw refuseEntry(e.name, `is a hardlink to '${display(e.linkname)}', which is not a regular file`);
    }
    await this.#resolver.resolveDir(dir === '' ? [] : dir.split('/'), e.name, true);
    const abs = this.#resolver.abs(target);
    await copyUpFile(hit, abs, this.#opts.privileged);
    const xattrs = await readXattrs(hit.abs, this.#opts.signal);
    this.#queueXattrs({ ...e, xattrs }, target, true);
    return lstat(abs);
  }

  async #node(e: LayerEntry, rel: RelPath): Promise<void> {
    const kind = e.typeflag === 6 ? 'fifo' : e.typeflag === 3 ? 'char' : 'block';
    if (kind !== 'fifo' && !this.#opts.privileged) {
      this.#skippedDevices.push(display(rel));
      return;
    }
    // mknod gets an ASCII name of our choosing in the root; the node is then renamed into place, so the
    // tool never resolves an entry-controlled path.
    const tmp = `.hoist-node-${randomBytes(8).toString('hex')}`;
    const { devmajor, devminor, mode } = e;
    await makeNode(this.#resolver.abs(tmp).toString(), kind, mode, devmajor, devminor, this.#opts.signal);
    const abs = this.#resolver.abs(rel);
    try {
      await this.#remove(rel);
      await rename(this.#resolver.abs(tmp), abs);
    } catch (err) {
      await rm(this.#resolver.abs(tmp), { force: true });
      throw err;
    }
    if (this.#opts.privileged) await lchown(abs, e.uid, e.gid);
    await chmod(abs, e.mode);
    await lutimes(abs, e.atime, e.mtime);
    this.#queueXattrs(e, rel, false);
  }

  async #whiteout(e: LayerEntry, parentComps: string[], base: string): Promise<void> {
    const wh = parseWhiteout(base);
    if (wh === null) throw refuseEntry(e.name, 'is not a valid whiteout');
    if (wh.kind === 'meta') return;
    const overlay = this.#opts.whiteouts === 'overlay';
    // The overlay form records the whiteout in the upper directory, so its parent must exist; the delete
    // form has nothing to do when the parent is missing.
    const dir = await this.#resolver.resolveDir(parentComps, e.name, overlay);
    if (dir === null) return;
    if (wh.kind === 'opaque') {
      if (overlay) {
        const name = this.#opts.privileged ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
        this.#userOpaque ||= !this.#opts.privileged;
        this.#pushXattr(dir, name, Buffer.from('y'));
        return;
      }
      await this.#flushXattrs();
      const removed = await clearOpaqueDir(this.#resolver, dir, this.#layerPaths!);
      if (removed.length > 0) this.#forgetDirs(removed);
      return;
    }
    const rel = joinRel(dir, wh.name);
    await this.#remove(rel);
    if (overlay) await this.#devices.create(rel, e.uid, e.gid, this.#opts.privileged);
  }

  // --- helpers -----------------------------------------------------------------------------------

  /** A missing parent directory was created: it is this layer's, and mirrors the lower one if any. */
  async #parentCreated(rel: RelPath, lower: Stats | undefined): Promise<void> {
    this.#layerPaths?.add(rel);
    if (!lower) return;
    const abs = this.#resolver.abs(rel);
    if (this.#opts.privileged) await lchown(abs, lower.uid, lower.gid);
    const mode = lower.mode & 0o7777;
    await chmod(abs, this.#opts.privileged ? mode : mode | 0o700);
    this.#dirs.set(rel, { mode, atime: lower.atime.getTime() / 1000, mtime: lower.mtime.getTime() / 1000 });
  }

  /** Run `make` (which creates `rel` exclusively); when something is already there, replace it once. */
  async #create<T>(rel: RelPath, make: () => Promise<T>): Promise<T> {
    try {
      return await make();
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    await this.#remove(rel);
    return make();
  }

  /** Remove whatever is at `rel` (a directory with its contents), never following a symlink. */
  async #remove(rel: RelPath): Promise<void> {
    const abs = this.#resolver.abs(rel);
    let st: import('node:fs').Stats;
    try {
      st = await lstat(abs);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw err;
    }
    if (st.isDirectory()) {
      // Deferred xattrs may name paths below it: set them now, while the paths are still ours.
      await this.#flushXattrs();
      await rm(abs, { recursive: true, force: true });
      this.#forgetDirs([rel]);
    } else {
      if (this.#xattrPaths.has(rel)) await this.#flushXattrs();
      await unlink(abs);
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

  async #flushXattrs(): Promise<void> {
    if (this.#xattrs.length === 0) return;
    const writes = this.#xattrs;
    this.#xattrs = [];
    this.#xattrPaths = new Set();
    const r = await setXattrs(writes, this.#opts.signal);
    this.#unsupportedXattrs.push(...r.unsupported);
  }
}
