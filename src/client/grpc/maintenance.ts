// Store maintenance through a daemon: `hoist serve` answers hoist.services.maintenance.v1 (it owns the
// store and knows which writes are live). A real containerd has no such service: its disk usage and GC
// are its own, and the error says so instead of guessing from the outside.
import type { DescMethod } from '@bufbuild/protobuf';
import type { Maintenance } from '../../api/backend.ts';
import { Maintenance as MaintenanceService } from '../../api/gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import type { ConsistencyReport, PrunedLease, StoreUsage } from '../../api/maintenance.ts';
import type { GcStats } from '../../api/metadata.ts';
import { HoistError } from '../../core/errors.ts';
import type { GrpcChannel } from './channel.ts';

/** Report fields that are dates (JSON carries them as ISO strings). */
const DATE_KEYS = new Set(['updatedAt', 'createdAt', 'expires']);
const CTX = { namespace: 'default' }; // maintenance is store-wide; the namespace header is required

function parse<T>(json: string): T {
  return JSON.parse(json, (k, v) => (DATE_KEYS.has(k) && typeof v === 'string' ? new Date(v) : v)) as T;
}

export class GrpcMaintenance implements Maintenance {
  readonly #ch: GrpcChannel;

  constructor(ch: GrpcChannel) {
    this.#ch = ch;
  }

  async #call<T>(method: DescMethod, req: Record<string, unknown> = {}): Promise<T> {
    try {
      const r = (await this.#ch.unary(MaintenanceService, method, CTX, req as never)) as unknown as {
        json: string;
      };
      return parse<T>(r.json);
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

  usage(): Promise<StoreUsage> {
    return this.#call(MaintenanceService.method.usage);
  }

  pruneLeases(): Promise<PrunedLease[]> {
    return this.#call(MaintenanceService.method.pruneLeases);
  }

  /** undefined from a daemon without the service (a containerd collects during synchronous deletes). */
  async collectGarbage(): Promise<GcStats | undefined> {
    try {
      return (await this.#call<GcStats | null>(MaintenanceService.method.collectGarbage)) ?? undefined;
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_NOT_IMPLEMENTED') return undefined;
      throw err;
    }
  }

  check(opts: { verify?: boolean } = {}): Promise<ConsistencyReport> {
    return this.#call(MaintenanceService.method.check, { verify: opts.verify === true });
  }
}
