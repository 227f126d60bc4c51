// The layering check (run by scripts/ci.sh): imports in src/ point down the layers below, never up, and
// folders do not import each other in a cycle. An exception would be listed in ALLOWED with its reason;
// there are none.
//   node_modules/.bin/node scripts/check-layers.ts        exit 1 naming every offending import
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');

/** Bottom to top. A unit is a top-level folder of src/, or a top-level file. */
const LAYERS: string[][] = [
  ['core'],
  // The interfaces (content, images, leases, namespaces, snapshots, diff, maintenance, the Backend that
  // bundles them) and the wire layer (generated protobuf code, proto conversions, service definitions).
  ['api'],
  ['config', 'content', 'remotes'],
  // The embedded store's parts, each on the ones below: lease owners and keepers, the metadata
  // database, the snapshotters (records in it), then the collector and the layer applier/differ.
  ['leases'],
  ['metadata'],
  ['snapshots'],
  ['gc', 'diff'],
  // The gRPC adapter (a client of any containerd API endpoint).
  ['client'],
  ['images'],
  // The embedded adapter's composition root: it wires the store's parts, and its consistency check
  // walks images.
  ['embedded'],
  ['archive', 'convert'],
  ['server', 'hoist', 'index.ts'],
  ['cli'],
];

/** Known exceptions: `from -> to` with why. None today; an entry needs a reason and a plan to remove it. */
const ALLOWED: Record<string, string> = {};

function unitOf(file: string): string {
  const rel = relative(SRC, file);
  const first = rel.split('/')[0]!;
  return first;
}

const layerOf = new Map<string, number>();
LAYERS.forEach((units, i) => {
  for (const u of units) layerOf.set(u, i);
});

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'gen') out.push(...sources(p));
    } else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const problems: string[] = [];
const edges = new Map<string, Set<string>>();
for (const file of sources(SRC)) {
  const from = unitOf(file);
  if (!layerOf.has(from)) problems.push(`${relative(SRC, file)}: ${from} is in no layer (add it to LAYERS)`);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:\bfrom|\bimport\()\s*'(\.{1,2}\/[^']+)'/g)) {
    const to = unitOf(resolve(dirname(file), m[1]!));
    if (to === from || to.startsWith('..')) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
    const key = `${from} -> ${to}`;
    if ((layerOf.get(to) ?? 0) > (layerOf.get(from) ?? 0) && !(key in ALLOWED)) {
      problems.push(`${relative(SRC, file)}: imports ${m[1]} (${key}: upward, ${to} is above ${from})`);
    }
  }
}

// Cycles between units, beyond the listed exceptions: a depth-first search over the edges not allowed.
const strict = new Map<string, string[]>();
for (const [from, tos] of edges)
  strict.set(
    from,
    [...tos].filter((to) => !(`${from} -> ${to}` in ALLOWED)),
  );
const state = new Map<string, 'open' | 'done'>();
const walk = (u: string, path: string[]) => {
  state.set(u, 'open');
  for (const v of strict.get(u) ?? []) {
    if (state.get(v) === 'open') problems.push(`cycle: ${[...path.slice(path.indexOf(v)), v].join(' -> ')}`);
    else if (!state.has(v)) walk(v, [...path, v]);
  }
  state.set(u, 'done');
};
for (const u of strict.keys()) if (!state.has(u)) walk(u, [u]);

// An exception that no import needs any more is taken off the list.
for (const key of Object.keys(ALLOWED)) {
  const [from, to] = key.split(' -> ') as [string, string];
  if (!edges.get(from)?.has(to)) problems.push(`ALLOWED['${key}'] is not needed any more: remove it`);
}

if (problems.length > 0) {
  process.stderr.write(
    `layering check: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `layering check: ${edges.size} units, imports point down (${Object.keys(ALLOWED).length} known exceptions)\n`,
);
