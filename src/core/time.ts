// Times with nanoseconds, as containerd keeps them. containerd stamps content, ingests, snapshots and
// images with Go's time.Now() and its clients compare those stamps with their own clock (a label update
// must fall between the client's before and after); a JS Date holds milliseconds, so a stamp cut to the
// millisecond reads as earlier than the call that made it. A PreciseDate is a Date (every consumer of a
// Date keeps working) that also carries the nanoseconds since the epoch, which the metadata database
// stores as an int64 and the wire conversions put into google.protobuf.Timestamp.

/** A Date with the exact nanoseconds since the epoch it was made from. */
export class PreciseDate extends Date {
  readonly #epochNs: bigint;

  constructor(epochNs: bigint) {
    // Floor, not truncate, so times before 1970 land in the right millisecond too.
    const ms = epochNs >= 0n ? epochNs / 1_000_000n : -((-epochNs + 999_999n) / 1_000_000n);
    super(Number(ms));
    this.#epochNs = epochNs;
  }

  get epochNs(): bigint {
    return this.#epochNs;
  }
}

/** Nanoseconds since the epoch of any Date (a plain Date counts whole milliseconds). */
export function epochNsOf(d: Date): bigint {
  return d instanceof PreciseDate ? d.epochNs : BigInt(d.getTime()) * 1_000_000n;
}

/** A Date from nanoseconds since the epoch (as stored: an int64, or its decimal text). */
export function dateFromNs(ns: bigint | number | string): PreciseDate {
  return new PreciseDate(typeof ns === 'bigint' ? ns : BigInt(ns));
}

// The wall clock to the microsecond: Node gives the real-time clock only in milliseconds (Date.now()),
// but performance.timeOrigin is the real time (µs) when the process started and performance.now() the
// monotonic time since. The two drift apart only when the real-time clock is stepped (settimeofday, a
// VM resumed); a reading more than a millisecond outside Date.now()'s is re-based on Date.now(), so a
// stepped clock costs sub-millisecond precision for that reading, never a wrong time.
let correctionNs = 0n;

function monotonicWallNs(): bigint {
  const originUs = BigInt(Math.round(performance.timeOrigin * 1000));
  return originUs * 1000n + BigInt(Math.round(performance.now() * 1e6)) + correctionNs;
}

/** Now, in nanoseconds since the epoch (microsecond resolution). */
export function nowNs(): bigint {
  const ns = monotonicWallNs();
  const ms = BigInt(Date.now());
  const low = (ms - 1n) * 1_000_000n;
  const high = (ms + 2n) * 1_000_000n;
  if (ns >= low && ns < high) return ns;
  const rebased = ms * 1_000_000n;
  correctionNs += rebased - ns;
  return rebased;
}

/** Now, as a PreciseDate. */
export function preciseNow(): PreciseDate {
  return new PreciseDate(nowNs());
}

/** RFC 3339 with nanoseconds, UTC (Go's time.RFC3339Nano, as containerd writes an ingest's times). */
export function formatRfc3339Nano(ns: bigint): string {
  const d = new PreciseDate(ns);
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const digits = frac.toString().padStart(9, '0').replace(/0+$/, '');
  return `${d.toISOString().slice(0, 19)}${digits ? `.${digits}` : ''}Z`;
}

/** An RFC 3339 time with up to nanoseconds (or a plain ISO date); undefined when it is not one. */
export function parseRfc3339Nano(text: string): PreciseDate | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return new PreciseDate(BigInt(seconds) * 1_000_000n + frac);
}
