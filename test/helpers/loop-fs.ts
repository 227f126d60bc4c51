// An ext4 file system of a chosen size, loop-mounted from a sparse file under /var/tmp: the benches put
// stores on a journaled one (bench/journaled-fs.ts), the fault tests fill a small one (ENOSPC). Needs root
// and loop devices; loopFsUnavailable() says why not, for a test's skip reason.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoopFs {
  /** The mount point. */
  dir: string;
  /** The sparse image file behind it. */
  image: string;
  /** `SOURCE FSTYPE OPTIONS` of the mount, for reports. */
  source: string;
  /** Unmount (mounts under it too) and remove the mount point and the image; idempotent. */
  cleanup(): void;
}

export interface LoopFsOptions {
  sizeMiB: number;
  /** Extra mkfs.ext4 arguments (e.g. `-m 0`: no blocks reserved for root, so root sees ENOSPC too). */
  mkfsArgs?: string[];
  /** Prefix of the image file and mount point names. */
  prefix?: string;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why a loop mount cannot work here, or undefined when it can. */
export function loopFsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (loop-mounts a small ext4 file system)';
  if (!existsSync('/dev/loop-control')) return 'no loop devices (/dev/loop-control is missing)';
  for (const tool of ['mkfs.ext4', 'mount', 'umount'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  return undefined;
}

/** Mount points at or below `dir`, deepest first (overlay mounts a crashed unpack may have left). */
export function mountsUnder(dir: string): string[] {
  const decode = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmount everything at or below `dir`; a mount still busy after ~5 s is detached (umount -l). */
export function umountAll(dir: string): void {
  for (let attempt = 0; ; attempt++) {
    const left = mountsUnder(dir);
    if (!left.length) return;
    for (const m of left) spawnSync('umount', [m], { stdio: 'ignore' });
    if (!mountsUnder(dir).length) return;
    if (attempt >= 25) {
      // Still busy (a process killed at exit may not be gone yet): detach now, freed when the last user goes.
      for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      return;
    }
    spawnSync('sleep', ['0.2']);
  }
}

/** Create and mount an ext4 file system of `sizeMiB`; throws (with mkfs/mount's stderr) when it cannot. */
export function mountLoopFs(opts: LoopFsOptions): LoopFs {
  const prefix = opts.prefix ?? 'hoist-loop-fs';
  const image = join('/var/tmp', `${prefix}-${process.pid}-${Date.now()}.img`);
  let mnt: string | undefined;
  let mounted = false;
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    if (mnt) {
      if (mounted) umountAll(mnt);
      if (!mountsUnder(mnt).length) rmSync(mnt, { recursive: true, force: true });
    }
    rmSync(image, { force: true });
  };
  try {
    sh('truncate', ['-s', `${opts.sizeMiB}M`, image]);
    sh('mkfs.ext4', ['-q', '-F', ...(opts.mkfsArgs ?? []), image]);
    mnt = mkdtempSync(join(tmpdir(), `${prefix}-`));
    sh('mount', ['-o', 'loop', image, mnt]);
    mounted = true;
    const source = sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', mnt]).trim().replace(/\s+/g, ' ');
    return { dir: mnt, image, source, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}
