// A strict parser of Prometheus' text exposition format 0.0.4, for checking what hoist serve's /metrics
// says: it throws, naming the line, on anything a Prometheus server would reject or a careful exporter
// would not write: a bad metric or label name, a bad escape, a value that is not a Go float, a TYPE after
// its samples or twice, a family's samples split apart, a repeated series, a histogram whose buckets are
// not cumulative or lack `+Inf`, `_sum` or `_count`, a counter not named `_total`.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`… for a histogram `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string | undefined;
  type: MetricType;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)$/;

function parseValue(text: string, where: string): number {
  if (!FLOAT.test(text)) throw new Error(`${where}: value ${JSON.stringify(text)} is not a float`);
  if (text.endsWith('Inf')) return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  return text.endsWith('NaN') ? Number.NaN : Number(text);
}

/** The family a sample name belongs to, given the families typed so far. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = families.get(base)?.type;
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return name;
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let s = text.slice(1);
  for (;;) {
    s = s.replace(/^ */, '');
    if (s.startsWith('}')) return { labels, rest: s.slice(1) };
    const m = LABEL_NAME.exec(s);
    if (!m) throw new Error(`${where}: bad label name at ${JSON.stringify(s.slice(0, 20))}`);
    const name = m[0];
    if (name.startsWith('__')) throw new Error(`${where}: label ${name} is reserved`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    s = s.slice(name.length).replace(/^ */, '');
    if (!s.startsWith('="')) throw new Error(`${where}: label ${name} lacks ="`);
    s = s.slice(2);
    let value = '';
    for (;;) {
      const c = s[0];
      if (c === undefined || c === '\n') throw new Error(`${where}: label ${name}'s value is not closed`);
      s = s.slice(1);
      if (c === '"') break;
      if (c !== '\\') {
        value += c;
        continue;
      }
      const e = s[0];
      s = s.slice(1);
      if (e === '\\') value += '\\';
      else if (e === '"') value += '"';
      else if (e === 'n') value += '\n';
      else throw new Error(`${where}: bad escape \\${e ?? ''} in label ${name}`);
    }
    labels[name] = value;
    s = s.replace(/^ */, '');
    if (s.startsWith(',')) s = s.slice(1);
    else if (!s.startsWith('}')) throw new Error(`${where}: expected , or } after label ${name}`);
  }
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`${f.name}: sample ${s.name} does not belong to a histogram`);
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${f.name}${key}: no _sum or _count`);
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${f.name}${key}: no le="+Inf" bucket last`);
    if (last[1] !== g.count)
      throw new Error(`${f.name}${key}: +Inf bucket ${last[1]} is not _count ${g.count}`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${f.name}${key}: le not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}${key}: buckets not cumulative`);
    }
  }
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { name, help: undefined, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const enter = (name: string, where: string) => {
    if (current === name) return;
    if (finished.has(name)) throw new Error(`${where}: ${name} appears again after other families`);
    if (current !== undefined) finished.add(current);
    current = name;
  };
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!) || METRIC_NAME.exec(name!)![0] !== name)
        throw new Error(`${where}: bad metric name ${name}`);
      enter(name!, where);
      const f = family(name!);
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_, e: string) => (e === 'n' ? '\n' : '\\'));
      } else {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
        if (f.samples.length > 0 || f.type !== 'untyped')
          throw new Error(`${where}: TYPE of ${name} too late or twice`);
        f.type = rest as MetricType;
      }
      return;
    }
    const m = METRIC_NAME.exec(line);
    if (!m) throw new Error(`${where}: bad metric name in ${JSON.stringify(line)}`);
    const name = m[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where));
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3)
      throw new Error(
        `${where}: expected " value [timestamp]" after the labels, got ${JSON.stringify(rest)}`,
      );
    const value = parseValue(parts[1]!, where);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`${where}: bad timestamp`);
    const fname = familyOf(name, families);
    enter(fname, where);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    family(fname).samples.push({ name, labels, value });
  });
  for (const f of families.values()) {
    if (f.type === 'counter') {
      if (!f.name.endsWith('_total')) throw new Error(`counter ${f.name} is not named *_total`);
      for (const s of f.samples) if (!(s.value >= 0)) throw new Error(`counter ${f.name} is ${s.value}`);
    }
    if (f.type === 'histogram') checkHistogram(f);
  }
  return families;
}

/** The value of one series (`labels` must match exactly), or undefined. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values())
    for (const s of f.samples)
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
  return undefined;
}
