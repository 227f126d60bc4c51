// What the daemon's parts report as they work, for whoever counts it (server-metrics.ts). The store, the
// puller and the collector know nothing of metrics: services and the server's own adapters call these
// hooks, fed by what lower layers already expose (a pull's progress callback, the collector's stats, each
// call's status).
import type { BlobProgress, ProgressFn } from '../images/fetch-blob.ts';
import type { GcRun } from './gc-scheduler.ts';

/** One pull the daemon makes (the CRI's PullImage). */
export interface PullObserver {
  /** Pass as the pull's progress callback: downloaded bytes are counted from it. */
  progress: ProgressFn;
  /** The pull ended: succeeded without `err`, failed with it. Call once. */
  done(err?: unknown): void;
}

export interface Telemetry {
  pullStarted(): PullObserver;
  gcRan(run: GcRun): void;
}

/**
 * Bytes downloaded, from a pull's progress reports. fetch-blob reports each blob's offset when it starts
 * (where a resumed ingest already was), then every MiB or so: the growth between reports is what came
 * from the registry. An offset that goes back (a download restarted from 0) starts the count afresh.
 */
export class FetchedBytes {
  #offsets = new Map<string, number>();
  #onBytes: (n: number) => void;

  constructor(onBytes: (n: number) => void) {
    this.#onBytes = onBytes;
  }

  readonly progress: ProgressFn = (key: string, state: BlobProgress) => {
    if (state.status !== 'downloading' && state.status !== 'verifying') {
      this.#offsets.delete(key);
      return;
    }
    const at = state.current;
    if (at === undefined) return;
    const last = this.#offsets.get(key);
    this.#offsets.set(key, at);
    if (last !== undefined && at > last) this.#onBytes(at - last);
  };
}
