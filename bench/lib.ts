// Shared benchmark plumbing: timed child processes with their peak RSS, scratch hoist stores, the
// interleaved run loop, medians, the printed tables and goals. The images and their registry are in
// fixture-image.ts (shared) and *-image.ts, the private containerd daemon in containerd.ts, the journaled
// file system for stores and daemon roots in journaled-fs.ts.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
// hoist as users start it: the bin (which enables Node's compile cache, also for the applier's workers).
export const MAIN = join(REPO_ROOT, 'bin', 'hoist.js');
export const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TIME_BIN = '/usr/bin/time';

/** The daemon's (or any process's) peak RSS so far (VmHWM), in KiB. */
export async function vmHwmKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : 0;
}

// ---------------------------------------------------------------------------------------------------
// Timed child processes.

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Throw on a non-zero exit (default true). */
  check?: boolean;
  /** Keep stdout (default: counted, not kept beyond 1 MiB). */
  keepStdout?: boolean;
}

export interface RunResult {
  code: number;
  ms: number;
  /** Peak RSS of the child (from /usr/bin/time %M, else polled VmHWM), KiB. */
  maxRssKiB: number;
  /** User + system CPU time of the child (and its children), from /usr/bin/time; undefined without it. */
  cpuMs: number | undefined;
  stdout: string;
  stdoutBytes: number;
  stderr: string;
}

let timeChecked: boolean | undefined;

/**
 * Run a command, timing it with hrtime from spawn to exit. Peak RSS and CPU time come from GNU time's
 * %M %U %S (wait4's rusage, exact) when /usr/bin/time exists, else RSS from polling /proc/<pid>/status.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  timeChecked ??= existsSync(TIME_BIN);
  const rssFile = timeChecked ? join(tmpdir(), `hoist-bench-rss-${process.pid}-${Math.random()}`) : '';
  const argv = timeChecked ? [TIME_BIN, '-f', '%M %U %S', '-o', rssFile, cmd, ...args] : [cmd, ...args];
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), {
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stdoutBytes = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdoutBytes += d.byteLength;
    if (opts.keepStdout || stdout.length < 1 << 20) stdout += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
  });
  let polled = 0;
  const poller = timeChecked
    ? undefined
    : setInterval(() => {
        vmHwmKiB(child.pid!).then(
          (v) => {
            polled = Math.max(polled, v);
          },
          () => undefined,
        );
      }, 10);
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (poller) clearInterval(poller);
  let maxRssKiB = polled;
  let cpuMs: number | undefined;
  if (timeChecked) {
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    await rm(rssFile, { force: true });
    // GNU time prints "Command exited with non-zero status N" first on failure; the numbers are last.
    const [rss, user, sys] = (text.trim().split('\n').pop() ?? '').split(' ').map(Number);
    maxRssKiB = rss || 0;
    if (user !== undefined && sys !== undefined && !Number.isNaN(user + sys)) cpuMs = (user + sys) * 1000;
  }
  if (opts.check !== false && code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  return { code, ms, maxRssKiB, cpuMs, stdout, stdoutBytes, stderr };
}

/**
 * A hoist store in a temp dir, with its own HOME and an explicit minimal config file, so neither the
 * user's config nor /etc/hoist (hoist runs as root here) nor their credentials leak in.
 */
export interface HoistStore {
  dir: string;
  root: string;
  hoist(args: string[], opts?: RunOptions): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export interface HoistStoreOptions {
  /** Start from a copy of this store root (`cp -a`: modes, read-only blobs and the database as they are). */
  from?: string;
  /** Make the store's temp dir in this directory (default: the temp dir), e.g. a journaled file system. */
  parent?: string;
}

export async function hoistStore(opts: HoistStoreOptions = {}): Promise<HoistStore> {
  const dir = await mkdtemp(join(opts.parent ?? tmpdir(), 'hoist-bench-store-'));
  const home = join(dir, 'home');
  await mkdir(home);
  const root = join(dir, 'root');
  if (opts.from) await run('cp', ['-a', opts.from, root]);
  const config = join(dir, 'config.toml');
  await writeFile(config, 'version = 1\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    DOCKER_CONFIG: join(home, '.docker'),
  };
  delete env.HOIST_NAMESPACE;
  const profDir = process.env.BENCH_CPU_PROF;
  const nodeFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  return {
    dir,
    root,
    hoist: (args, o = {}) =>
      run(NODE, [...nodeFlags, MAIN, '--root', root, '--config', config, ...args], { env, ...o }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * `hoist --version`: starting Node and loading the CLI, no store work. Run beside a command's series it
 * shows how much of that command's time is the fixed start-up cost every hoist process pays.
 */
export function startupBench(store: HoistStore): Bench {
  return {
    name: 'hoist --version (start-up)',
    command: 'hoist --version',
    samples: [],
    fn: async () => {
      const r = await store.hoist(['--version']);
      return sampleOf(r);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Statistics and output.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Sample {
  ms: number;
  rssKiB: number;
  /** CPU time (user + system) of the client process. */
  cpuMs?: number | undefined;
  /** The containerd daemon's CPU time spent during the command. */
  daemonCpuMs?: number;
  /** The containerd daemon's peak RSS (VmHWM). */
  daemonRssKiB?: number;
}

/** A client-only sample from a run. */
export function sampleOf(r: RunResult): Sample {
  return { ms: r.ms, rssKiB: r.maxRssKiB, cpuMs: r.cpuMs };
}

export interface Series {
  name: string;
  command: string;
  samples: Sample[];
}

export function summarize(s: Series) {
  const ms = s.samples.map((x) => x.ms);
  const daemon = s.samples.map((x) => x.daemonRssKiB).filter((x): x is number => x !== undefined);
  const cpu = s.samples.map((x) => (x.cpuMs === undefined ? Number.NaN : x.cpuMs + (x.daemonCpuMs ?? 0)));
  return {
    /** Median CPU time of client + daemon; NaN when not measured. */
    cpuMs: median(cpu),
    median: median(ms),
    min: Math.min(...ms),
    max: Math.max(...ms),
    rssMiB: median(s.samples.map((x) => x.rssKiB)) / 1024,
    peakRssMiB: Math.max(...s.samples.map((x) => x.rssKiB)) / 1024,
    daemonRssMiB: daemon.length ? median(daemon) / 1024 : undefined,
  };
}

export interface TableOptions {
  /** Files (tar entries) the command handles: adds a column with the median wall ms per file. */
  files?: number;
}

export function printTable(title: string, series: Series[], opts: TableOptions = {}): void {
  const rows = [
    [
      'tool',
      'median ms',
      'min ms',
      'max ms',
      ...(opts.files ? ['ms per file'] : []),
      'CPU ms (client+daemon)',
      'client peak RSS MiB',
      'daemon peak RSS MiB',
      'runs',
    ],
  ];
  for (const s of series) {
    const z = summarize(s);
    rows.push([
      s.name,
      z.median.toFixed(0),
      z.min.toFixed(0),
      z.max.toFixed(0),
      ...(opts.files ? [(z.median / opts.files).toPrecision(3)] : []),
      Number.isNaN(z.cpuMs) ? '-' : z.cpuMs.toFixed(0),
      z.peakRssMiB.toFixed(1),
      z.daemonRssMiB === undefined ? '-' : z.daemonRssMiB.toFixed(1),
      String(s.samples.length),
    ]);
  }
  process.stdout.write(`\n## ${title}\n\n${markdownTable(rows)}\n`);
  process.stdout.write('\nCommands:\n');
  for (const s of series) process.stdout.write(`- ${s.name}: \`${s.command}\`\n`);
}

export function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/**
 * CPU-time ratios (client + daemon) of hoist over its anchors. Not the goals (those are wall time), but
 * much less disturbed by other jobs on a shared machine than wall time is.
 */
export function printCpuRatios(pairs: [Series, Series][]): void {
  process.stdout.write('\nCPU time ratios (median client+daemon CPU, for information):\n');
  for (const [a, b] of pairs) {
    const r = summarize(a).cpuMs / summarize(b).cpuMs;
    process.stdout.write(`- ${a.name} / ${b.name}: ${Number.isNaN(r) ? '-' : `${r.toFixed(3)}×`}\n`);
  }
}

export interface Goal {
  label: string;
  value: number;
  limit: number;
  unit?: string;
}

/** Print goals as "met"/"MISSED" lines; returns how many were missed (benches still exit 0). */
export function printGoals(goals: Goal[]): number {
  process.stdout.write('\nGoals:\n');
  let missed = 0;
  for (const g of goals) {
    const ok = g.value <= g.limit;
    if (!ok) missed++;
    const u = g.unit ?? '×';
    process.stdout.write(
      `- ${g.label}: ${g.value.toFixed(u === '×' ? 3 : 1)}${u} (goal ≤ ${g.limit}${u}) ${ok ? 'met' : 'MISSED'}\n`,
    );
  }
  return missed;
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const execFileP = promisify(execFile);

async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args);
    return stdout.trim().split('\n')[0]!;
  } catch {
    return `${cmd}: not installed`;
  }
}

/**
 * The machine, for the report header: cores, CPU, RAM, node, the anchors' versions and the load average
 * (other jobs may share the machine; interleaving the tools makes that load hit all of them alike).
 */
export async function machineLine(): Promise<string> {
  const cpu = (await readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/model name\s*:\s*(.*)/)?.[1];
  const versions = await Promise.all([
    versionOf('/usr/bin/containerd', ['--version']),
    versionOf('/usr/bin/ctr', ['--version']),
    versionOf('skopeo', ['--version']),
  ]);
  const head = await versionOf('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = await execFileP('git', ['-C', REPO_ROOT, 'status', '--porcelain']).then(
    (r) => r.stdout.split('\n').filter(Boolean).length,
    () => 0,
  );
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return [
    `- machine: ${availableParallelism()} CPUs (${cpu ?? 'unknown'}), ${mib(totalmem())} RAM`,
    `- node ${process.version}; ${versions.join('; ')}`,
    `- hoist: commit ${head}${dirty ? ` plus ${dirty} uncommitted files in the working tree` : ''}`,
    `- date ${new Date().toISOString()}, load average at report time ${load}, runs per tool ${RUNS}`,
  ].join('\n');
}

export interface Bench extends Series {
  fn: () => Promise<Sample>;
}

/**
 * One untimed warm-up of each (BENCH_WARMUP=0 skips it), then RUNS rounds; within a round every tool runs
 * once, the order rotated each round, so drift and other jobs' load hit every tool alike.
 */
export async function runInterleaved(benches: Bench[], runs = RUNS): Promise<void> {
  if (process.env.BENCH_WARMUP !== '0') {
    log('warm-up (untimed): one run of each');
    for (const b of benches) await b.fn();
  }
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < benches.length; k++) {
      const b = benches[(i + k) % benches.length]!;
      const sample = await b.fn();
      b.samples.push(sample);
      log(
        `run ${i + 1}/${runs} ${b.name}: ${sample.ms.toFixed(0)} ms, ${(sample.rssKiB / 1024).toFixed(1)} MiB (load ${loadavg()[0]!.toFixed(2)})`,
      );
    }
  }
}
