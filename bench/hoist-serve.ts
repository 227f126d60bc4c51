// `hoist serve` for the benchmarks, with the same shape as bench/containerd.ts's daemon (socket, pid, a
// timed ctr that reports the daemon's CPU and peak RSS), so a bench runs one ctr command against both.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Containerd, CTR, cpuMsOf } from './containerd.ts';
import { MAIN, NODE, type RunOptions, run, sampleOf, sleep, vmHwmKiB } from './lib.ts';

/** Start hoist serve on `root` (default: a fresh store); resolves once it logs "serving". */
export async function startHoistServe(opts: { root?: string } = {}): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bench-serve-'));
  const root = opts.root ?? join(dir, 'root');
  const socket = join(dir, 'hoist.sock');
  const config = join(dir, 'config.toml');
  await writeFile(config, 'version = 1\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(dir, 'home'),
    XDG_CONFIG_HOME: join(dir, 'home', '.config'),
  };
  delete env.HOIST_ADDRESS;
  const child = spawn(NODE, [MAIN, '--root', root, '--config', config, 'serve', '--address', socket], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
  });
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('"msg":"serving"')) {
    if (child.exitCode !== null) throw new Error(`hoist serve exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) throw new Error(`hoist serve did not start: ${stderr}`);
    await sleep(25);
  }
  const pid = child.pid!;
  const ctr = (args: string[], o: RunOptions = {}) => run(CTR, ['-a', socket, ...args], o);
  return {
    dir,
    socket,
    pid,
    peakRssKiB: () => vmHwmKiB(pid),
    cpuMs: () => cpuMsOf(pid),
    ctr,
    async timedCtr(args, o = {}) {
      const before = await cpuMsOf(pid);
      const result = await ctr(args, o);
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
      await rm(dir, { recursive: true, force: true });
    },
  };
}
