// Paths inside a snapshot root, resolved the way a chroot would resolve them.
//
// Layer entries are attacker-controlled. Every path the applier touches is computed here: entry names
// are cleaned lexically (a name that climbs above the root is refused), and parent directories are
// walked one component at a time with lstat/readlink, so a symlink met on the way is followed *inside*
// the root: an absolute target `/etc` means `<root>/etc`, as in a chroot. That is not an escape, and real
// images rely on it (Debian's `var/run -> /run`). A symlink whose target climbs above the root (`..`
// past `/`) has no honest use, so writing through one is refused rather than silently clamped. The final
// component is never followed: the caller replaces whatever is there.
//
// Synchronous: the applier runs in a worker thread, where a blocking lstat costs less than a round trip
// through the thread pool.
//
// Names are "byte strings": latin1-decoded, one character per byte, so file names that are not UTF-8
// survive unchanged; they become Buffers only at the fs call (`abs`).
import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { HoistError } from '../core/errors.ts';
import type { LowerDirs } from './lowers.ts';

/** A path relative to the root, '/'-separated, as a latin1 byte string; '' is the root itself. */
export type RelPath = string;

/** Linux gives up after 40 symlinks in one lookup (ELOOP); so do we. */
const MAX_SYMLINKS = 40;

/** A byte string as readable text for messages (UTF-8 where it is UTF-8). */
export function display(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** The error for an entry the applier will not apply: names the entry and says why. */
export function refuseEntry(name: string, why: string): HoistError {
  return new HoistError(
    'HOIST_INVALID_ARGUMENT',
    `layer entry '${display(name)}' ${why}; the layer is refused`,
    {
      hint: 'the layer is malformed or hostile; do not use this image, or report it to its publisher',
    },
  );
}

/**
 * The components of an entry name after lexical cleaning: leading `/` stripped, `.` and empty parts
 * dropped, `..` applied. Returns null when the name climbs above the root.
 */
export function cleanName(name: string): string[] | null {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

export function joinRel(parent: RelPath, base: string): RelPath {
  return parent === '' ? base : `${parent}/${base}`;
}

interface WalkOptions {
  /** Create missing directories (0755) instead of answering null. */
  create: boolean;
  /** Follow a symlink in the final component too (hardlink targets). */
  followFinal: boolean;
  /** The entry being applied, for error messages. */
  entry: string;
}

export interface ResolverOptions {
  /** Told about every directory the walk creates, with the lower layer's directory it stands for. */
  onCreate?: (rel: RelPath, lower: Stats | undefined) => void;
  /** Overlay only: the layers below, consulted for what the upper directory does not have. */
  lowers?: LowerDirs | undefined;
}

export class RootResolver {
  readonly root: string;
  readonly #rootBytes: Buffer;
  /** Paths known to be real directories (not symlinks) in the root; cleared whenever one is removed. */
  #knownDirs = new Set<RelPath>();
  readonly #onCreate: NonNullable<ResolverOptions['onCreate']>;
  readonly lowers: LowerDirs | undefined;

  constructor(root: string, opts: ResolverOptions = {}) {
    this.root = resolve(root);
    this.#rootBytes = Buffer.from(this.root);
    this.#onCreate = opts.onCreate ?? (() => undefined);
    this.lowers = opts.lowers && opts.lowers.size > 0 ? opts.lowers : undefined;
  }

  /** The absolute path of `rel` as a Buffer, ready for fs calls. */
  abs(rel: RelPath): Buffer {
    if (rel === '') return this.#rootBytes;
    return Buffer.concat([this.#rootBytes, Buffer.from(`/${rel}`, 'latin1')]);
  }

  /** Forget cached directories: call after removing any directory. */
  invalidate(): void {
    this.#knownDirs.clear();
  }

  /** Remember a directory the applier has just created. */
  noteDir(rel: RelPath): void {
    this.#knownDirs.add(rel);
  }

  /**
   * The real (symlink-free) path of directory `components`, walked chroot-style. Missing directories are
   * created when `create`, else the answer is null. A component that is not a directory is refused.
   */
  resolveDir(components: string[], entry: string, create: boolean): RelPath | null {
    const key = components.join('/');
    if (this.#knownDirs.has(key)) return key;
    return this.#walk(components, { create, followFinal: true, entry });
  }

  /**
   * The real path of `components` with every symlink followed inside the root; null when missing. With
   * lower layers the path may exist only there (the caller copies it up).
   */
  resolveTarget(components: string[], entry: string): RelPath | null {
    return this.#walk(components, { create: false, followFinal: true, entry });
  }

  #walk(components: string[], opts: WalkOptions): RelPath | null {
    // `todo` is a stack (next component last) so a symlink's target can be spliced in front.
    const todo = components.slice().reverse();
    const cur: string[] = [];
    let links = 0;
    let lastLink: { rel: RelPath; target: string } | undefined;
    const follow = (rel: RelPath, target: string) => {
      lastLink = { rel, target };
      if (++links > MAX_SYMLINKS) {
        throw refuseEntry(
          opts.entry,
          `goes through too many levels of symbolic links (at '${display(rel)}')`,
        );
      }
      if (target.startsWith('/')) cur.length = 0; // absolute targets start again at the root
      const parts = target.split('/');
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
    };
    const notADir = (rel: RelPath) =>
      refuseEntry(opts.entry, `needs '${display(rel)}' to be a directory, but it is not`);
    while (todo.length > 0) {
      const part = todo.pop()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        // Names were cleaned lexically, so only a symlink's target can climb above the root.
        if (cur.length === 0 && lastLink) {
          throw refuseEntry(
            opts.entry,
            `goes through symlink '${display(lastLink.rel)}' -> '${display(lastLink.target)}', which points above the root`,
          );
        }
        cur.pop();
        continue;
      }
      const rel = cur.length === 0 ? part : `${cur.join('/')}/${part}`;
      if (this.#knownDirs.has(rel)) {
        cur.push(part);
        continue;
      }
      const st = lstatSync(this.abs(rel), { throwIfNoEntry: false }) ?? null;
      if (st === null) {
        const hit = this.lowers ? this.lowers.lookup(cur.join('/'), part) : null;
        if (hit?.kind === 'symlink') {
          follow(rel, hit.target);
          continue;
        }
        if (!opts.create) {
          // Only in a lower layer: it exists in the merged view (a directory, or a final target).
          if (hit !== null && (hit.kind === 'dir' || todo.length === 0)) {
            cur.push(part);
            continue;
          }
          if (hit !== null) throw notADir(rel);
          return null;
        }
        if (hit !== null && hit.kind !== 'dir') throw notADir(rel);
        mkdirSync(this.abs(rel), { mode: 0o755 });
        this.#onCreate(rel, hit?.kind === 'dir' ? hit.stat : undefined);
        this.#knownDirs.add(rel);
        cur.push(part);
        continue;
      }
      if (st.isDirectory()) {
        this.#knownDirs.add(rel);
        cur.push(part);
        continue;
      }
      if (st.isSymbolicLink()) {
        follow(rel, readlinkSync(this.abs(rel), { encoding: 'buffer' }).toString('latin1'));
        continue;
      }
      if (todo.length === 0 && opts.followFinal && !opts.create) {
        cur.push(part); // a final non-directory (a hardlink target): the caller checks its type
        continue;
      }
      throw notADir(rel);
    }
    return cur.join('/');
  }
}
