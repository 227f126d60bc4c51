// Fetch-only pull of the medium image from the loopback registry, into a cold store each run:
//   hoist pull --plain-http REF               (plus --unpack=false once pull unpacks by default)
//   ctr content fetch --plain-http REF        (containerd 1.6, a fresh daemon per run: fetches every blob,
//                                              labels it for GC and creates the image record; no unpack)
//   skopeo copy docker://REF oci:DIR:v1       (fetches and verifies every blob into an OCI layout)
// Every tool must end with the same 7 blobs (index-less manifest, config, 5 layers), checked each run.
// Median of BENCH_RUNS (5) runs, tools interleaved (rotating order) so drift hits all of them alike.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerd } from './containerd.ts';
import {
  type Bench,
  hoistStore,
  machineLine,
  printCpuRatios,
  printGoals,
  printTable,
  RUNS,
  run,
  runInterleaved,
  type Sample,
  sampleOf,
  summarize,
} from './lib.ts';
import { registryWithMediumImage } from './medium-image.ts';

const BLOBS = 7;

const reg = await registryWithMediumImage();
const ref = reg.ref;

// Issue 2's pull is fetch-only; a later issue makes pull unpack by default, behind --unpack.
const probe = await hoistStore();
const fetchOnly = (await probe.hoist(['pull', '--help'])).stdout.includes('--unpack')
  ? ['--unpack=false']
  : [];
await probe.cleanup();
const hoistArgs = ['pull', '--plain-http', '--progress', 'plain', ...fetchOnly, ref];

const expectBlobs = (tool: string, n: number) => {
  if (n !== BLOBS) throw new Error(`${tool} stored ${n} blobs, expected ${BLOBS}`);
};

const hoistPull = async (): Promise<Sample> => {
  const store = await hoistStore();
  try {
    const r = await store.hoist(hoistArgs);
    expectBlobs('hoist pull', (await readdir(join(store.root, 'content', 'blobs', 'sha256'))).length);
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrFetch = async (): Promise<Sample> => {
  const d = await startContainerd();
  try {
    const { sample } = await d.timedCtr(['content', 'fetch', '--plain-http', ref]);
    const ls = await d.ctr(['content', 'ls', '-q'], { keepStdout: true });
    expectBlobs('ctr content fetch', ls.stdout.trim().split('\n').filter(Boolean).length);
    return sample;
  } finally {
    await d.stop();
  }
};

const skopeoCopy = async (): Promise<Sample> => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bench-skopeo-'));
  try {
    const layout = join(dir, 'layout');
    const r = await run('skopeo', [
      'copy',
      '--quiet',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${ref}`,
      `oci:${layout}:v1`,
    ]);
    expectBlobs('skopeo copy', (await readdir(join(layout, 'blobs', 'sha256'))).length);
    return sampleOf(r);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const benches: Bench[] = [
  {
    name: 'hoist pull',
    command: `hoist --root <fresh> ${hoistArgs.join(' ')}`,
    samples: [],
    fn: hoistPull,
  },
  {
    name: 'ctr content fetch',
    command: `ctr -a <fresh daemon> content fetch --plain-http ${ref}`,
    samples: [],
    fn: ctrFetch,
  },
  {
    name: 'skopeo copy',
    command: `skopeo copy --quiet --insecure-policy --src-tls-verify=false docker://${ref} oci:<fresh>/layout:v1`,
    samples: [],
    fn: skopeoCopy,
  },
];

try {
  await runInterleaved(benches);
} finally {
  await reg.stop();
}

const mb = reg.image.compressedBytes / 1e6;
process.stdout.write(`# pull: medium image, fetch only\n\n${await machineLine()}\n`);
process.stdout.write(
  `- image: ${ref}, 5 gzip layers, ${mb.toFixed(1)} MB compressed, ${(reg.image.uncompressedBytes / 1e6).toFixed(1)} MB of files\n`,
);
printTable(`pull (cold store each run, median of ${RUNS})`, benches);
const [h, c, k] = benches.map(summarize) as [
  ReturnType<typeof summarize>,
  ReturnType<typeof summarize>,
  ReturnType<typeof summarize>,
];
const rate = (ms: number) => (mb / (ms / 1000)).toFixed(0);
process.stdout.write(
  `\nThroughput (compressed MB / median s): hoist ${rate(h.median)} MB/s, ctr ${rate(c.median)} MB/s, skopeo ${rate(k.median)} MB/s\n`,
);
printCpuRatios([
  [benches[0]!, benches[1]!],
  [benches[0]!, benches[2]!],
]);
printGoals([
  { label: 'hoist pull / ctr content fetch', value: h.median / c.median, limit: 0.4 },
  { label: 'hoist pull / skopeo copy', value: h.median / k.median, limit: 1.0 },
  { label: 'hoist pull peak RSS', value: h.peakRssMiB, limit: 150, unit: ' MiB' },
]);
