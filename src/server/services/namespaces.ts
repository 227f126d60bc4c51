// Namespaces service. Not itself namespaced (the header is ignored). Create, Update and Delete publish
// `/namespaces/*` events; deleting a namespace that still holds images or blobs is FailedPrecondition
// (the store's check, containerd's rule).

import {
  NamespaceCreateSchema,
  NamespaceDeleteSchema,
  NamespaceUpdateSchema,
} from '../../api/gen/containerd/events/namespace_pb.ts';
import { Namespaces } from '../../api/gen/containerd/services/namespaces/v1/namespace_pb.ts';
import type { Namespace } from '../../api/metadata.ts';
import { invalidArgument } from '../../core/errors.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const toProto = (ns: Namespace) => ({ name: ns.name, labels: { ...ns.labels } });

export function namespacesService(deps: ServerDeps): RegisteredService {
  const store = deps.backend.namespaces;
  return defineService('namespaces', Namespaces, {
    get: async (req) => ({ namespace: toProto(await store.get(req.name)) }),

    list: async () => ({ namespaces: (await store.list()).map(toProto) }),

    create: async (req) => {
      const name = req.namespace?.name ?? '';
      const created = await store.create(name, req.namespace?.labels ?? {});
      deps.events.publish(name, '/namespaces/create', NamespaceCreateSchema, toProto(created));
      return { namespace: toProto(created) };
    },

    update: async (req) => {
      const name = req.namespace?.name ?? '';
      const labels = req.namespace?.labels ?? {};
      const paths = req.updateMask?.paths ?? [];
      let ns = await store.get(name);
      if (paths.length > 0) {
        for (const path of paths)
          if (!path.startsWith('labels.'))
            throw invalidArgument(`cannot update ${JSON.stringify(path)} field: invalid argument`);
        for (const path of paths) {
          const key = path.slice('labels.'.length);
          ns = await store.setLabel(name, key, labels[key] ?? '');
        }
      } else {
        // No mask: the request's labels replace the namespace's.
        for (const key of Object.keys(ns.labels))
          if (!(key in labels)) ns = await store.setLabel(name, key, '');
        for (const [key, value] of Object.entries(labels)) ns = await store.setLabel(name, key, value);
      }
      deps.events.publish(name, '/namespaces/update', NamespaceUpdateSchema, toProto(ns));
      return { namespace: toProto(ns) };
    },

    delete: async (req) => {
      await store.delete(req.name);
      deps.events.publish(req.name, '/namespaces/delete', NamespaceDeleteSchema, { name: req.name });
      return {};
    },
  });
}
