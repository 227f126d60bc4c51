// A private containerd 1.6 daemon for interoperability tests: its own root, state, socket and config on
// a temp dir, started and stopped by the test. Never touches a system containerd.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
    '',
  ].join('\n');
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
      // Snapshot dirs may hold mounts only if something mounted them; nothing here does.
      await rm(dir, { recursive: true, force: true });
    },
  };
}
