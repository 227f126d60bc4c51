// What bench/soak-serve.ts measures and how it sums it up: a process's memory and open descriptors from
// /proc, what those descriptors are, per-operation latencies, percentiles and a least-squares slope (so a
// flat line is a number, not an impression).
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { CallRecord } from '../test/helpers/serve-load.ts';

export interface ProcSample {
  /** Seconds since the load began (negative: before it). */
  s: number;
  rssKiB: number;
  hwmKiB: number;
  fds: number;
  threads: number;
  /** Calls finished by all clients so far. */
  calls: number;
}

export async function sampleProc(pid: number): Promise<Omit<ProcSample, 's' | 'calls'>> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), fds, threads: field('Threads') };
}

const TCP_STATES: Record<string, string> = {
  '01': 'established',
  '06': 'time-wait',
  '08': 'close-wait',
  '0A': 'listening',
};

/**
 * Sockets by inode, from the process's network namespace: unix sockets with their path (an accepted
 * connection shows its listener's) and connection state, TCP sockets with the peer's port and state.
 */
async function socketNames(pid: number): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const unix = await readFile(`/proc/${pid}/net/unix`, 'utf8').catch(() => '');
  for (const line of unix.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    const state = f[5] === '03' ? 'connected' : f[5] === '01' ? 'unconnected' : `state ${f[5]}`;
    names.set(f[6]!, `unix ${f[7] ?? '(unnamed)'} ${state}`);
  }
  for (const file of ['tcp', 'tcp6']) {
    const tcp = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
    for (const line of tcp.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = Number.parseInt(f[2]!.split(':')[1] ?? '0', 16);
      names.set(f[9]!, `tcp to port ${port} ${TCP_STATES[f[3]!] ?? `state ${f[3]}`}`);
    }
  }
  return names;
}

/**
 * The process's descriptors by what they point at: sockets (unix by path, TCP by peer port, with their
 * state), pipes, event fds, and files by path (the daemon's temp dir shown as <dir>, digests and ids
 * shortened to …), so a leak names its kind and place.
 */
export async function fdKinds(pid: number, dir: string): Promise<Map<string, number>> {
  const sockets = await socketNames(pid);
  const kinds = new Map<string, number>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => 'closed meanwhile');
    const socket = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const kind = socket
      ? `socket: ${sockets.get(socket) ?? 'other'}`.replaceAll(dir, '<dir>')
      : target
          .replace(/^pipe:\[\d+\]$/, 'pipe')
          .replaceAll(dir, '<dir>')
          .replace(/[0-9a-f]{12,}|\d{3,}/g, '…');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}

/** A failure's message with what differs between calls (digests, ports, which image) made generic. */
function messageKind(m: string): string {
  return m
    .replace(/sha256:[0-9a-f]{64}/g, 'sha256:…')
    .replace(/[0-9a-f]{64}/g, '…')
    .replace(/127\.0\.0\.1:\d+/g, '<registry>')
    .replace(/extract-\d+-\S+/g, 'extract-…')
    .replace(/app\d:v\d/g, 'appN:vN')
    .replace(/\b\d{4}-\d\d-\d\dT[\d:.]+Z?\b/g, '<time>')
    .slice(0, 300);
}

export class Latencies {
  readonly #byOp = new Map<string, { ms: number[]; ok: number; notFound: number; errors: number }>();
  /** Per operation and outcome, how often each kind of failure message came back. */
  readonly #failures = new Map<string, Map<string, number>>();

  add(c: CallRecord): void {
    let e = this.#byOp.get(c.op);
    if (!e) {
      e = { ms: [], ok: 0, notFound: 0, errors: 0 };
      this.#byOp.set(c.op, e);
    }
    e.ms.push(c.ms);
    if (c.outcome === 'ok') e.ok++;
    else if (c.outcome === 'not found') e.notFound++;
    else e.errors++;
    if (c.outcome === 'ok') return;
    const key = `${c.op}\t${c.outcome}`;
    const kinds = this.#failures.get(key) ?? new Map<string, number>();
    this.#failures.set(key, kinds);
    const kind = messageKind(c.message ?? '');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }

  /** Rows: operation, outcome, times, message (each kind of message once, most frequent first). */
  failureRows(): string[][] {
    const rows: string[][] = [];
    for (const [key, kinds] of this.#failures) {
      const [op, outcome] = key.split('\t') as [string, string];
      for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1]))
        rows.push([op, outcome, String(n), kind.replaceAll('|', '\\|')]);
    }
    return rows;
  }

  get calls(): number {
    let n = 0;
    for (const e of this.#byOp.values()) n += e.ms.length;
    return n;
  }

  /** Rows: operation, calls, ok, not found, errors, p50, p90, p99, max (ms). */
  rows(): string[][] {
    return [...this.#byOp.entries()].map(([op, e]) => {
      const s = [...e.ms].sort((a, b) => a - b);
      const p = (q: number) => percentile(s, q).toFixed(0);
      return [op, `${s.length}`, `${e.ok}`, `${e.notFound}`, `${e.errors}`, p(50), p(90), p(99), p(100)];
    });
  }
}

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

/** first, min, max, last and the per-minute slope over the load's second half, of one series. */
export function trend(samples: ProcSample[], loadSeconds: number, y: (s: ProcSample) => number) {
  const ys = samples.map(y);
  const half = samples.filter((s) => s.s >= loadSeconds / 2 && s.s <= loadSeconds);
  return {
    first: ys[0]!,
    min: Math.min(...ys),
    max: Math.max(...ys),
    last: ys[ys.length - 1]!,
    perMinute: slope(half.map((s) => [s.s / 60, y(s)])),
  };
}
