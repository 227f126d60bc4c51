// The daemon's metrics (docs/operations.md lists them): pulls, bytes fetched, pull durations, GC runs and
// what they reclaimed, the store's size, leases, and gRPC calls by method and code. Events are counted as
// they happen (Telemetry hooks, RpcEnv.onCallEnded); the store's size comes from a usage report computed
// at most once per refresh interval in the background, corrected after each GC run by what it removed,
// so a scrape never walks the store.
import type { Backend } from '../api/backend.ts';
import { GrpcCode, toHoistError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { GcRun } from './gc-scheduler.ts';
import { Registry } from './metrics.ts';
import { FetchedBytes, type PullObserver, type Telemetry } from './telemetry.ts';

/** How old the store usage may get before a scrape starts computing it again. */
export const USAGE_REFRESH_MS = 120_000;

/** Pulls take from well under a second (everything present) to many minutes (large images, slow links). */
const PULL_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Go's names for the codes (codes.Code.String()), as grpc-go's own metrics label them. */
const CODE_NAMES: Record<number, string> = {
  [GrpcCode.OK]: 'OK',
  [GrpcCode.CANCELLED]: 'Canceled',
  [GrpcCode.UNKNOWN]: 'Unknown',
  [GrpcCode.INVALID_ARGUMENT]: 'InvalidArgument',
  [GrpcCode.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [GrpcCode.NOT_FOUND]: 'NotFound',
  [GrpcCode.ALREADY_EXISTS]: 'AlreadyExists',
  [GrpcCode.PERMISSION_DENIED]: 'PermissionDenied',
  [GrpcCode.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [GrpcCode.FAILED_PRECONDITION]: 'FailedPrecondition',
  [GrpcCode.ABORTED]: 'Aborted',
  [GrpcCode.OUT_OF_RANGE]: 'OutOfRange',
  [GrpcCode.UNIMPLEMENTED]: 'Unimplemented',
  [GrpcCode.INTERNAL]: 'Internal',
  [GrpcCode.UNAVAILABLE]: 'Unavailable',
  [GrpcCode.DATA_LOSS]: 'DataLoss',
  [GrpcCode.UNAUTHENTICATED]: 'Unauthenticated',
};

export interface ServerMetricsOptions {
  backend: Backend;
  log: Logger;
  /** gRPC calls whose handlers are running. */
  callsInFlight: () => number;
  /** Is the registry (peer mirror) endpoint on? Its series then exist from the start. */
  registryEndpoint?: boolean;
  /** Peer discovery ([peers]), when configured: the peers it knows are a gauge. */
  peers?: { readonly known: readonly string[] };
  usageRefreshMs?: number;
}

export class ServerMetrics implements Telemetry {
  readonly #o: Required<Omit<ServerMetricsOptions, 'peers'>> & Pick<ServerMetricsOptions, 'peers'>;
  readonly #r = new Registry();
  readonly #pullsStarted = this.#r.counter(
    'hoist_pulls_started_total',
    'Image pulls the daemon began (CRI PullImage).',
  );
  readonly #pullsSucceeded = this.#r.counter('hoist_pulls_succeeded_total', 'Image pulls that completed.');
  readonly #pullsFailed = this.#r.counter(
    'hoist_pulls_failed_total',
    "Image pulls that failed, by hoist's error code (HOIST_NETWORK, HOIST_NOT_FOUND, HOIST_CANCELLED, ...).",
    ['code'],
  );
  readonly #pullsInFlight = this.#r.gauge('hoist_pulls_in_flight', 'Image pulls under way.');
  readonly #fetched = this.#r.counter(
    'hoist_pull_fetched_bytes_total',
    'Bytes downloaded from registries by pulls (resumed data is not downloaded again and not counted).',
  );
  readonly #pullSeconds = this.#r.histogram(
    'hoist_pull_duration_seconds',
    'How long pulls took, from the request to the image record (failed pulls included).',
    PULL_BUCKETS,
  );
  readonly #gcRuns = this.#r.counter('hoist_gc_runs_total', 'Garbage collection runs, by result.', [
    'result',
  ]);
  readonly #gcReclaimed = this.#r.counter(
    'hoist_gc_reclaimed_bytes_total',
    'Bytes garbage collection removed, by what held them (content blobs, partial ingests, snapshots).',
    ['kind'],
  );
  readonly #contentBytes = this.#r.gauge('hoist_content_bytes', 'Bytes of committed content blobs on disk.');
  readonly #ingestBytes = this.#r.gauge(
    'hoist_ingest_bytes',
    'Bytes of partial downloads (ingests) on disk.',
  );
  readonly #snapshotBytes = this.#r.gauge(
    'hoist_snapshot_bytes',
    'Bytes of snapshots on disk, by snapshotter.',
    ['snapshotter'],
  );
  readonly #usageTime = this.#r.gauge(
    'hoist_store_usage_timestamp_seconds',
    'When the store sizes above were computed (they are refreshed in the background, and corrected after GC).',
  );
  readonly #leases = this.#r.gauge(
    'hoist_leases',
    'Leases in the store (pulls and writes in progress hold one).',
  );
  readonly #calls = this.#r.counter(
    'hoist_grpc_calls_total',
    'gRPC calls handled, by full method name and status code.',
    ['method', 'code'],
  );
  readonly #callsInFlight = this.#r.gauge('hoist_grpc_calls_in_flight', 'gRPC calls being handled.');
  readonly #registryRequests = this.#r.counter(
    'hoist_registry_requests_total',
    'Requests the registry (peer mirror) endpoint answered, by route (base, manifests, blobs, tags, other) and HTTP status code.',
    ['route', 'code'],
  );
  readonly #peers = this.#r.gauge(
    'hoist_peers',
    'Peers whose registry endpoints pulls try first, as discovery last found them ([peers]; this node left out).',
  );
  readonly #registrySent = this.#r.counter(
    'hoist_registry_sent_bytes_total',
    'Body bytes the registry (peer mirror) endpoint sent to peers, by route.',
    ['route'],
  );
  #usageAt = 0;
  /** The last usage report's figures, as corrected since; undefined while the store has reported none. */
  #sizes: { content: number; ingest: number } | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(opts: ServerMetricsOptions) {
    this.#o = { usageRefreshMs: USAGE_REFRESH_MS, registryEndpoint: false, ...opts };
    // Series that exist from the start, so rate() and increase() see the first event.
    for (const f of [this.#pullsStarted, this.#pullsSucceeded, this.#fetched]) f.touch();
    this.#pullSeconds.touch();
    for (const result of ['success', 'failure']) this.#gcRuns.touch({ result });
    for (const kind of ['content', 'ingest', 'snapshot']) this.#gcReclaimed.touch({ kind });
    this.#pullsInFlight.set(0);
    if (this.#o.registryEndpoint)
      for (const route of ['manifests', 'blobs']) {
        this.#registryRequests.touch({ route, code: '200' });
        this.#registrySent.touch({ route });
      }
  }

  /** For the registry endpoint's `observe`. */
  readonly registryServed = (route: string, status: number, bytes: number): void => {
    this.#registryRequests.inc({ route, code: String(status) });
    this.#registrySent.inc({ route }, bytes);
  };

  /** For RpcEnv.onCallEnded. */
  readonly callEnded = (method: string, code: GrpcCode, _ms: number): void => {
    this.#calls.inc({ method, code: CODE_NAMES[code] ?? String(code) });
  };

  pullStarted(): PullObserver {
    const started = performance.now();
    this.#pullsStarted.inc();
    this.#pullsInFlight.inc();
    const bytes = new FetchedBytes((n) => this.#fetched.inc(undefined, n));
    let ended = false;
    return {
      progress: bytes.progress,
      done: (err?: unknown) => {
        if (ended) return;
        ended = true;
        this.#pullsInFlight.inc(undefined, -1);
        this.#pullSeconds.observe((performance.now() - started) / 1000);
        if (err === undefined) this.#pullsSucceeded.inc();
        else this.#pullsFailed.inc({ code: toHoistError(err).code });
      },
    };
  }

  gcRan(run: GcRun): void {
    this.#gcRuns.inc({ result: run.error === undefined ? 'success' : 'failure' });
    const s = run.stats;
    if (!s) return;
    this.#gcReclaimed.inc({ kind: 'content' }, s.removedBytes);
    this.#gcReclaimed.inc({ kind: 'ingest' }, s.removedIngestBytes);
    this.#gcReclaimed.inc({ kind: 'snapshot' }, s.removedSnapshotBytes);
    // What was removed no longer counts; the next refresh has the exact figures.
    if (this.#sizes) {
      this.#sizes.content = Math.max(0, this.#sizes.content - s.removedBytes);
      this.#sizes.ingest = Math.max(0, this.#sizes.ingest - s.removedIngestBytes);
      this.#contentBytes.set(this.#sizes.content);
      this.#ingestBytes.set(this.#sizes.ingest);
    }
  }

  /** The exposition after bringing the gauges up to date (cheaply: see the file's comment). */
  async scrape(): Promise<string> {
    this.#callsInFlight.set(this.#o.callsInFlight());
    if (this.#o.peers) this.#peers.set(this.#o.peers.known.length);
    await Promise.all([this.#refreshUsage(), this.#countLeases()]);
    return this.#r.expose();
  }

  /** Start a refresh when the usage is stale; only the very first scrape waits for one. */
  async #refreshUsage(): Promise<void> {
    if (!this.#refreshing && Date.now() - this.#usageAt >= this.#o.usageRefreshMs)
      this.#refreshing = this.#loadUsage().finally(() => {
        this.#refreshing = undefined;
      });
    if (this.#usageAt === 0) await this.#refreshing;
  }

  async #loadUsage(): Promise<void> {
    try {
      const u = await this.#o.backend.maintenance.usage();
      this.#sizes = { content: u.blobs.fileBytes, ingest: u.ingests.bytes };
      this.#contentBytes.set(u.blobs.fileBytes);
      this.#ingestBytes.set(u.ingests.bytes);
      this.#snapshotBytes.clear();
      for (const s of u.snapshots.bySnapshotter)
        this.#snapshotBytes.set(s.bytes, { snapshotter: s.snapshotter });
      this.#usageTime.set(Math.floor(Date.now() / 1000));
    } catch (err) {
      // A store that cannot report usage (a containerd behind hoist) has no size gauges; say so once.
      if (this.#usageAt === 0) this.#o.log.warn('metrics: store usage unavailable', { error: err });
    } finally {
      this.#usageAt = Date.now();
    }
  }

  async #countLeases(): Promise<void> {
    const { backend } = this.#o;
    try {
      let n = 0;
      for (const ns of await backend.namespaces.list())
        n += (await backend.leases.list({ namespace: ns.name })).length;
      this.#leases.set(n);
    } catch {
      this.#leases.clear();
    }
  }
}
