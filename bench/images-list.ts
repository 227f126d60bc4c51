// Listing 10,000 names of one image in one namespace:
//   hoist images / hoist images --all / hoist images -q      vs   ctr images ls / ctr images ls -q
// Setup (untimed): one real pull of the medium image into each store, then 10,000 more names on its target
// (hoist: written through the library in one transaction; containerd: `ctr images tag SRC T1 … Tn` in
// batches). The stores are then read-only, so every run lists the same store: each hoist run is a fresh
// process opening the database; containerd is its long-running daemon, as deployed.
import { openLocalStore } from '../src/metadata/store.ts';
import {
  hoistStore,
  log,
  machineLine,
  printGoals,
  printTable,
  RUNS,
  type RunResult,
  registryWithMediumImage,
  type Sample,
  type Series,
  startContainerd,
  summarize,
} from './lib.ts';

const NAMES = Number(process.env.BENCH_NAMES ?? 10_000);
const BATCH = 500;
const nameOf = (i: number) => `bench.local/team${i % 20}/app${i % 500}:v${i}`;

const reg = await registryWithMediumImage();
const store = await hoistStore();
const ctrd = await startContainerd();

try {
  // hoist: one real pull, then the names through the library.
  let t = performance.now();
  await store.hoist(['pull', '-q', '--plain-http', reg.ref]);
  const lib = await openLocalStore(store.root);
  try {
    const ctx = { namespace: 'default' };
    const target = (await lib.images.get(ctx, reg.ref)).target;
    await lib.db.transaction(async () => {
      for (let i = 0; i < NAMES; i++) await lib.images.create(ctx, { name: nameOf(i), target, labels: {} });
    });
  } finally {
    lib.close();
  }
  log(`hoist store: pull + ${NAMES} names in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // containerd: one real fetch, then `ctr images tag` with many targets per call, two calls at a time.
  t = performance.now();
  await ctrd.ctr(['content', 'fetch', '--plain-http', reg.ref]);
  const batches: string[][] = [];
  for (let i = 0; i < NAMES; i += BATCH)
    batches.push(Array.from({ length: Math.min(BATCH, NAMES - i) }, (_, k) => nameOf(i + k)));
  const worker = async () => {
    for (let b = batches.shift(); b; b = batches.shift()) await ctrd.ctr(['images', 'tag', reg.ref, ...b]);
  };
  await Promise.all([worker(), worker()]);
  log(`containerd: fetch + ${NAMES} tags in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const lines = (r: RunResult) => r.stdout.trimEnd().split('\n').length;
  const expectLines = (what: string, r: RunResult, n: number) => {
    if (lines(r) !== n) throw new Error(`${what} printed ${lines(r)} lines, expected ${n}`);
  };
  const all = NAMES + 1;
  const hoistRun = (args: string[], expected: number) => async (): Promise<Sample> => {
    const r = await store.hoist(args, { keepStdout: true });
    expectLines(`hoist ${args.join(' ')}`, r, expected);
    return { ms: r.ms, rssKiB: r.maxRssKiB };
  };
  const ctrRun = (args: string[], expected: number) => async (): Promise<Sample> => {
    const r = await ctrd.ctr(args, { keepStdout: true });
    expectLines(`ctr ${args.join(' ')}`, r, expected);
    return { ms: r.ms, rssKiB: r.maxRssKiB, daemonRssKiB: await ctrd.peakRssKiB() };
  };
  const series: (Series & { fn: () => Promise<Sample> })[] = [
    // Table output: a header plus one row per tag (hoist) / per name (ctr).
    { name: 'hoist images', command: 'hoist images', samples: [], fn: hoistRun(['images'], all + 1) },
    {
      name: 'hoist images --all',
      command: 'hoist images --all',
      samples: [],
      fn: hoistRun(['images', '--all'], all + 1),
    },
    {
      name: 'ctr images ls',
      command: 'ctr -a SOCK images ls',
      samples: [],
      fn: ctrRun(['images', 'ls'], all + 1),
    },
    // -q: hoist prints unique image IDs (one here); ctr prints every name.
    { name: 'hoist images -q', command: 'hoist images -q', samples: [], fn: hoistRun(['images', '-q'], 1) },
    {
      name: 'hoist images -q --all',
      command: 'hoist images -q --all',
      samples: [],
      fn: hoistRun(['images', '-q', '--all'], all),
    },
    {
      name: 'ctr images ls -q',
      command: 'ctr -a SOCK images ls -q',
      samples: [],
      fn: ctrRun(['images', 'ls', '-q'], all),
    },
  ];
  log('warm-up (untimed): one run of each command');
  for (const s of series) await s.fn();
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < series.length; k++) {
      const s = series[(i + k) % series.length]!;
      const sample = await s.fn();
      s.samples.push(sample);
      log(`run ${i + 1}/${RUNS} ${s.name}: ${sample.ms.toFixed(0)} ms`);
    }
  }

  process.stdout.write(
    `# images list: ${NAMES + 1} names on one image, one namespace\n\n${await machineLine()}\n`,
  );
  printTable(`list ${NAMES + 1} names (median of ${RUNS})`, series);
  const z = Object.fromEntries(series.map((s) => [s.name, summarize(s).median]));
  printGoals([
    { label: 'hoist images / ctr images ls', value: z['hoist images']! / z['ctr images ls']!, limit: 0.1 },
    {
      label: 'hoist images --all / ctr images ls',
      value: z['hoist images --all']! / z['ctr images ls']!,
      limit: 0.1,
    },
    {
      label: 'hoist images -q / ctr images ls -q',
      value: z['hoist images -q']! / z['ctr images ls -q']!,
      limit: 0.1,
    },
    {
      label: 'hoist images -q --all / ctr images ls -q',
      value: z['hoist images -q --all']! / z['ctr images ls -q']!,
      limit: 0.1,
    },
  ]);
} finally {
  await ctrd.stop();
  await store.cleanup();
  await reg.stop();
}
