// A private containerd 1.6 daemon for interoperability tests: its own root, state, socket and config on
// a temp dir, started and stopped by the test. Never touches a system containerd.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';

export interface CtrResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Containerd {
  dir: string;
  /** containerd's root (content, snapshotters' data). */
  root: string;
  socket: string;
  ctr(...args: string[]): Promise<CtrResult>;
  /** ctr that must succeed; returns stdout. */
  ctrOk(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface ContainerdOptions {
  /** Enable the CRI plugin (default off: it wants CNI and more). */
  cri?: boolean;
  /**
   * The CRI's pause image (`sandbox_image`): with it, the CRI runs pods on the host network with runc
   * (overlayfs, runc v2 shim, cgroupfs; CNI directories empty: a host-network pod needs none).
   */
  sandboxImage?: string;
}

function config(dir: string, opts: ContainerdOptions): string {
  const disabled = [
    'io.containerd.snapshotter.v1.btrfs',
    'io.containerd.snapshotter.v1.zfs',
    'io.containerd.snapshotter.v1.devmapper',
    'io.containerd.snapshotter.v1.aufs',
    ...(opts.cri ? [] : ['io.containerd.grpc.v1.cri']),
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
    '  level = "warn"',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    ...(opts.cri && opts.sandboxImage ? criRuntime(dir, opts.sandboxImage) : []),
    '',
  ].join('\n');
}

function criRuntime(dir: string, sandboxImage: string): string[] {
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    `${cri}]`,
    `  sandbox_image = ${JSON.stringify(sandboxImage)}`,
    // Pods ask for oom_score_adj -998 (the pause container) and lower; this machine's root may not lower
    // its own (no CAP_SYS_RESOURCE: runc's nsexec fails with EACCES), so keep them at containerd's level.
    '  restrict_oom_score_adj = true',
    `${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `${cri}.cni]`,
    `  bin_dir = "${join(dir, 'cni', 'bin')}"`,
    `  conf_dir = "${join(dir, 'cni', 'net.d')}"`,
  ];
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function runCtr(socket: string, args: string[]): Promise<CtrResult> {
  return new Promise((resolve) => {
    execFile(CTR, ['-a', socket, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? Number((err as { code: number }).code)
          : 1
        : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Shims of this daemon (their command line names its socket: `-address <socket>`) and the containers they
 * started (their children), all killed by pid.
 */
async function killShims(socket: string): Promise<void> {
  const procs: { pid: number; ppid: number; argv: string[] }[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    procs.push({ pid: Number(pid), ppid, argv });
  }
  const shims = new Set(
    procs
      .filter(
        (p) => p.argv[0]?.includes('containerd-shim') && p.argv[p.argv.indexOf('-address') + 1] === socket,
      )
      .map((p) => p.pid),
  );
  const victims = [...procs.filter((p) => shims.has(p.ppid)).map((p) => p.pid), ...shims];
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((m) => m.startsWith(`${dir}/`))
    .reverse();
  for (const m of mounts) await new Promise((r) => execFile('umount', ['-l', m], r));
}

export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-ctrd-'));
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, config(dir, opts));
  const socket = join(dir, 'containerd.sock');
  const child = spawn(CONTAINERD, ['--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited (${child.exitCode}): ${stderr}`);
    if (existsSync(socket) && (await runCtr(socket, ['version'])).code === 0) break;
    if (Date.now() > deadline) throw new Error(`containerd did not answer on ${socket}: ${stderr}`);
    await sleep(50);
  }
  return {
    dir,
    root: join(dir, 'root'),
    socket,
    ctr: (...args) => runCtr(socket, args),
    async ctrOk(...args) {
      const r = await runCtr(socket, args);
      if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      live.delete(child);
      // Pods the test left behind: their shims (started by this daemon, found by its socket) and the
      // rootfs mounts under the temp dir, or rm would fail on them.
      await killShims(socket);
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
