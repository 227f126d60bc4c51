// Leases service: create (a server-chosen id when none is given), delete (`sync` collects garbage before
// answering), list with filters, and the resources a lease holds (content, ingests, snapshots/<name>).

import { timestamp } from '../../api/convert.ts';
import { Leases } from '../../api/gen/containerd/services/leases/v1/leases_pb.ts';
import type { Lease } from '../../api/metadata.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const toProto = (l: Lease) => ({ id: l.id, createdAt: timestamp(l.createdAt), labels: { ...l.labels } });

export function leasesService(deps: ServerDeps): RegisteredService {
  const leases = deps.backend.leases;
  return defineService('leases', Leases, {
    create: async (req, call) => {
      const lease = await leases.create(call.store(), {
        ...(req.id ? { id: req.id } : {}),
        labels: { ...req.labels },
      });
      deps.gc.leasesChanged();
      return { lease: toProto(lease) };
    },

    delete: async (req, call) => {
      await leases.delete(call.store(), req.id);
      if (req.sync) await deps.gc.collectNow();
      else deps.gc.schedule();
      return {};
    },

    list: async (req, call) => ({ leases: (await leases.list(call.store(), req.filters)).map(toProto) }),

    addResource: async (req, call) => {
      await leases.addResource(call.store(), req.id, {
        id: req.resource?.id ?? '',
        type: req.resource?.type ?? '',
      });
      return {};
    },

    deleteResource: async (req, call) => {
      await leases.deleteResource(call.store(), req.id, {
        id: req.resource?.id ?? '',
        type: req.resource?.type ?? '',
      });
      return {};
    },

    listResources: async (req, call) => ({ resources: await leases.listResources(call.store(), req.id) }),
  });
}
