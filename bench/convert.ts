// Converting the medium image (5 gzip layers, ~300 MB uncompressed):
//   hoist image convert --uncompress --oci   vs  ctr images convert --uncompress --oci (containerd 1.6)
//   hoist image convert --zstd               vs  the zstd CLI on the same layers (gzip -dc | zstd -3,
//                                                 two layers at a time like hoist): the practical limit
// Setup per run (untimed): hoist gets a fresh copy of a store holding the image (fetch only); containerd a
// fresh daemon and a `ctr content fetch`. Each run checks the result: every layer re-encoded.
import { mkdtemp, rm } from 'node:fs/promises';
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

const reg = await registryWithMediumImage();
const ref = reg.ref;

const template = await hoistStore();
await template.hoist(['pull', '-q', '--plain-http', '--unpack=false', ref]);
type Inspect = { Platforms: { Layers: { Digest: string }[] }[] };
const raw = JSON.parse((await template.hoist(['image', 'inspect', ref], { keepStdout: true })).stdout) as
  | Inspect
  | Inspect[];
const inspect = Array.isArray(raw) ? raw[0]! : raw;
const layerFiles = inspect.Platforms[0]!.Layers.map((l) =>
  join(template.root, 'content', 'blobs', 'sha256', l.Digest.slice('sha256:'.length)),
);

const hoistConvert = (flags: string[]) => async (): Promise<Sample> => {
  const store = await hoistStore({ from: template.root });
  try {
    const r = await store.hoist(['image', 'convert', ...flags, ref, `${ref}-converted`]);
    if (!/5 layer\(s\) re-encoded/.test(r.stdout)) throw new Error(`unexpected convert output: ${r.stdout}`);
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrConvert = async (): Promise<Sample> => {
  const d = await startContainerd();
  try {
    await d.ctr(['content', 'fetch', '--plain-http', ref]);
    const { sample } = await d.timedCtr([
      'images',
      'convert',
      '--uncompress',
      '--oci',
      ref,
      `${ref}-converted`,
    ]);
    const ls = await d.ctr(['images', 'ls', '-q'], { keepStdout: true });
    if (!ls.stdout.includes(`${ref}-converted`)) throw new Error('ctr convert made no image');
    return sample;
  } finally {
    await d.stop();
  }
};

const zstdCli = async (): Promise<Sample> => {
  // Written to files, as a conversion must store its output (hoist also hashes and fsyncs it).
  const out = await mkdtemp(join(tmpdir(), 'hoist-bench-zstd-'));
  try {
    const script = `printf "%s\\n" "$@" | xargs -P2 -I{} sh -c 'gzip -dc < {} | zstd -3 -q -c > ${out}/$(basename {}).zst'`;
    return sampleOf(await run('sh', ['-c', script, 'sh', ...layerFiles]));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
};

const benches: Bench[] = [
  {
    name: 'hoist convert --uncompress --oci',
    command: `hoist image convert --uncompress --oci ${ref} ${ref}-converted`,
    samples: [],
    fn: hoistConvert(['--uncompress', '--oci']),
  },
  {
    name: 'ctr images convert --uncompress --oci',
    command: `ctr images convert --uncompress --oci ${ref} ${ref}-converted`,
    samples: [],
    fn: ctrConvert,
  },
  {
    name: 'hoist convert --zstd',
    command: `hoist image convert --zstd ${ref} ${ref}-converted`,
    samples: [],
    fn: hoistConvert(['--zstd']),
  },
  {
    name: 'zstd CLI (gzip -dc | zstd -3, 2 at a time)',
    command: 'xargs -P2: gzip -dc < LAYER | zstd -3 -q -c > TMP/LAYER.zst',
    samples: [],
    fn: zstdCli,
  },
];

try {
  await runInterleaved(benches);
} finally {
  await template.cleanup();
  await reg.stop();
}

process.stdout.write(`# convert: the medium image\n\n${await machineLine()}\n`);
printTable(`convert (median of ${RUNS})`, benches);
const z = Object.fromEntries(benches.map((s) => [s.name, summarize(s).median]));
printCpuRatios([
  [benches[0]!, benches[1]!],
  [benches[2]!, benches[3]!],
]);
printGoals([
  {
    label: 'hoist convert --uncompress --oci / ctr images convert --uncompress --oci',
    value: z['hoist convert --uncompress --oci']! / z['ctr images convert --uncompress --oci']!,
    limit: 0.5,
  },
  {
    label: 'hoist convert --zstd / zstd CLI',
    value: z['hoist convert --zstd']! / z['zstd CLI (gzip -dc | zstd -3, 2 at a time)']!,
    limit: 1.5,
  },
]);
