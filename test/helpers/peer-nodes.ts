// Nodes for the peer-mirror tests and bench: `hoist serve --registry-address` daemons (each a store whose
// images peers may pull), hosts.toml directories listing peers as pull-only mirrors of an upstream, and
// the CLI's pull on a store through such a directory.

import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAIN, NODE } from './run-hoist.ts';
import { type CommandResult, type ServedStore, startServe } from './serve.ts';

export interface PeerNode {
  served: ServedStore;
  /** `127.0.0.1:PORT` of its registry endpoint. */
  registry: string;
}

/** A daemon serving its store on a loopback registry port the kernel picks. */
export async function startPeerNode(): Promise<PeerNode> {
  const served = await startServe({ args: ['--registry-address', '127.0.0.1:0'] });
  const registry = /"registry":"(127\.0\.0\.1:\d+)"/.exec(served.log())?.[1];
  if (!registry) throw new Error(`no registry address in the serving line: ${served.log()}`);
  return { served, registry };
}

/**
 * `<dir>/<upstream>/hosts.toml`: the peers as mirrors with containerd's `capabilities = ["pull"]` (blobs and
 * manifests by digest only: tags resolve at the upstream), then the upstream over plain HTTP.
 */
export async function writeHostsDir(dir: string, upstream: string, peers: string[]): Promise<string> {
  await mkdir(join(dir, upstream), { recursive: true });
  const lines = [`server = "http://${upstream}"`, ''];
  for (const p of peers) lines.push(`[host."http://${p}"]`, '  capabilities = ["pull"]', '');
  await writeFile(join(dir, upstream, 'hosts.toml'), lines.join('\n'));
  return dir;
}

/** `hoist --root <root> pull --hosts-dir <dir> <ref>` (its own process, as an operator runs it). */
export function pullVia(root: string, hostsDir: string, ref: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'HOIST_ADDRESS', 'HOIST_NAMESPACE']) delete env[k];
    execFile(
      NODE,
      [MAIN, '--root', root, 'pull', '--progress', 'plain', '--hosts-dir', hostsDir, ref],
      { env, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
