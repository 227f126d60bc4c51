// `hoist serve` for the benchmarks, with the same shape as bench/containerd.ts's daemon (socket, pid, a
// timed ctr that reports the daemon's CPU and peak RSS), so a bench runs one ctr command against both.
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Containerd, daemonHandle } from './containerd.ts';
import { MAIN, NODE, sleep } from './lib.ts';

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
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
  });
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('"msg":"serving"')) {
    if (child.exitCode !== null) throw new Error(`hoist serve exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`hoist serve did not start: ${stderr}`);
    }
    await sleep(25);
  }
  return daemonHandle(child, dir, socket);
}
