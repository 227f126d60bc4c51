// Removing the medium image, garbage collection included, from a store that holds just that image:
//   hoist rmi REF          (by name; GC runs before it returns)
//   hoist rmi <12-hex ID>  (by short ID: every name of the image, then GC)
//   ctr images rm --sync REF   (containerd 1.6: delete the record, wait for its GC)
// Setup per run (untimed): hoist gets a fresh copy (`cp -a`) of a store into which the image was pulled
// once; containerd gets a fresh daemon and a `ctr content fetch` of the image. Each run checks that the
// tool removed every one of the 7 blobs (hoist: blobs/ on disk; containerd: `ctr content ls`).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from './containerd.ts';
import {
  type Bench,
  type HoistStore,
  hoistStore,
  machineLine,
  printCpuRatios,
  printGoals,
  printTable,
  RUNS,
  runInterleaved,
  type Sample,
  sampleOf,
  startupBench,
  summarize,
} from './lib.ts';
import { registryWithMediumImage } from './medium-image.ts';

const BLOBS = 7;

const reg = await registryWithMediumImage();
const ref = reg.ref;
const shortId = reg.image.manifestDigest.slice('sha256:'.length, 'sha256:'.length + 12);

const blobCount = async (s: HoistStore) =>
  (await readdir(join(s.root, 'content', 'blobs', 'sha256')).catch(() => [])).length;

// The template store: one real pull (fetch only), never modified afterwards.
const template = await hoistStore();
const fetchOnly = (await template.hoist(['pull', '--help'])).stdout.includes('--unpack')
  ? ['--unpack=false']
  : [];
await template.hoist(['pull', '-q', '--plain-http', ...fetchOnly, ref]);
if ((await blobCount(template)) !== BLOBS) throw new Error('template pull did not store 7 blobs');

const hoistRmi = (arg: string) => async (): Promise<Sample> => {
  const store = await hoistStore({ from: template.root });
  try {
    if ((await blobCount(store)) !== BLOBS) throw new Error('store copy lacks blobs');
    const r = await store.hoist(['rmi', arg]);
    const left = await blobCount(store);
    if (left !== 0) throw new Error(`hoist rmi ${arg} left ${left} blobs`);
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrRm = async (): Promise<Sample> => {
  const d = await startContainerd();
  try {
    await d.ctr(['content', 'fetch', '--plain-http', ref]);
    const { sample } = await d.timedCtr(['images', 'rm', '--sync', ref]);
    const ls = await d.ctr(['content', 'ls', '-q'], { keepStdout: true });
    const left = ls.stdout.trim().split('\n').filter(Boolean).length;
    if (left !== 0) throw new Error(`ctr images rm --sync left ${left} blobs`);
    return sample;
  } finally {
    await d.stop();
  }
};

const benches: Bench[] = [
  { name: 'hoist rmi NAME', command: `hoist rmi ${ref}`, samples: [], fn: hoistRmi(ref) },
  { name: 'hoist rmi SHORT-ID', command: `hoist rmi ${shortId}`, samples: [], fn: hoistRmi(shortId) },
  { name: 'ctr images rm --sync', command: `ctr -a SOCK images rm --sync ${ref}`, samples: [], fn: ctrRm },
  startupBench(template),
];

try {
  await runInterleaved(benches);
} finally {
  await template.cleanup();
  await reg.stop();
}

process.stdout.write(`# rmi: the medium image with its garbage collection\n\n${await machineLine()}\n`);
process.stdout.write(
  `- image: ${ref} (ID ${shortId}), 7 blobs, ${(reg.image.compressedBytes / 1e6).toFixed(1)} MB\n`,
);
printTable(`rmi + GC (median of ${RUNS})`, benches);
const z = Object.fromEntries(benches.map((s) => [s.name, summarize(s).median]));
process.stdout.write(
  `\nFor information: hoist start-up alone (\`hoist --version\`) is ${z['hoist --version (start-up)']!.toFixed(0)} ms of hoist rmi NAME's ${z['hoist rmi NAME']!.toFixed(0)} ms\n`,
);
printCpuRatios([
  [benches[0]!, benches[2]!],
  [benches[1]!, benches[2]!],
]);
printGoals([
  {
    label: 'hoist rmi NAME / ctr images rm --sync',
    value: z['hoist rmi NAME']! / z['ctr images rm --sync']!,
    limit: 0.5,
  },
  {
    label: 'hoist rmi SHORT-ID / ctr images rm --sync',
    value: z['hoist rmi SHORT-ID']! / z['ctr images rm --sync']!,
    limit: 0.5,
  },
]);
