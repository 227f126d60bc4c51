// The embedded adapter: the local SQLite + file store under one root as a Backend (every port), used
// with no daemon and by `hoist serve`. A composition root: it wires the store, its diff service and its
// maintenance (the collector and the consistency check, which walks images).

import type { Backend } from '../api/backend.ts';
import type { DiffService } from '../api/diff.ts';
import { type LocalStore, openLocalStore } from './store.ts';

/**
 * The diff service, loaded on first use: the applier brings worker threads, zlib and the tar code, which
 * a command that only lists or removes never needs (start-up of `hoist images`).
 */
function lazyDiffService(store: LocalStore): DiffService {
  let service: Promise<DiffService> | undefined;
  const get = () => {
    service ??= import('../diff/service.ts').then((m) => m.localDiffService(store.content));
    return service;
  };
  return {
    apply: async (...args) => (await get()).apply(...args),
    compare: async (...args) => (await get()).compare(...args),
  };
}

export async function openEmbedded(root: string): Promise<Backend & { store: LocalStore }> {
  const store = await openLocalStore(root);
  return {
    store,
    content: store.content,
    images: store.images,
    leases: store.leases,
    namespaces: store.namespaces,
    snapshotters: store.snapshotters,
    diff: lazyDiffService(store),
    collectGarbage: () => store.gc.collect(),
    maintenance: {
      usage: () => store.gc.usage(),
      pruneLeases: () => store.gc.pruneLeases(),
      check: async (opts) => (await import('./consistency.ts')).checkConsistency(store, opts),
    },
    // No daemon: the store is this process's own.
    address: undefined,
    serverVersion: async () => undefined,
    close: () => store.close(),
  };
}
