// Summarise a V8 .cpuprofile (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=DIR on any bench): total
// sampled time, self time by function and by source area (hoist src/*, node_modules/<pkg>, node:
// internals, GC, idle), so it is clear where a hoist command spends its time.
// Usage: npx node bench/profile-summary.ts FILE.cpuprofile [top=25]
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `node_modules/${nm[1]}`;
  const src = /\/(src|bench|test)\/([^/]+)\//.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:internal.*/, 'node:internal');
  return url;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [top]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 25);
const p = JSON.parse(await readFile(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
p.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
});
const total = (p.endTime - p.startTime) / 1000;
const fnTotals = new Map<string, number>();
const areaTotals = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const short = f.url.replace(/^.*\/(src|node_modules|bench|test)\//, '$1/');
  const key = `${f.functionName || '(anonymous)'} ${short}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  fnTotals.set(key, (fnTotals.get(key) ?? 0) + us);
  const a = area(f.url, f.functionName);
  areaTotals.set(a, (areaTotals.get(a) ?? 0) + us);
}
const fmt = (us: number) =>
  `${(us / 1000).toFixed(1).padStart(8)} ms ${((us / 1000 / total) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(
  `${file}\nprofiled wall time ${total.toFixed(0)} ms (main thread)\n\nby area (self time):\n`,
);
for (const [a, us] of [...areaTotals].sort((x, y) => y[1] - x[1]).slice(0, top))
  process.stdout.write(`${fmt(us)}  ${a}\n`);
process.stdout.write('\nby function (self time):\n');
for (const [k, us] of [...fnTotals].sort((x, y) => y[1] - x[1]).slice(0, top))
  process.stdout.write(`${fmt(us)}  ${k}\n`);
