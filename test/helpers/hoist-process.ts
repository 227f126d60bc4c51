// A hoist CLI process the test can watch and signal while it runs (tempStore().run waits for the end):
// interrupted pulls, pulls racing each other, prune while a pull is in flight. Also: waiting on a condition
// (not on time) and reading how many bytes a store's ingest of a blob holds.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestKey } from '../../src/content/local.ts';
import type { HoistStore } from './run-hoist.ts';
import { MAIN, NODE } from './run-hoist.ts';

export interface HoistProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited: its code (null when killed) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment tempStore() runs hoist with (HOME and config dirs inside the store's temp dir). */
export function storeEnv(store: HoistStore): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: store.home,
    XDG_CONFIG_HOME: join(store.home, '.config'),
    DOCKER_CONFIG: join(store.home, '.docker'),
  };
  delete env.HOIST_NAMESPACE;
  // The caller's shell must not pick another store, config, namespace or daemon for the test.
  for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'CONTAINERD_NAMESPACE', 'CONTAINERD_ADDRESS']) delete env[k];
  return env;
}

/** Start `hoist --root <store> ...args` in the background. */
export function spawnHoist(store: HoistStore, ...args: string[]): HoistProcess {
  const child = spawn(NODE, [MAIN, '--root', store.root, ...args], {
    env: storeEnv(store),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, pid: child.pid!, stdout: () => out, stderr: () => err, exited };
}

/** Poll `cond` until it holds; fails with `what` after `limitMs` (a safety net, not a timing assertion). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The ingest directory of `ref` in namespace `ns` (backend ref `<ns>/<ref>`). */
export function ingestDir(root: string, ns: string, ref: string): string {
  return join(root, 'content', 'ingest', ingestKey(`${ns}/${ref}`));
}

/** Bytes written so far to the ingest of a layer blob in namespace `ns` (0 when there is none). */
export async function layerIngestBytes(root: string, ns: string, digest: string): Promise<number> {
  try {
    return (await stat(join(ingestDir(root, ns, `layer-${digest}`), 'data'))).size;
  } catch {
    return 0;
  }
}

/** The committed blob file of a digest in a store. */
export function blobPath(root: string, digest: string): string {
  return join(root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** sha256 of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
