// hoist.services.maintenance.v1.Maintenance: `hoist system df | prune | check` for a store this daemon
// owns. They run here because only the daemon knows which of its writes are live; the CLI on a served
// store comes through this service instead of opening the files beside a running daemon.

import { Maintenance } from '../../api/gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import { HoistError } from '../../core/errors.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const report = (value: unknown) => ({ json: JSON.stringify(value) });

export function maintenanceService(deps: ServerDeps): RegisteredService {
  const m = () => {
    const maintenance = deps.backend.maintenance;
    if (!maintenance) throw new HoistError('HOIST_NOT_IMPLEMENTED', 'this daemon has no store maintenance');
    return maintenance;
  };
  return defineService('hoist.maintenance', Maintenance, {
    usage: async () => report(await m().usage()),
    pruneLeases: async () => {
      const pruned = await m().pruneLeases();
      if (pruned.length > 0) deps.gc.leasesChanged();
      return report(pruned);
    },
    // Collections serialise on the metadata database's queue with the scheduler's own.
    collectGarbage: async () => report((await deps.backend.collectGarbage()) ?? null),
    check: async (req) => report(await m().check({ verify: req.verify })),
  });
}
