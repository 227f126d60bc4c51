// `<root>/hoist-serve.json`: which live `hoist serve` owns a store. A CLI run on the same store without
// --address finds it and works through the daemon instead of opening the files a second time, so the
// CLI's garbage collection can never race the daemon's writes (issue 5: route through the daemon).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DaemonMarker {
  pid: number;
  address: string;
}

const file = (root: string) => join(root, 'hoist-serve.json');

export async function writeDaemonMarker(root: string, address: string): Promise<void> {
  await writeFile(file(root), `${JSON.stringify({ pid: process.pid, address })}\n`, { mode: 0o644 });
}

export async function removeDaemonMarker(root: string, address: string): Promise<void> {
  const m = await readDaemonMarker(root);
  if (m && m.pid === process.pid && m.address === address) await rm(file(root), { force: true });
}

async function readDaemonMarker(root: string): Promise<DaemonMarker | undefined> {
  try {
    const m = JSON.parse(await readFile(file(root), 'utf8')) as DaemonMarker;
    return typeof m.pid === 'number' && typeof m.address === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The address of the live daemon that owns `root`, if any (a stale marker from a killed one is ignored). */
export async function liveDaemon(root: string): Promise<string | undefined> {
  const m = await readDaemonMarker(root);
  if (!m || m.pid === process.pid) return undefined;
  try {
    process.kill(m.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  return m.address;
}
