// The embedded adapter: the local SQLite + file store under one root as a Backend (every port), used
// with no daemon and by `hoist serve`. A composition root: it wires the store, its diff service and its
// maintenance (the collector and the consistency check, which walks images).

import type { Backend } from '../api/backend.ts';
import { localDiffService } from '../diff/service.ts';
import { checkConsistency } from './consistency.ts';
import { type LocalStore, openLocalStore } from './store.ts';

export async function openEmbedded(root: string): Promise<Backend & { store: LocalStore }> {
  const store = await openLocalStore(root);
  return {
    store,
    content: store.content,
    images: store.images,
    leases: store.leases,
    namespaces: store.namespaces,
    snapshotters: store.snapshotters,
    diff: localDiffService(store.content),
    collectGarbage: () => store.gc.collect(),
    maintenance: {
      usage: () => store.gc.usage(),
      pruneLeases: () => store.gc.pruneLeases(),
      check: (opts) => checkConsistency(store, opts),
    },
    close: () => store.close(),
  };
}
