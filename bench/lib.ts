// Shared benchmark plumbing: the loopback registry with the "medium image" pushed to it, a private
// containerd 1.6 daemon, timed child processes with their peak RSS, medians and the printed table.
// Every bench runs hoist and its anchor on the same machine, the same registry and the same image.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { pushLayout, writeOciLayout } from '../test/helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.ts';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
export const MAIN = join(REPO_ROOT, 'src', 'cli', 'main.ts');
export const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TIME_BIN = '/usr/bin/time';

// ---------------------------------------------------------------------------------------------------
// The medium image: 5 gzip layers, ~300 MB of tar in total, text-like pseudo-random content.

/** Uncompressed file bytes per layer (the tar adds headers): 300 MiB in all. */
export const MEDIUM_LAYER_MIB = [96, 72, 60, 42, 30];
export const MEDIUM_REPO = 'bench/medium';
export const MEDIUM_TAG = 'v1';
const FILE_MIB = 8;
/** Bump when the generator changes, so a cached layout is not reused. */
const LAYOUT_VERSION = 'medium-v1';

/** mulberry32: a tiny, fast, seeded PRNG (reproducible layers → reproducible digests). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * A pool of 65,536 text lines of random words from an 8,192-word vocabulary. Output is made of lines
 * drawn at random from the pool: gzip's 32 KiB window almost never sees a line twice, so it has to code
 * word by word (ratio ≈ 2.5–3×, like source code or logs), while generating is a memcpy per line.
 */
function linePool(seed: number): Buffer[] {
  const rnd = prng(seed);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocab: string[] = [];
  for (let i = 0; i < 8192; i++) {
    const len = 2 + (rnd() % 9);
    let w = '';
    for (let j = 0; j < len; j++) w += letters[Math.min(25, Math.floor((rnd() % 1000) ** 2 / 38000))];
    vocab.push(w);
  }
  const pool: Buffer[] = [];
  for (let i = 0; i < 65536; i++) {
    const words = 4 + (rnd() % 12);
    const parts: string[] = [];
    for (let j = 0; j < words; j++) parts.push(vocab[rnd() % vocab.length]!);
    const indent = ' '.repeat((rnd() % 4) * 2);
    pool.push(Buffer.from(`${indent}${parts.join(rnd() % 5 === 0 ? ', ' : ' ')}${rnd() % 3 ? ';' : ''}\n`));
  }
  return pool;
}

function* textChunks(size: number, pool: Buffer[], rnd: () => number): Generator<Buffer> {
  const chunk = 1 << 20;
  let left = size;
  while (left > 0) {
    const n = Math.min(chunk, left);
    const buf = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const line = pool[rnd() & 0xffff]!;
      at += line.copy(buf, at, 0, Math.min(line.length, n - at));
    }
    left -= n;
    yield buf;
  }
}

/** A tar of `mib` MiB of text, in files of FILE_MIB MiB, generated while streaming. */
function textLayerTar(layer: number, mib: number, pool: Buffer[]): Readable {
  const pack = tar.pack();
  const rnd = prng(1000 + layer);
  (async () => {
    const mtime = new Date('2024-01-01T00:00:00Z');
    pack.entry({ name: `layer${layer}`, type: 'directory', mode: 0o755, mtime });
    for (let f = 0, left = mib; left > 0; f++, left -= FILE_MIB) {
      const size = Math.min(FILE_MIB, left) * 1024 * 1024;
      const entry = pack.entry({ name: `layer${layer}/part${f}.txt`, size, mode: 0o644, mtime });
      await pipeline(Readable.from(textChunks(size, pool, rnd)), entry);
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}

export interface MediumImage {
  layoutDir: string;
  /** Sum of the compressed layer sizes plus config and manifest. */
  compressedBytes: number;
  uncompressedBytes: number;
  manifestDigest: string;
}

/**
 * Build the medium image as an OCI layout, cached under the temp dir (the generator is deterministic);
 * BENCH_REBUILD=1 forces a rebuild.
 */
export async function mediumLayout(): Promise<MediumImage> {
  const dir = join(tmpdir(), `hoist-bench-${LAYOUT_VERSION}`);
  const meta = join(dir, 'bench-meta.json');
  if (process.env.BENCH_REBUILD !== '1' && existsSync(meta)) {
    return JSON.parse(await readFile(meta, 'utf8')) as MediumImage;
  }
  await rm(dir, { recursive: true, force: true });
  const started = performance.now();
  const pool = linePool(42);
  const built = await writeOciLayout(dir, [
    {
      tag: MEDIUM_TAG,
      image: {
        layers: MEDIUM_LAYER_MIB.map((mib, i) => ({ tar: () => textLayerTar(i, mib, pool) })),
        config: { Cmd: ['/bin/sh'] },
      },
    },
  ]);
  const img = built[0]!.images[0]!;
  const info: MediumImage = {
    layoutDir: dir,
    compressedBytes: img.layers.reduce((n, l) => n + l.size, 0) + img.config.size + img.manifest.size,
    uncompressedBytes: MEDIUM_LAYER_MIB.reduce((n, m) => n + m, 0) * 1024 * 1024,
    manifestDigest: img.manifest.digest,
  };
  await writeFile(meta, JSON.stringify(info));
  log(`built medium image in ${((performance.now() - started) / 1000).toFixed(1)} s (cached at ${dir})`);
  return info;
}

export interface BenchRegistry {
  registry: TestRegistry;
  image: MediumImage;
  /** `127.0.0.1:PORT/bench/medium:v1` on the registry's own port (no counting proxy). */
  ref: string;
  stop(): Promise<void>;
}

/** Start the loopback registry and push the medium image to it. */
export async function registryWithMediumImage(): Promise<BenchRegistry> {
  const image = await mediumLayout();
  const registry = await startRegistry();
  const ref = `${registry.registryHost}/${MEDIUM_REPO}:${MEDIUM_TAG}`;
  await pushLayout(image.layoutDir, `${MEDIUM_REPO}:${MEDIUM_TAG}`, registry.registryHost);
  log(
    `registry ${registry.registryHost}: ${ref} = ${mib(image.compressedBytes)} compressed, ${mib(image.uncompressedBytes)} of files`,
  );
  return { registry, image, ref, stop: () => registry.stop() };
}

// ---------------------------------------------------------------------------------------------------
// A private containerd 1.6 daemon.

export interface Containerd {
  dir: string;
  socket: string;
  pid: number;
  /** The daemon's peak RSS so far (VmHWM), in KiB. */
  peakRssKiB(): Promise<number>;
  /** `ctr -a <socket> <args…>`, timed. */
  ctr(args: string[], opts?: RunOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

function containerdConfig(dir: string): string {
  return [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]',
    `  address = "${join(dir, 'containerd.sock')}"`,
    '[ttrpc]',
    `  address = "${join(dir, 'containerd-ttrpc.sock')}"`,
    '[debug]',
    '  address = ""',
    '  level = "warn"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    '',
  ].join('\n');
}

const liveDaemons = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveDaemons) c.kill('SIGKILL');
});

/** Start containerd on a scratch root/state dir with its own socket; resolves once `ctr version` answers. */
export async function startContainerd(): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bench-ctrd-'));
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, containerdConfig(dir));
  const socket = join(dir, 'containerd.sock');
  const child = spawn('/usr/bin/containerd', ['--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  liveDaemons.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const ctr = (args: string[], opts: RunOptions = {}) => run('/usr/bin/ctr', ['-a', socket, ...args], opts);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited (${child.exitCode}): ${stderr}`);
    if (existsSync(socket) && (await ctr(['version'], { check: false })).code === 0) break;
    if (Date.now() > deadline) throw new Error(`containerd did not answer on ${socket}: ${stderr}`);
    await sleep(50);
  }
  const pid = child.pid!;
  return {
    dir,
    socket,
    pid,
    peakRssKiB: () => vmHwmKiB(pid),
    ctr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      liveDaemons.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function vmHwmKiB(pid: number): Promise<number> {
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
  stdout: string;
  stdoutBytes: number;
  stderr: string;
}

let timeChecked: boolean | undefined;

/**
 * Run a command, timing it with hrtime from spawn to exit. Peak RSS comes from GNU time's %M (wait4's
 * ru_maxrss, exact) when /usr/bin/time exists, else from polling /proc/<pid>/status every 10 ms.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  timeChecked ??= existsSync(TIME_BIN);
  const rssFile = timeChecked ? join(tmpdir(), `hoist-bench-rss-${process.pid}-${Math.random()}`) : '';
  const argv = timeChecked ? [TIME_BIN, '-f', '%M', '-o', rssFile, cmd, ...args] : [cmd, ...args];
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
  if (timeChecked) {
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    await rm(rssFile, { force: true });
    // GNU time prints "Command exited with non-zero status N" first on failure; the number is last.
    maxRssKiB = Number(text.trim().split('\n').pop() ?? 0) || 0;
  }
  if (opts.check !== false && code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  return { code, ms, maxRssKiB, stdout, stdoutBytes, stderr };
}

/** A hoist store in a temp dir, with its own HOME (no user config or credentials leak in). */
export interface HoistStore {
  dir: string;
  root: string;
  hoist(args: string[], opts?: RunOptions): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export async function hoistStore(): Promise<HoistStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bench-store-'));
  const home = join(dir, 'home');
  await mkdir(home);
  const root = join(dir, 'root');
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
    hoist: (args, opts = {}) => run(NODE, [...nodeFlags, MAIN, '--root', root, ...args], { env, ...opts }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
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
  /** Optional second RSS (the containerd daemon's VmHWM). */
  daemonRssKiB?: number;
}

export interface Series {
  name: string;
  command: string;
  samples: Sample[];
}

export function summarize(s: Series) {
  const ms = s.samples.map((x) => x.ms);
  const daemon = s.samples.map((x) => x.daemonRssKiB).filter((x): x is number => x !== undefined);
  return {
    median: median(ms),
    min: Math.min(...ms),
    max: Math.max(...ms),
    rssMiB: median(s.samples.map((x) => x.rssKiB)) / 1024,
    peakRssMiB: Math.max(...s.samples.map((x) => x.rssKiB)) / 1024,
    daemonRssMiB: daemon.length ? median(daemon) / 1024 : undefined,
  };
}

export function printTable(title: string, series: Series[]): void {
  const rows = [
    ['tool', 'median ms', 'min ms', 'max ms', 'client peak RSS MiB', 'daemon peak RSS MiB', 'runs'],
  ];
  for (const s of series) {
    const z = summarize(s);
    rows.push([
      s.name,
      z.median.toFixed(0),
      z.min.toFixed(0),
      z.max.toFixed(0),
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

/** The machine, for the report header. */
export async function machineLine(): Promise<string> {
  const { availableParallelism, totalmem } = await import('node:os');
  const cpu = (await readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/model name\s*:\s*(.*)/)?.[1];
  return `${availableParallelism()} CPUs (${cpu ?? 'unknown'}), ${mib(totalmem())} RAM, node ${process.version}, ${new Date().toISOString()}`;
}
