// Store maintenance through a daemon: `hoist serve` answers hoist.services.maintenance.v1 (it owns the
// store and knows which writes are live). A real containerd has no such service: its disk usage and GC
// are its own, and the error says so instead of guessing from the outside.
import type { DescMethod } from '@bufbuild/protobuf';
import type { Maintenance } from '../../api/backend.ts';
import {
  type CollectGarbageResponse,
  type ConsistencyReport as ConsistencyReportPb,
  Maintenance as MaintenanceService,
  type PruneLeasesResponse,
  type StoreUsage as StoreUsagePb,
} from '../../api/gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import type { ConsistencyReport, PrunedLease, StoreUsage } from '../../api/maintenance.ts';
import {
  consistencyFromProto,
  gcStatsFromProto,
  prunedLeaseFromProto,
  storeUsageFromProto,
} from '../../api/maintenance-convert.ts';
import type { GcStats } from '../../api/metadata.ts';
import { HoistError } from '../../core/errors.ts';
import type { GrpcChannel } from './channel.ts';

const CTX = { namespace: 'default' }; // maintenance is store-wide; the namespace header is required

export class GrpcMaintenance implements Maintenance {
  readonly #ch: GrpcChannel;

  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }

  async #call<T>(method: DescMethod, req: Record<string, unknown> = {}): Promise<T> {
    try {
      return (await this.#ch.unary(MaintenanceService, method, CTX, req as never)) as unknown as T;
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_NOT_IMPLEMENTED')
        throw new HoistError(
          'HOIST_NOT_IMPLEMENTED',
          `the daemon at ${this.#ch.address} has no store maintenance service (a containerd: its disk usage and garbage collection are its own)`,
          {
            hint: 'use `ctr content ls`, `ctr snapshots usage` and `ctr leases` there; hoist serve answers system df/prune/check',
            cause: err,
          },
        );
      throw err;
    }
  }

  async usage(): Promise<StoreUsage> {
    return storeUsageFromProto(await this.#call<StoreUsagePb>(MaintenanceService.method.usage));
  }

  async pruneLeases(): Promise<PrunedLease[]> {
    const r = await this.#call<PruneLeasesResponse>(MaintenanceService.method.pruneLeases);
    return r.leases.map(prunedLeaseFromProto);
  }

  /** undefined from a daemon without the service (a containerd collects during synchronous deletes). */
  async collectGarbage(): Promise<GcStats | undefined> {
    try {
      const r = await this.#call<CollectGarbageResponse>(MaintenanceService.method.collectGarbage);
      return r.stats ? gcStatsFromProto(r.stats) : undefined;
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_NOT_IMPLEMENTED') return undefined;
      throw err;
    }
  }

  async check(opts: { verify?: boolean } = {}): Promise<ConsistencyReport> {
    const r = await this.#call<ConsistencyReportPb>(MaintenanceService.method.check, {
      verify: opts.verify === true,
    });
    return consistencyFromProto(r);
  }
}
