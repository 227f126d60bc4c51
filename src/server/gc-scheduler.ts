// Garbage collection in the daemon: on a schedule (config `gc.schedule`), a short while after deletions,
// when the earliest `containerd.io/gc.expire` of any lease passes (expired leases are deleted, as
// containerd's collector does; a lease whose hoist.io/owner process still runs is kept), and at once for
// `sync` deletes. Runs never overlap: a request during a run is served by the next run.
import type { Backend } from '../api/backend.ts';
import type { GcStats } from '../api/metadata.ts';
import { Labels } from '../core/labels.ts';
import type { Logger } from '../core/log.ts';
import { leaseExpiry } from '../gc/graph.ts';
import { isOwnerAlive } from '../leases/owner.ts';

/** What services may ask of the collector. */
export interface GcTrigger {
  /** Collect now and wait (a `sync` delete); joins a run already under way, then runs again. */
  collectNow(): Promise<void>;
  /** Collect a little later (after a deletion); repeated calls within the delay make one run. */
  schedule(): void;
  /** A lease was created or relabelled: its expiry may be the next one to act on. */
  leasesChanged(): void;
}

/** One collection, as the scheduler reports it (to the metrics). */
export interface GcRun {
  /** Undefined when the run failed, or the backend reports none (a containerd collects on its own). */
  stats: GcStats | undefined;
  removedLeases: number;
  error?: unknown;
}

export interface GcSchedulerOptions {
  backend: Backend;
  log: Logger;
  /** Periodic collection interval in ms; 0 disables the schedule. */
  intervalMs: number;
  /** Delay after a deletion before collecting. */
  delayMs?: number;
  isOwnerAlive?: (owner: string) => boolean;
  /** Told of every run's outcome. */
  onRun?: (run: GcRun) => void;
}

/** Timers cannot wait longer than ~24.8 days; expiry checks further out are re-armed on the schedule. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class GcScheduler implements GcTrigger {
  #o: Required<GcSchedulerOptions>;
  #interval: NodeJS.Timeout | undefined;
  #delayed: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(opts: GcSchedulerOptions) {
    this.#o = { delayMs: 5000, isOwnerAlive, onRun: () => undefined, ...opts };
  }

  start(): void {
    if (this.#o.intervalMs > 0)
      this.#interval = setInterval(() => this.#kick(), Math.min(this.#o.intervalMs, MAX_TIMER_MS));
    this.leasesChanged();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#interval);
    clearTimeout(this.#delayed);
    clearTimeout(this.#expiry);
    await this.#running;
  }

  schedule(): void {
    if (this.#stopped || this.#delayed) return;
    this.#delayed = setTimeout(() => {
      this.#delayed = undefined;
      this.#kick();
    }, this.#o.delayMs);
  }

  collectNow(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running.then(() => this.#running ?? this.collectNow());
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.#kick();
      }
    });
    return this.#running;
  }

  leasesChanged(): void {
    if (this.#stopped) return;
    this.#nextExpiry().then(
      (at) => {
        clearTimeout(this.#expiry);
        this.#expiry = undefined;
        if (at === undefined || this.#stopped) return;
        const wait = Math.min(Math.max(0, at - Date.now()) + 1000, MAX_TIMER_MS);
        this.#expiry = setTimeout(() => {
          this.#expiry = undefined;
          this.#kick();
        }, wait);
      },
      (err: unknown) => this.#o.log.warn('gc: reading lease expiries failed', { error: err }),
    );
  }

  #kick(): void {
    if (this.#stopped) return;
    this.collectNow().catch(() => undefined);
  }

  async #run(): Promise<void> {
    const { backend, log, onRun } = this.#o;
    let removedLeases = 0;
    try {
      removedLeases = await this.#deleteExpiredLeases();
      const stats = await backend.collectGarbage();
      log.info('gc', { removedLeases, ...(stats ?? {}) });
      onRun({ stats, removedLeases });
    } catch (err) {
      log.error('gc failed', { error: err });
      onRun({ stats: undefined, removedLeases, error: err });
      throw err;
    } finally {
      this.leasesChanged();
    }
  }

  /** Expired leases go (their resources become collectable); a live owner keeps its lease. */
  async #deleteExpiredLeases(): Promise<number> {
    const { backend } = this.#o;
    const now = Date.now();
    let removed = 0;
    for (const ns of await backend.namespaces.list()) {
      const ctx = { namespace: ns.name };
      for (const lease of await backend.leases.list(ctx)) {
        const exp = leaseExpiry(lease.labels);
        if (exp === undefined || exp.getTime() > now) continue;
        const owner = lease.labels[Labels.leaseOwner];
        if (owner !== undefined && this.#o.isOwnerAlive(owner)) continue;
        await backend.leases.delete(ctx, lease.id).catch(() => undefined);
        removed++;
      }
    }
    return removed;
  }

  async #nextExpiry(): Promise<number | undefined> {
    const { backend } = this.#o;
    const now = Date.now();
    let next: number | undefined;
    for (const ns of await backend.namespaces.list())
      for (const lease of await backend.leases.list({ namespace: ns.name })) {
        const exp = leaseExpiry(lease.labels)?.getTime();
        if (exp === undefined || (next !== undefined && exp >= next)) continue;
        // Already expired but kept by its live owner: the periodic run looks at it again.
        const owner = lease.labels[Labels.leaseOwner];
        if (exp <= now && owner !== undefined && this.#o.isOwnerAlive(owner)) continue;
        next = exp;
      }
    return next;
  }
}
