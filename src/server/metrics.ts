// A small metrics registry and Prometheus' text exposition format (version 0.0.4): counters, gauges and
// histograms with labels, rendered on each scrape. hoist needs a dozen series, not a client library: this
// is what prometheus/client_golang's text encoder writes for them, and nothing more.
//
// Format rules kept here: one `# HELP` and one `# TYPE` line per family, before its samples; names match
// [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (never starting with `__`); in HELP text `\`
// and newline are escaped, in label values also `"`; values are Go floats (`+Inf`, `-Inf`, `NaN`); a
// histogram's `_bucket` samples are cumulative, end with `le="+Inf"` equal to `_count`, and come with `_sum`.
import { HoistError } from '../core/errors.ts';

export type LabelValues = Record<string, string>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function checkName(name: string, labelNames: readonly string[]): void {
  // A bad name is a programming error in hoist, not input: fail at registration, not at scrape.
  if (!METRIC_NAME.test(name)) throw new HoistError('HOIST_INTERNAL', `invalid metric name ${name}`);
  for (const l of labelNames)
    if (!LABEL_NAME.test(l) || l.startsWith('__') || l === 'le')
      throw new HoistError('HOIST_INTERNAL', `invalid label name ${l} on ${name}`);
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  /** Series by their label values joined with NUL (a character label values never need). */
  protected series = new Map<string, { values: string[]; state: S }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    checkName(name, labelNames);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected get(labels: LabelValues | undefined, init: () => S): S {
    const values = this.labelNames.map((n) => labels?.[n] ?? '');
    const key = values.join('\0');
    let s = this.series.get(key);
    if (!s) {
      s = { values, state: init() };
      this.series.set(key, s);
    }
    return s.state;
  }

  protected abstract lines(values: string[], state: S, out: string[]): void;

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const { values, state } of this.series.values()) this.lines(values, state, out);
  }
}

export class Counter extends Family<{ v: number }> {
  readonly type = 'counter';

  inc(labels?: LabelValues, by = 1): void {
    if (!(by >= 0)) throw new HoistError('HOIST_INTERNAL', `${this.name}: a counter only goes up`);
    this.get(labels, () => ({ v: 0 })).v += by;
  }

  /** Make the series exist at 0 (so a rate over it starts at the first scrape, not the first event). */
  touch(labels?: LabelValues): void {
    this.get(labels, () => ({ v: 0 }));
  }

  protected lines(values: string[], s: { v: number }, out: string[]): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`);
  }
}

export class Gauge extends Family<{ v: number }> {
  readonly type = 'gauge';

  set(value: number, labels?: LabelValues): void {
    this.get(labels, () => ({ v: 0 })).v = value;
  }

  inc(labels?: LabelValues, by = 1): void {
    this.get(labels, () => ({ v: 0 })).v += by;
  }

  /** Drop every series (a gauge whose source is gone should vanish, not freeze). */
  clear(): void {
    this.series.clear();
  }

  protected lines(values: string[], s: { v: number }, out: string[]): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`);
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Family<HistogramState> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!))
      throw new HoistError('HOIST_INTERNAL', `${name}: buckets must increase`);
    this.buckets = buckets;
  }

  observe(value: number, labels?: LabelValues): void {
    const s = this.get(labels, () => this.#empty());
    // Per bucket (not cumulative) here; cumulated when rendered.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  touch(labels?: LabelValues): void {
    this.get(labels, () => this.#empty());
  }

  #empty(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  protected lines(values: string[], s: HistogramState, out: string[]): void {
    let cumulative = 0;
    this.buckets.forEach((b, i) => {
      cumulative += s.counts[i]!;
      out.push(
        `${this.name}_bucket${labelText(this.labelNames, values, ['le', formatValue(b)])} ${cumulative}`,
      );
    });
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', '+Inf'])} ${s.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
  }
}

export class Registry {
  #families: { readonly name: string; render(out: string[]): void }[] = [];

  #add<F extends { readonly name: string; render(out: string[]): void }>(f: F): F {
    if (this.#families.some((x) => x.name === f.name))
      throw new HoistError('HOIST_INTERNAL', `metric ${f.name} registered twice`);
    this.#families.push(f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    if (!name.endsWith('_total'))
      throw new HoistError('HOIST_INTERNAL', `counter ${name}: counters are named *_total`);
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  /** The text exposition of every family, in registration order. */
  expose(): string {
    const out: string[] = [];
    for (const f of this.#families) f.render(out);
    return `${out.join('\n')}\n`;
  }
}
