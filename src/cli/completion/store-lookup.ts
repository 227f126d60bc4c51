// The names completion offers from a store: images, namespaces, snapshots and leases, in the store and
// namespace the words typed so far pick (`--root`, `-n`, `--address`, `--config`, then the environment
// and config as for any command). Completing never creates a store: a root without a metadata database is
// an empty answer, not a new store directory.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/config.ts';
import { familiarString, nameKind, tryParseReference } from '../../core/reference.ts';
import type { Hoist } from '../../hoist/hoist.ts';
import type { LineContext, StoreKind } from './complete.ts';

async function openFor(line: LineContext): Promise<Hoist | undefined> {
  const config = loadConfig({ path: line.config, env: process.env, isRoot: process.getuid?.() === 0 });
  if (line.root) config.root = line.root;
  const env = process.env;
  const address = line.address ?? (env.HOIST_ADDRESS || env.CONTAINERD_ADDRESS || config.containerd_address);
  if (!address && !existsSync(join(config.root, 'metadata.db'))) return undefined;
  const { Hoist } = await import('../../hoist/hoist.ts');
  const opts = { config, ...(line.namespace ? { namespace: line.namespace } : {}) };
  return address ? Hoist.connect(address, opts) : Hoist.open(opts);
}

/**
 * Image names as a user types them: docker's short form (`alpine:3.20` for docker.io/library/alpine:3.20),
 * or the full name when that is what `current` starts. The CRI's `sha256:<id>` and `repo@sha256:` aliases
 * are left out, as docker's completion leaves out digests.
 */
function imageNames(names: string[], current: string): string[] {
  const out = new Set<string>();
  for (const name of names) {
    const kind = nameKind(name);
    if (kind === 'id' || kind === 'digest') continue;
    const ref = tryParseReference(name);
    const familiar = ref ? familiarString(ref) : name;
    out.add(familiar.startsWith(current) || !name.startsWith(current) ? familiar : name);
  }
  return [...out].sort();
}

async function namesIn(hoist: Hoist, kind: StoreKind, line: LineContext, current: string): Promise<string[]> {
  const ctx = { namespace: hoist.namespace };
  switch (kind) {
    case 'image':
      return imageNames(
        (await hoist.backend.images.list(ctx)).map((r) => r.name),
        current,
      );
    case 'namespace':
      return (await hoist.backend.namespaces.list()).map((n) => n.name).sort();
    case 'snapshot':
      return (await hoist.snapshots(line.snapshotter ? { snapshotter: line.snapshotter } : {}))
        .map((s) => s.name)
        .sort();
    case 'lease':
      return (await hoist.backend.leases.list(ctx)).map((l) => l.id).sort();
  }
}

/** The names of `kind` in the store the line picks; empty on any failure (completion must stay quiet). */
export async function lookupInStore(kind: StoreKind, line: LineContext, current: string): Promise<string[]> {
  let hoist: Hoist | undefined;
  try {
    // `-n` is being completed: the namespace list does not depend on a namespace that may be half typed.
    hoist = await openFor(kind === 'namespace' ? { ...line, namespace: undefined } : line);
    return hoist ? await namesIn(hoist, kind, line, current) : [];
  } catch {
    return [];
  } finally {
    await hoist?.close().catch(() => undefined);
  }
}
