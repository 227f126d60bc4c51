// The layer of a snapshot: what changed relative to its parent, as an OCI layer tar (uncompressed,
// streamed). Two sources, as containerd has:
// - overlayfs: the snapshot's own directory *is* the change set; 0:0 character devices are whiteouts and
//   `trusted.overlay.opaque=y` (or `user.overlay.opaque` unprivileged) marks a directory that hides
//   everything below it.
// - native (full copies): a double walk of the parent's tree and the snapshot's tree, in the spirit of
//   containerd's continuity `fs.Changes`: entries only in the upper tree are added, entries whose type,
//   mode, owner, size, mtime, link target or xattrs differ are changed, entries only in the lower tree
//   become `.wh.<name>` whiteouts (a deleted directory is one whiteout, not one per child).
// Entries are sorted by name at every level, so the same changes always give the same bytes and digest.
// Only metadata is compared: a file rewritten with the same size and mtime is treated as unchanged, the
// trade-off every snapshot differ makes (containerd's double walk does the same for non-zero nanoseconds).
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DirectorySnapshotter, LayerDirs } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { HoistError } from '../core/errors.ts';
import { readXattrs } from './fs-tools.ts';
import { END_OF_ARCHIVE, type TarHeader, type TarType, tarEntry } from './tar-writer.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts.ts';

/** xattrs that describe overlayfs bookkeeping, not the image's files. */
const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;

function typeOf(st: Stats): TarType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets are not archived (containerd skips them too)
}

async function xattrsOf(path: string): Promise<Array<[string, Buffer]>> {
  const all = await readXattrs(Buffer.from(path));
  return all.filter(([k]) => !OVERLAY_XATTR.test(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const sortNames = (names: string[]) => names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

async function names(dir: string): Promise<string[]> {
  return sortNames(await readdir(dir));
}

/**
 * Hardlinks: the first path of an inode archived in this layer carries the data, later ones link to it.
 * `unchangedPaths` (native only) lists, per multi-link inode of the upper tree, the paths that did not
 * change from the lower tree: a new link to such a file is archived as a hardlink to it (a link across
 * layers, which appliers resolve in the tree below), as the original layer had it.
 */
interface Inodes {
  archived: Map<string, string>;
  unchangedPaths: Map<string, string[]>;
}

async function* entryFor(abs: string, rel: string, st: Stats, inodes: Inodes): AsyncGenerator<Buffer> {
  const type = typeOf(st);
  if (!type) return;
  const key = `${st.dev}:${st.ino}`;
  const header: TarHeader = {
    name: Buffer.from(rel),
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: Math.floor(st.mtimeMs / 1000),
    xattrs: await xattrsOf(abs),
  };
  if (type === 'file' && st.nlink > 1) {
    const first = inodes.archived.get(key) ?? inodes.unchangedPaths.get(key)?.[0];
    if (first !== undefined) {
      yield* tarEntry({ ...header, type: 'link', linkname: Buffer.from(first), xattrs: [] });
      return;
    }
    inodes.archived.set(key, rel);
  }
  if (type === 'file') header.size = st.size;
  if (type === 'symlink') header.linkname = Buffer.from(await readlink(abs));
  if (type === 'char' || type === 'block') {
    header.devmajor = Math.floor(st.rdev / 256) & 0xfff;
    header.devminor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
  }
  yield* tarEntry(
    header,
    type === 'file' ? () => createReadStream(abs, { highWaterMark: 1 << 20 }) : undefined,
  );
}

function whiteout(rel: string, mtime: number): TarHeader {
  const slash = rel.lastIndexOf('/');
  const name =
    slash < 0
      ? `${WHITEOUT_PREFIX}${rel}`
      : `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime };
}

async function sameXattrs(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([xattrsOf(a), xattrsOf(b)]);
  return x.length === y.length && x.every(([k, v], i) => y[i]![0] === k && y[i]![1].equals(v));
}

async function unchanged(lowerAbs: string, lower: Stats, upperAbs: string, upper: Stats): Promise<boolean> {
  if (typeOf(lower) !== typeOf(upper)) return false;
  if (lower.mode !== upper.mode || lower.uid !== upper.uid || lower.gid !== upper.gid) return false;
  if (upper.isDirectory()) return sameXattrs(lowerAbs, upperAbs);
  if (lower.size !== upper.size || lower.mtimeMs !== upper.mtimeMs || lower.rdev !== upper.rdev) return false;
  if (upper.isSymbolicLink() && (await readlink(lowerAbs)) !== (await readlink(upperAbs))) return false;
  return sameXattrs(lowerAbs, upperAbs);
}

/** Paths of multi-link files in `upper` that are unchanged from `lower` (sorted), by inode. */
async function unchangedLinks(lower: string, upper: string, rel = '', out = new Map<string, string[]>()) {
  for (const n of await names(join(upper, rel))) {
    const r = rel ? `${rel}/${n}` : n;
    const st = await lstat(join(upper, r));
    if (st.isDirectory()) await unchangedLinks(lower, upper, r, out);
    else if (st.isFile() && st.nlink > 1) {
      const lst = await lstat(join(lower, r)).catch(() => undefined);
      if (lst && (await unchanged(join(lower, r), lst, join(upper, r), st))) {
        const key = `${st.dev}:${st.ino}`;
        out.set(key, [...(out.get(key) ?? []), r]);
      }
    }
  }
  return out;
}

/** Double walk of two full trees (native snapshots): the changes from `lower` to `upper`. */
async function* walkingDiff(
  lower: string | undefined,
  upper: string,
  rel: string,
  inodes: Inodes,
  now: number,
): AsyncGenerator<Buffer> {
  const upperDir = join(upper, rel);
  const lowerDir = lower === undefined ? undefined : join(lower, rel);
  const up = await names(upperDir);
  const low = lowerDir === undefined ? [] : await names(lowerDir).catch(() => [] as string[]);
  const upSet = new Set(up);
  // Deletions first within a directory, so an applier never sees a name both removed and re-created late.
  for (const n of low) if (!upSet.has(n)) yield* tarEntry(whiteout(rel ? `${rel}/${n}` : n, now));
  for (const n of up) {
    const r = rel ? `${rel}/${n}` : n;
    const ua = join(upper, r);
    const ust = await lstat(ua);
    const lst = lower === undefined ? undefined : await lstat(join(lower, r)).catch(() => undefined);
    const same = lst !== undefined && (await unchanged(join(lower!, r), lst, ua, ust));
    if (!same) {
      // A directory replacing something else: that thing must go before the directory is created.
      if (lst && !lst.isDirectory() && ust.isDirectory()) yield* tarEntry(whiteout(r, now));
      yield* entryFor(ua, r, ust, inodes);
    }
    if (ust.isDirectory()) {
      const lowerChild = lst?.isDirectory() ? lower : undefined;
      yield* walkingDiff(lowerChild, upper, r, inodes, now);
    }
  }
}

/** An overlayfs upper directory as a layer: whiteout devices and opaque markers translated back. */
async function* overlayDiff(upper: string, rel: string, inodes: Inodes, now: number): AsyncGenerator<Buffer> {
  for (const n of await names(join(upper, rel))) {
    const r = rel ? `${rel}/${n}` : n;
    const abs = join(upper, r);
    const st = await lstat(abs);
    if (st.isCharacterDevice() && st.rdev === 0) {
      yield* tarEntry(whiteout(r, now));
      continue;
    }
    yield* entryFor(abs, r, st, inodes);
    if (st.isDirectory()) {
      const all = await readXattrs(Buffer.from(abs));
      const opaque = all.some(
        ([k, v]) => /^(trusted|user)\.overlay\.opaque$/.test(k) && v.toString() === 'y',
      );
      if (opaque)
        yield* tarEntry({ ...whiteout(`${r}/${OPAQUE_MARKER.slice(WHITEOUT_PREFIX.length)}`, now) });
      yield* overlayDiff(upper, r, inodes, now);
    }
  }
}

/**
 * The uncompressed layer tar of snapshot `key` (committed or active) relative to its parent. `parent`
 * must be the snapshot's parent (checked), or undefined for a base layer.
 */
export async function snapshotLayer(
  sn: DirectorySnapshotter,
  ctx: Context,
  key: string,
  parent: string | undefined,
): Promise<Readable> {
  const info = await sn.stat(ctx, key);
  if ((info.parent ?? undefined) !== parent) {
    throw new HoistError(
      'HOIST_FAILED_PRECONDITION',
      `snapshot ${key} has parent ${info.parent ?? '(none)'}, not ${parent ?? '(none)'}`,
    );
  }
  const dirs = await sn.dirs(ctx, key);
  return diffDirs(dirs);
}

/** The layer tar for a snapshot's directories (also used by the Diff service). */
export function diffDirs(dirs: LayerDirs): Readable {
  const inodes: Inodes = { archived: new Map(), unchangedPaths: new Map() };
  // Whiteouts carry no meaningful time; a fixed one keeps the output deterministic.
  const now = 0;
  async function* all(): AsyncGenerator<Buffer> {
    if (dirs.layered) yield* overlayDiff(dirs.dir, '', inodes, now);
    else {
      const lower = dirs.parents[0];
      if (lower !== undefined) inodes.unchangedPaths = await unchangedLinks(lower, dirs.dir);
      yield* walkingDiff(lower, dirs.dir, '', inodes, now);
    }
    yield END_OF_ARCHIVE;
  }
  return Readable.from(all(), { objectMode: false, highWaterMark: 1 << 20 });
}
