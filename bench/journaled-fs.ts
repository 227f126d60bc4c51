// A journaled ext4 file system for the benches that write trees (pull + unpack): a sparse file under
// /var/tmp, `mkfs.ext4` (journal on by default, checked with `dumpe2fs -h`), loop-mounted at a temp dir.
// hoist's stores and containerd's root and state go on it, so both write through the same journal as on a
// node (this machine's root file system has none). Unmounted and removed at the end, on an error exit, on
// SIGINT and SIGTERM. Where loop mounts are impossible (no root, no loop devices), it warns and falls back
// to a directory on the temp dir's file system. BENCH_JOURNALED_FS=0 skips it on purpose.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { log } from './lib.ts';

export interface BenchFs {
  /** Where to put stores and daemon roots. */
  dir: string;
  /** True when `dir` is the loop-mounted ext4 with a journal. */
  journaled: boolean;
  /** One line for the report. */
  describe: string;
  /** Unmount and remove everything (idempotent; also runs on exit and on SIGINT/SIGTERM). */
  cleanup(): void;
}

const SIZE_GIB = Number(process.env.BENCH_FS_GIB ?? 16);

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Mount points at or below `dir`, deepest first (overlay mounts a crashed unpack may have left). */
function mountsUnder(dir: string): string[] {
  const decode = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function umountAll(dir: string): void {
  for (let attempt = 0; ; attempt++) {
    const left = mountsUnder(dir);
    if (!left.length) return;
    for (const m of left) spawnSync('umount', [m], { stdio: 'ignore' });
    if (!mountsUnder(dir).length) return;
    if (attempt >= 25) {
      // Still busy (a daemon killed at exit may not be gone yet): detach now, freed when the last user goes.
      for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      return;
    }
    spawnSync('sleep', ['0.2']);
  }
}

let signalsHooked = false;
const cleanups = new Set<() => void>();

function hookExit(cleanup: () => void): void {
  cleanups.add(cleanup);
  if (signalsHooked) return;
  signalsHooked = true;
  // Exit handlers run on process.exit(), so turn the signals into exits (Node's default skips them).
  process.once('exit', () => {
    for (const c of cleanups) c();
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      process.exit(code);
    });
  }
}

function fallback(reason: string): BenchFs {
  const dir = mkdtempSync(join(tmpdir(), 'hoist-bench-fs-'));
  const warning = `WARNING: no journaled file system (${reason}); stores and daemon roots are on the temp dir's file system, whose numbers are not what a node sees`;
  log(warning);
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    rmSync(dir, { recursive: true, force: true });
  };
  hookExit(cleanup);
  return { dir, journaled: false, describe: warning, cleanup };
}

/** Create, check and mount the journaled file system (or fall back, with a warning). */
export function journaledFs(): BenchFs {
  if (process.env.BENCH_JOURNALED_FS === '0') return fallback('BENCH_JOURNALED_FS=0');
  const image = join('/var/tmp', `hoist-bench-fs-${process.pid}-${Date.now()}.img`);
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
  hookExit(cleanup);
  try {
    sh('truncate', ['-s', `${SIZE_GIB}G`, image]);
    sh('mkfs.ext4', ['-q', '-F', image]);
    const features = /^Filesystem features:\s*(.*)$/m.exec(sh('dumpe2fs', ['-h', image]))?.[1] ?? '';
    if (!features.split(/\s+/).includes('has_journal')) throw new Error(`no has_journal in: ${features}`);
    mnt = mkdtempSync(join(tmpdir(), 'hoist-bench-fs-'));
    sh('mount', ['-o', 'loop', image, mnt]);
    mounted = true;
    const source = sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', mnt]).trim().replace(/\s+/g, ' ');
    const describe = `stores and daemon roots on ext4 with a journal (has_journal; ${source}), loop-mounted from a sparse ${SIZE_GIB} GiB file in /var/tmp`;
    log(describe);
    const dir = mnt;
    return {
      dir,
      journaled: true,
      describe,
      cleanup: () => {
        cleanup();
        cleanups.delete(cleanup);
      },
    };
  } catch (err) {
    cleanup();
    cleanups.delete(cleanup);
    const e = err as { stderr?: string; message: string };
    return fallback(`${e.stderr?.toString().trim() || e.message}`.split('\n')[0]!);
  }
}
