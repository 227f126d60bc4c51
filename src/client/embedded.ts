// The embedded backend: the local SQLite + file store under one root, used with no daemon.
import { openLocalStore } from '../metadata/store.ts';
import type { Backend } from './backend.ts';

export async function openEmbedded(root: string): Promise<Backend & { store: Awaited<ReturnType<typeof openLocalStore>> }> {
  const store = await openLocalStore(root);
  return {
    store,
    content: store.content,
    images: store.images,
    leases: store.leases,
    namespaces: store.namespaces,
    collectGarbage: () => store.gc.collect(),
    close: () => store.close(),
  };
}
