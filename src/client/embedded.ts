// The embedded backend: the local SQLite + file store under one root, used with no daemon.

import type { Backend } from '../api/backend.ts';
import { localDiffService } from '../diff/service.ts';
import { checkConsistency } from '../gc/consistency.ts';
import { type LocalStore, openLocalStore } from '../metadata/store.ts';

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
