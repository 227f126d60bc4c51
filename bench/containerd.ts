// A private containerd 1.6 daemon for the benchmarks: its own root, state, sockets and config in a temp
// dir (never the system's containerd), and a timed `ctr -a <socket>`.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunOptions, type RunResult, run, type Sample, sampleOf, sleep, vmHwmKiB } from './lib.ts';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux for every architecture). */
const USER_HZ = 100;

/** A process's user + system CPU time so far, from /proc/<pid>/stat (fields 14 and 15), in ms. */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';

export interface Containerd {
  dir: string;
  socket: string;
  pid: number;
  /** The daemon's peak RSS so far (VmHWM), in KiB. */
  peakRssKiB(): Promise<number>;
  /** The daemon's CPU time so far (user + system), in ms. */
  cpuMs(): Promise<number>;
  /**
   * Run `ctr args` and return its sample with the daemon's share: the daemon's CPU time during the
   * command and its peak RSS.
   */
  timedCtr(args: string[], opts?: RunOptions): Promise<{ result: RunResult; sample: Sample }>;
  /** `ctr -a <socket> <args…>`, timed. */
  ctr(args: string[], opts?: RunOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

function containerdConfig(dir: string, cri: boolean): string {
  const disabled = [
    ...(cri ? [] : ['io.containerd.grpc.v1.cri']),
    'io.containerd.snapshotter.v1.btrfs',
    'io.containerd.snapshotter.v1.zfs',
    'io.containerd.snapshotter.v1.devmapper',
    'io.containerd.snapshotter.v1.aufs',
  ];
  return [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    `disabled_plugins = [${disabled.map((p) => JSON.stringify(p)).join(', ')}]`,
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

/**
 * Start containerd on a scratch root/state dir with its own socket; resolves once `ctr version` answers.
 * `cri`: also its CRI plugin (the image service is all the benches use). `parent`: make the scratch dir
 * (root, state, sockets) there instead of the temp dir, e.g. on a journaled file system.
 */
export async function startContainerd(opts: { cri?: boolean; parent?: string } = {}): Promise<Containerd> {
  const dir = await mkdtemp(join(opts.parent ?? tmpdir(), 'hoist-bench-ctrd-'));
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, containerdConfig(dir, opts.cri === true));
  const socket = join(dir, 'containerd.sock');
  const child = spawn(CONTAINERD, ['--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  liveDaemons.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const ctr = (args: string[], opts: RunOptions = {}) => run(CTR, ['-a', socket, ...args], opts);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited (${child.exitCode}): ${stderr}`);
    if (existsSync(socket) && (await ctr(['version'], { check: false })).code === 0) break;
    if (Date.now() > deadline) throw new Error(`containerd did not answer on ${socket}: ${stderr}`);
    await sleep(50);
  }
  return daemonHandle(child, dir, socket);
}

/**
 * The handle a bench uses for any daemon that answers ctr on `socket` (containerd here, hoist serve in
 * bench/hoist-serve.ts): timed ctr with the daemon's CPU and peak RSS, and a stop that removes `dir`.
 */
export function daemonHandle(child: ChildProcess, dir: string, socket: string): Containerd {
  liveDaemons.add(child);
  const pid = child.pid!;
  const ctr = (args: string[], opts: RunOptions = {}) => run(CTR, ['-a', socket, ...args], opts);
  return {
    dir,
    socket,
    pid,
    peakRssKiB: () => vmHwmKiB(pid),
    cpuMs: () => cpuMsOf(pid),
    ctr,
    async timedCtr(args, opts = {}) {
      const before = await cpuMsOf(pid);
      const result = await ctr(args, opts);
      const daemonCpuMs = (await cpuMsOf(pid)) - before;
      return { result, sample: { ...sampleOf(result), daemonCpuMs, daemonRssKiB: await vmHwmKiB(pid) } };
    },
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
