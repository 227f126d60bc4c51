// hoist.services.maintenance.v1.Maintenance: `hoist system df | prune | check` for a store this daemon
// owns. They run here because only the daemon knows which of its writes are live; the CLI on a served
// store comes through this service instead of opening the files beside a running daemon.

import { Maintenance } from '../../api/gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import {
  consistencyToProto,
  gcStatsToProto,
  prunedLeaseToProto,
  storeUsageToProto,
} from '../../api/maintenance-convert.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

export function maintenanceService(deps: ServerDeps): RegisteredService {
  const m = deps.backend.maintenance;
  return defineService('hoist.maintenance', Maintenance, {
    usage: async () => storeUsageToProto(await m.usage()),
    pruneLeases: async () => {
      const pruned = await m.pruneLeases();
      if (pruned.length > 0) deps.gc.leasesChanged();
      return { leases: pruned.map(prunedLeaseToProto) };
    },
    // Collections serialise on the metadata database's queue with the scheduler's own.
    collectGarbage: async () => {
      const stats = await deps.backend.collectGarbage();
      return stats ? { stats: gcStatsToProto(stats) } : {};
    },
    check: async (req) => consistencyToProto(await m.check({ verify: req.verify })),
  });
}
