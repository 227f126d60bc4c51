// Listing 10,000 names of one image in one namespace:
//   hoist images / hoist images --all / hoist images -q      vs   ctr images ls / ctr images ls -q
// Setup (untimed): one real pull of the medium image into each store, then the same 10,000 extra names on
// its target in both:
// - hoist: through the library (openLocalStore(root).images.create), all in one metadata transaction;
// - containerd: `ctr images tag SRC T1 … T500`, one ctr invocation per batch of 500 names, two at a time.
//   Each name is still one Images.Create call and one bbolt transaction in the daemon (containerd has no
//   batch create, and `ctr images import` of an archive with many names also creates them one by one),
//   so this is as fast as the public API allows without writing containerd's database behind its back.
// The stores are then read-only, so every run lists the same store: each hoist run is a fresh process
// opening the database (hoist has no daemon); containerd is its long-running daemon, as deployed, and
// each run is a fresh `ctr` client.

import { openLocalStore } from '../src/embedded/store.ts';
import { startContainerd } from './containerd.ts';
import {
  type Bench,
  hoistStore,
  log,
  machineLine,
  printCpuRatios,
  printGoals,
  printTable,
  RUNS,
  type RunResult,
  runInterleaved,
  type Sample,
  sampleOf,
  startupBench,
  summarize,
} from './lib.ts';
import { registryWithMediumImage } from './medium-image.ts';

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
  const tagSeconds = (performance.now() - t) / 1000;
  log(`containerd: fetch + ${NAMES} tags in ${tagSeconds.toFixed(1)} s`);

  const lines = (r: RunResult) => r.stdout.trimEnd().split('\n').length;
  const expectLines = (what: string, r: RunResult, n: number) => {
    if (lines(r) !== n) throw new Error(`${what} printed ${lines(r)} lines, expected ${n}`);
  };
  const all = NAMES + 1;
  const hoistRun = (args: string[], expected: number) => async (): Promise<Sample> => {
    const r = await store.hoist(args, { keepStdout: true });
    expectLines(`hoist ${args.join(' ')}`, r, expected);
    return sampleOf(r);
  };
  const ctrRun = (args: string[], expected: number) => async (): Promise<Sample> => {
    const { result, sample } = await ctrd.timedCtr(args, { keepStdout: true });
    expectLines(`ctr ${args.join(' ')}`, result, expected);
    return sample;
  };
  const benches: Bench[] = [
    // Table output: a header plus one row per tag (hoist; every name here is a tag) / per name (ctr).
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
      name: 'ctr images ls -q',
      command: 'ctr -a SOCK images ls -q',
      samples: [],
      fn: ctrRun(['images', 'ls', '-q'], all),
    },
    startupBench(store),
  ];
  await runInterleaved(benches);

  process.stdout.write(`# images list: ${all} names on one image, one namespace\n\n${await machineLine()}\n`);
  process.stdout.write(
    `- setup: containerd got its ${NAMES} extra names with ${Math.ceil(NAMES / BATCH)} \`ctr images tag\` calls of ${BATCH} names (2 in parallel) in ${tagSeconds.toFixed(1)} s\n`,
  );
  printTable(`list ${all} names (median of ${RUNS})`, benches);
  const z = Object.fromEntries(benches.map((s) => [s.name, summarize(s).median]));
  process.stdout.write(
    `\nFor information (no goal): hoist images -q / ctr images ls -q = ${(z['hoist images -q']! / z['ctr images ls -q']!).toFixed(2)}×; hoist start-up alone (\`hoist --version\`) is ${z['hoist --version (start-up)']!.toFixed(0)} ms of hoist images' ${z['hoist images']!.toFixed(0)} ms\n`,
  );
  const by = (n: string) => benches.find((b) => b.name === n)!;
  printCpuRatios([
    [by('hoist images'), by('ctr images ls')],
    [by('hoist images --all'), by('ctr images ls')],
  ]);
  printGoals([
    { label: 'hoist images / ctr images ls', value: z['hoist images']! / z['ctr images ls']!, limit: 0.1 },
    {
      label: 'hoist images --all / ctr images ls (same rows)',
      value: z['hoist images --all']! / z['ctr images ls']!,
      limit: 0.1,
    },
  ]);
} finally {
  await ctrd.stop();
  await store.cleanup();
  await reg.stop();
}
