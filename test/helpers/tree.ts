// A comparable description of a directory tree: for every path its type, mode (with setuid/setgid/
// sticky), owner, link target or content hash, device numbers, hardlink group and xattrs. Used to check
// that hoist unpacks exactly what umoci and containerd unpack.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  /** Permission bits including setuid (0o4000), setgid (0o2000), sticky (0o1000). */
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: string;
  /** For files with nlink > 1: the first path (sorted) of the same inode within the tree. */
  hardlinkOf?: string;
  xattrs?: Record<string, string>;
  mtime?: number;
}

function typeOf(st: import('node:fs').Stats): TreeEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** All xattrs of the tree in one getfattr call: path (relative) → name → hex value. */
function xattrsOf(root: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let text = '';
  try {
    text = execFileSync('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout;
    if (typeof stdout !== 'string') throw err;
    text = stdout;
  }
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = line.slice('# file: '.length);
      const rel = abs === root ? '.' : abs.slice(root.length + 1);
      current = {};
      out.set(rel, current);
    } else if (current && line.includes('=')) {
      const i = line.indexOf('=');
      current[line.slice(0, i)] = line.slice(i + 1);
    }
  }
  return out;
}

export interface TreeOptions {
  /** Relative paths (or prefixes ending in /) to leave out. */
  ignore?: string[];
  /** Compare mtimes of non-directories (seconds). */
  mtimes?: boolean;
  /**
   * Record hardlink groups (default true). An overlay mount shows a hardlink made across layers as a
   * copied-up pair, so the group is not comparable there.
   */
  hardlinks?: boolean;
  /** xattr names to leave out (e.g. `security.selinux`). */
  ignoreXattrs?: RegExp;
}

export async function describeTree(root: string, opts: TreeOptions = {}): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  const inodes = new Map<string, string[]>();
  const ignored = (rel: string) =>
    (opts.ignore ?? []).some((p) => (p.endsWith('/') ? `${rel}/`.startsWith(p) : rel === p));
  const xattrs = xattrsOf(root);
  const visit = async (rel: string) => {
    const abs = rel === '.' ? root : join(root, rel);
    const st = await lstat(abs);
    const e: TreeEntry = {
      type: typeOf(st),
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: st.uid,
      gid: st.gid,
    };
    if (e.type === 'symlink') e.mode = '';
    if (e.type === 'file') {
      e.size = st.size;
      e.sha256 = await hashFile(abs);
      if (st.nlink > 1 && opts.hardlinks !== false) {
        const k = `${st.dev}:${st.ino}`;
        inodes.set(k, [...(inodes.get(k) ?? []), rel]);
      }
    }
    if (e.type === 'symlink') e.target = await readlink(abs);
    if (e.type === 'char' || e.type === 'block') e.rdev = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
    if (opts.mtimes && e.type !== 'dir') e.mtime = Math.floor(st.mtimeMs / 1000);
    const x = xattrs.get(rel);
    if (x) {
      const kept = Object.fromEntries(Object.entries(x).filter(([k]) => !opts.ignoreXattrs?.test(k)));
      if (Object.keys(kept).length > 0) e.xattrs = kept;
    }
    if (rel !== '.') out.set(rel, e);
    if (e.type === 'dir') {
      for (const name of (await readdir(abs)).sort()) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (!ignored(child)) await visit(child);
      }
    }
  };
  await visit('.');
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue;
    paths.sort();
    for (const p of paths.slice(1)) out.get(p)!.hardlinkOf = paths[0]!;
  }
  return out;
}

/** Differences between two trees, as readable lines (empty when equal). */
export function diffTrees(
  a: Map<string, TreeEntry>,
  b: Map<string, TreeEntry>,
  names = ['a', 'b'],
): string[] {
  const lines: string[] = [];
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb) {
      lines.push(`${p}: only in ${names[0]} (${ea.type})`);
      continue;
    }
    const ja = JSON.stringify(ea);
    const jb = JSON.stringify(eb);
    if (ja !== jb) lines.push(`${p}: ${names[0]} ${ja} != ${names[1]} ${jb}`);
  }
  for (const [p, eb] of b) if (!a.has(p)) lines.push(`${p}: only in ${names[1]} (${eb.type})`);
  return lines;
}
