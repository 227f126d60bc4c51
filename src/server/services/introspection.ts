// Introspection.Plugins (filters on `type` and `id`, like containerd) and Introspection.Server, whose
// UUID identifies the store: created once, kept in <root>/uuid, the same across restarts.
import { randomUUID } from 'node:crypto';
import { readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Introspection } from '../../api/gen/containerd/services/introspection/v1/introspection_pb.ts';
import { compileFilters } from '../../metadata/filters.ts';
import type { PluginInfo } from '../plugins.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The store's UUID, created on first use. */
export async function storeUuid(root: string): Promise<string> {
  const file = join(root, 'uuid');
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (UUID_RE.test(text)) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const uuid = randomUUID();
  // `wx`: if another process created it meanwhile, use theirs.
  try {
    await writeFile(file, uuid, { flag: 'wx', mode: 0o644 });
    return uuid;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(file, 'utf8')).trim();
    throw err;
  }
}

/** The inode of our pid namespace (containerd 1.7+ reports it), 0 when unknown. */
async function pidNamespace(): Promise<bigint> {
  try {
    const m = /\[(\d+)\]/.exec(await readlink('/proc/self/ns/pid'));
    return m ? BigInt(m[1]!) : 0n;
  } catch {
    return 0n;
  }
}

function pluginToProto(p: PluginInfo) {
  return {
    type: p.type,
    id: p.id,
    requires: p.requires ?? [],
    platforms: (p.platforms ?? []).map((pl) => ({
      os: pl.os,
      architecture: pl.architecture,
      variant: pl.variant ?? '',
    })),
    exports: p.exports ?? {},
    capabilities: p.capabilities ?? [],
    ...(p.initError ? { initErr: { code: p.initError.code, message: p.initError.message } } : {}),
  };
}

export function introspectionService(deps: ServerDeps): RegisteredService {
  let uuid: Promise<string> | undefined;
  return defineService('introspection', Introspection, {
    plugins: async (req) => {
      const filter = compileFilters(req.filters);
      const plugins = deps.plugins().filter((p) =>
        filter.match((path) => {
          if (path.length !== 1) return undefined;
          if (path[0] === 'type') return p.type || undefined;
          if (path[0] === 'id') return p.id || undefined;
          return undefined;
        }),
      );
      return { plugins: plugins.map(pluginToProto) };
    },
    server: async () => {
      uuid ??= storeUuid(deps.root).catch((err: unknown) => {
        uuid = undefined;
        throw err;
      });
      return { uuid: await uuid, pid: BigInt(process.pid), pidns: await pidNamespace() };
    },
  });
}
