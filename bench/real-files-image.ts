// The real-files image: 5 gzip layers of this machine's own files at their own paths, so the image looks
// like a real root file system (usr/lib/python3.x/…, usr/share/man/…): a Python standard library, gcc's
// and git's binaries (plus /usr/bin's hard-linked files: perl, bzip2, gunzip, …), the perl and vim
// runtimes, man pages, icons and time zones. Roughly 300+ MB of files, 130+ MB compressed, ~37,000 tar
// entries: many small files of real sizes and kinds (text, .gz, PNG/SVG, ELF), symlinks and hard links.
// GNU tar (sorted names, mtime 0, owner 0:0) | gzip -n: deterministic for the same machine. Built once
// and cached under the temp dir (BENCH_REBUILD=1 rebuilds); what is missing here is left out, with a note.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BenchRegistry,
  type CountedImage,
  cachedLayout,
  type GzipLayer,
  gzipLayerFrom,
  registryWith,
  writeGzipLayout,
} from './fixture-image.ts';
import { log } from './lib.ts';

const VERSION = 'real-files-v1';

/** A Python standard library: the system's, else the newest pyenv 3.x one. */
function pythonLib(): string[] {
  const system = readdirSync('/usr/lib').filter((n) => /^python3\.\d+$/.test(n));
  if (system.length) return [`/usr/lib/${system.sort(byVersion).at(-1)}`];
  const pyenv = '/root/.pyenv/versions';
  if (!existsSync(pyenv)) return [];
  for (const v of readdirSync(pyenv).sort(byVersion).reverse()) {
    const lib = join(pyenv, v, 'lib');
    const py = existsSync(lib) ? readdirSync(lib).filter((n) => /^python3\.\d+$/.test(n)) : [];
    if (py.length) return [join(lib, py[0]!)];
  }
  return [];
}

function byVersion(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** /usr/bin's regular files with more than one link when every link is in /usr/bin too: hard links. */
function usrBinHardLinks(): string[] {
  const byInode = new Map<number, { nlink: number; paths: string[] }>();
  for (const name of readdirSync('/usr/bin')) {
    const p = `/usr/bin/${name}`;
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st?.isFile() || st.nlink < 2) continue;
    const e = byInode.get(st.ino) ?? { nlink: st.nlink, paths: [] };
    e.paths.push(p);
    byInode.set(st.ino, e);
  }
  return [...byInode.values()].filter((e) => e.paths.length === e.nlink).flatMap((e) => e.paths);
}

function gccLib(): string[] {
  const base = '/usr/lib/gcc/x86_64-linux-gnu';
  if (!existsSync(base)) return [];
  const versions = readdirSync(base).sort(byVersion);
  return versions.length ? [join(base, versions.at(-1)!)] : [];
}

/** The layers: absolute source paths (each one a tree, or a file), in the image at the same path. */
function layerSources(): { name: string; paths: string[] }[] {
  return [
    { name: 'python', paths: pythonLib() },
    { name: 'binaries', paths: [...gccLib(), '/usr/lib/git-core', ...usrBinHardLinks()] },
    {
      name: 'perl and vim runtimes',
      paths: ['/usr/share/perl', '/usr/share/perl5', '/usr/lib/x86_64-linux-gnu/perl', '/usr/share/vim'],
    },
    { name: 'man pages', paths: ['/usr/share/man'] },
    { name: 'icons and time zones', paths: ['/usr/share/icons', '/usr/share/zoneinfo'] },
  ];
}

/**
 * GNU tar's arguments for one layer: the parent directories alone (`--no-recursion`), then each tree,
 * relative to /, names sorted, times 0, owner root, no user or group names.
 */
function tarArgs(paths: string[]): string[] {
  const rel = paths.map((p) => p.replace(/^\/+/, '')).sort();
  const parents = new Set<string>();
  for (const p of rel) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join('/'));
  }
  for (const p of rel) parents.delete(p);
  return [
    '-C',
    '/',
    '-c',
    '-f',
    '-',
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--no-recursion',
    ...[...parents].sort(),
    '--recursion',
    ...rel,
  ];
}

export function realFilesLayout(): Promise<CountedImage> {
  return cachedLayout(VERSION, async (dir) => {
    const layers: GzipLayer[] = [];
    for (const l of layerSources()) {
      const missing = l.paths.filter((p) => !existsSync(p));
      if (missing.length) log(`real-files: ${l.name}: not on this machine, left out: ${missing.join(' ')}`);
      const paths = l.paths.filter((p) => existsSync(p));
      if (!paths.length) continue;
      const layer = await gzipLayerFrom(dir, 'tar', tarArgs(paths));
      log(
        `real-files: layer ${l.name}: ${(layer.tarBytes / 1e6).toFixed(1)} MB tar, ${(layer.size / 1e6).toFixed(1)} MB gzip (${paths.map((p) => p.replace(/^\//, '')).join(' ')})`,
      );
      layers.push(layer);
    }
    if (layers.length < 2) throw new Error('real-files: too few of the source trees exist on this machine');
    return writeGzipLayout(dir, 'v1', layers, { Cmd: ['/bin/sh'] });
  });
}

export async function registryWithRealFiles(): Promise<BenchRegistry> {
  return registryWith(await realFilesLayout(), 'bench/real-files:v1');
}
