// `hoist serve` for tests: the real CLI as a child process on a temp socket over a temp store, plus the
// real ctr (Debian's containerd 1.6) pointed at it. stop() sends SIGTERM and waits for a clean exit.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CTR } from './containerd.ts';
import { MAIN, NODE } from './run-hoist.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ServedStore {
  dir: string;
  root: string;
  socket: string;
  child: ChildProcess;
  /** Everything the daemon wrote to stderr (JSON log lines). */
  log(): string;
  ctr(...args: string[]): Promise<CommandResult>;
  /** ctr that must exit 0; returns stdout. */
  ctrOk(...args: string[]): Promise<string>;
  /** The hoist CLI on the same store (embedded). */
  hoist(...args: string[]): Promise<CommandResult>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  cleanup(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function run(file: string, args: string[], input?: Buffer, env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolve) => {
    const options = { maxBuffer: 256 << 20, encoding: 'buffer' as const, ...(env ? { env } : {}) };
    const child = execFile(file, args, options, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString('utf8') });
    });
    // ctr may stop reading early (e.g. the blob already exists): that is not the test's failure.
    child.stdin?.on('error', () => undefined);
    if (input) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Run ctr with stdin bytes (for `content ingest`). */
export function ctrWithInput(socket: string, input: Buffer, ...args: string[]): Promise<CommandResult> {
  return run(CTR, ['--address', socket, ...args], input);
}

/** Run ctr with a file as stdin: seekable, so an ingest can resume at the server's offset. */
export async function ctrWithFile(socket: string, file: string, ...args: string[]): Promise<CommandResult> {
  const fh = await open(file, 'r');
  try {
    const child = spawn(CTR, ['--address', socket, ...args], { stdio: [fh.fd, 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? 1)));
    return { code, stdout, stderr };
  } finally {
    await fh.close();
  }
}

export async function startServe(opts: { args?: string[]; dir?: string } = {}): Promise<ServedStore> {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'hoist-serve-')));
  const root = join(dir, 'root');
  const socket = join(dir, 'hoist.sock');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(dir, 'home'),
    XDG_CONFIG_HOME: join(dir, 'home', '.config'),
  };
  delete env.HOIST_NAMESPACE;
  // The caller's shell must not pick another store, config, namespace or daemon for the test.
  for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'CONTAINERD_NAMESPACE', 'CONTAINERD_ADDRESS']) delete env[k];
  delete env.HOIST_ADDRESS;
  const child = spawn(NODE, [MAIN, '--root', root, 'serve', '--address', socket, ...(opts.args ?? [])], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  exited.then(() => live.delete(child));
  // Ready once it logs "serving": the socket is bound and its permissions are set.
  const deadline = Date.now() + 15_000;
  while (!stderr.includes('"msg":"serving"')) {
    if (child.exitCode !== null) throw new Error(`hoist serve exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`hoist serve did not start on ${socket}: ${stderr}`);
    }
    await sleep(25);
  }
  const ctr = (...args: string[]) => run(CTR, ['--address', socket, ...args]);
  return {
    dir,
    root,
    socket,
    child,
    log: () => stderr,
    ctr,
    async ctrOk(...args) {
      const r = await ctr(...args);
      if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    hoist: (...args) => run(NODE, [MAIN, '--root', root, ...args], undefined, env),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
