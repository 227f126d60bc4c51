// A journaled ext4 file system for the benches that write trees (pull + unpack): a sparse file under
// /var/tmp, `mkfs.ext4` (journal on by default, checked with `dumpe2fs -h`), loop-mounted at a temp dir.
// hoist's stores and containerd's root and state go on it, so both write through the same journal as on a
// node (this machine's root file system has none). Unmounted and removed at the end, on an error exit, on
// SIGINT and SIGTERM. Where loop mounts are impossible (no root, no loop devices), it warns and falls back
// to a directory on the temp dir's file system. BENCH_JOURNALED_FS=0 skips it on purpose.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountLoopFs } from '../test/helpers/loop-fs.ts';
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
  let loop: ReturnType<typeof mountLoopFs> | undefined;
  const cleanup = () => loop?.cleanup();
  hookExit(cleanup);
  try {
    loop = mountLoopFs({ sizeMiB: SIZE_GIB * 1024, prefix: 'hoist-bench-fs' });
    const features =
      /^Filesystem features:\s*(.*)$/m.exec(
        execFileSync('dumpe2fs', ['-h', loop.image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
      )?.[1] ?? '';
    if (!features.split(/\s+/).includes('has_journal')) throw new Error(`no has_journal in: ${features}`);
    const describe = `stores and daemon roots on ext4 with a journal (has_journal; ${loop.source}), loop-mounted from a sparse ${SIZE_GIB} GiB file in /var/tmp`;
    log(describe);
    return {
      dir: loop.dir,
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
