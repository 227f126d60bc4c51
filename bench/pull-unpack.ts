// Pull with unpack, cold store each run (issue 3):
//   hoist pull --snapshotter overlayfs|native REF        (downloads and unpacks, pipelined)
//   ctr images pull --snapshotter overlayfs|native REF   (containerd 1.6, a fresh daemon per run)
// on the medium image (5 gzip layers, 300 MiB of files) and on a 40-layer image of small layers.
// Each run checks that every layer ended as a committed snapshot.
import { startContainerd } from './containerd.ts';
import {
  type Bench,
  hoistStore,
  machineLine,
  printCpuRatios,
  printGoals,
  printTable,
  RUNS,
  runInterleaved,
  type Sample,
  sampleOf,
  summarize,
} from './lib.ts';
import { MANY_LAYERS, registryWithManyLayers } from './many-layers-image.ts';
import { MEDIUM_LAYER_MIB, registryWithMediumImage } from './medium-image.ts';

type Sn = 'overlayfs' | 'native';

const hoistPull = (ref: string, sn: Sn, layers: number) => async (): Promise<Sample> => {
  const store = await hoistStore();
  try {
    const r = await store.hoist(['pull', '--plain-http', '--progress', 'plain', '--snapshotter', sn, ref]);
    const ls = await store.hoist(['snapshot', '--snapshotter', sn, 'ls', '--format', 'json'], {
      keepStdout: true,
    });
    const committed = (JSON.parse(ls.stdout) as { kind: string }[]).filter((s) => s.kind === 'committed');
    if (committed.length !== layers)
      throw new Error(`hoist: ${committed.length} committed snapshots, expected ${layers}`);
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrPull = (ref: string, sn: Sn, layers: number) => async (): Promise<Sample> => {
  const d = await startContainerd();
  try {
    const { sample } = await d.timedCtr(['images', 'pull', '--plain-http', '--snapshotter', sn, ref]);
    const ls = await d.ctr(['snapshots', '--snapshotter', sn, 'ls'], { keepStdout: true });
    const committed = ls.stdout.split('\n').filter((l) => /\sCommitted\s*$/.test(l)).length;
    if (committed !== layers) throw new Error(`ctr: ${committed} committed snapshots, expected ${layers}`);
    return sample;
  } finally {
    await d.stop();
  }
};

function series(ref: string, layers: number, label: string): Bench[] {
  const out: Bench[] = [];
  for (const sn of ['overlayfs', 'native'] as const) {
    out.push({
      name: `hoist pull ${sn} (${label})`,
      command: `hoist pull --plain-http --snapshotter ${sn} ${ref}`,
      samples: [],
      fn: hoistPull(ref, sn, layers),
    });
    out.push({
      name: `ctr images pull ${sn} (${label})`,
      command: `ctr images pull --plain-http --snapshotter ${sn} ${ref}`,
      samples: [],
      fn: ctrPull(ref, sn, layers),
    });
  }
  return out;
}

const medium = await registryWithMediumImage();
const many = await registryWithManyLayers();
const mediumBenches = series(medium.ref, MEDIUM_LAYER_MIB.length, 'medium');
const manyBenches = series(many.ref, MANY_LAYERS, '40 layers');
try {
  await runInterleaved(mediumBenches);
  await runInterleaved(manyBenches);
} finally {
  await medium.stop();
  await many.stop();
}

process.stdout.write(`# pull with unpack\n\n${await machineLine()}\n`);
printTable(`medium image: pull + unpack (median of ${RUNS})`, mediumBenches);
printTable(`40-layer image: pull + unpack (median of ${RUNS})`, manyBenches);
const z = Object.fromEntries([...mediumBenches, ...manyBenches].map((s) => [s.name, summarize(s).median]));
printCpuRatios([
  [mediumBenches[0]!, mediumBenches[1]!],
  [mediumBenches[2]!, mediumBenches[3]!],
  [manyBenches[0]!, manyBenches[1]!],
  [manyBenches[2]!, manyBenches[3]!],
]);
const ratio = (a: string, b: string) => z[a]! / z[b]!;
printGoals([
  {
    label: 'medium: hoist / ctr, overlayfs',
    value: ratio('hoist pull overlayfs (medium)', 'ctr images pull overlayfs (medium)'),
    limit: 0.6,
  },
  {
    label: 'medium: hoist / ctr, native',
    value: ratio('hoist pull native (medium)', 'ctr images pull native (medium)'),
    limit: 0.4,
  },
  {
    label: '40 layers: hoist / ctr, overlayfs',
    value: ratio('hoist pull overlayfs (40 layers)', 'ctr images pull overlayfs (40 layers)'),
    limit: 0.7,
  },
  {
    label: '40 layers: hoist / ctr, native',
    value: ratio('hoist pull native (40 layers)', 'ctr images pull native (40 layers)'),
    limit: 0.7,
  },
]);
