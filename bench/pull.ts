// Fetch-only pull of the medium image from the loopback registry, into a cold store each run:
//   hoist pull --plain-http REF
//   ctr content fetch --plain-http REF        (containerd 1.6: fetches every blob and creates the image
//                                              record; no unpack — the same work as hoist's pull)
//   skopeo copy docker://REF oci:DIR:v1
// Median of BENCH_RUNS (5) runs, tools interleaved (rotating order) so drift hits all of them alike.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hoistStore,
  log,
  machineLine,
  printGoals,
  printTable,
  RUNS,
  registryWithMediumImage,
  run,
  type Sample,
  type Series,
  startContainerd,
  summarize,
} from './lib.ts';

const reg = await registryWithMediumImage();
const ref = reg.ref;

const hoistPull = async (): Promise<Sample> => {
  const store = await hoistStore();
  try {
    const r = await store.hoist(['pull', '--plain-http', ref]);
    const blobs = await readdir(join(store.root, 'content', 'blobs', 'sha256'));
    if (blobs.length !== 7) throw new Error(`hoist pull stored ${blobs.length} blobs, expected 7`);
    return { ms: r.ms, rssKiB: r.maxRssKiB };
  } finally {
    await store.cleanup();
  }
};

const ctrFetch = async (): Promise<Sample> => {
  const d = await startContainerd();
  try {
    const r = await d.ctr(['content', 'fetch', '--plain-http', ref]);
    const ls = await d.ctr(['content', 'ls', '-q'], { keepStdout: true });
    const n = ls.stdout.trim().split('\n').filter(Boolean).length;
    if (n !== 7) throw new Error(`ctr content fetch stored ${n} blobs, expected 7`);
    return { ms: r.ms, rssKiB: r.maxRssKiB, daemonRssKiB: await d.peakRssKiB() };
  } finally {
    await d.stop();
  }
};

const skopeoCopy = async (): Promise<Sample> => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-bench-skopeo-'));
  try {
    const r = await run('skopeo', [
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${ref}`,
      `oci:${join(dir, 'layout')}:v1`,
    ]);
    return { ms: r.ms, rssKiB: r.maxRssKiB };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const series: (Series & { fn: () => Promise<Sample> })[] = [
  {
    name: 'hoist pull',
    command: `hoist --root <fresh> pull --plain-http ${ref}`,
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
    command: `skopeo copy --insecure-policy --src-tls-verify=false docker://${ref} oci:<fresh>/layout:v1`,
    samples: [],
    fn: skopeoCopy,
  },
];

try {
  log('warm-up (untimed): one run of each tool');
  for (const s of series) await s.fn();
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < series.length; k++) {
      const s = series[(i + k) % series.length]!;
      const sample = await s.fn();
      s.samples.push(sample);
      log(
        `run ${i + 1}/${RUNS} ${s.name}: ${sample.ms.toFixed(0)} ms, ${(sample.rssKiB / 1024).toFixed(1)} MiB`,
      );
    }
  }
} finally {
  await reg.stop();
}

process.stdout.write(`# pull: medium image, fetch only\n\n${await machineLine()}\n`);
process.stdout.write(
  `Image: ${ref}, 5 gzip layers, ${(reg.image.compressedBytes / 1e6).toFixed(1)} MB compressed, ${(reg.image.uncompressedBytes / 1e6).toFixed(1)} MB of files\n`,
);
printTable('pull (cold store each run)', series);
const [h, c, k] = series.map(summarize) as [
  ReturnType<typeof summarize>,
  ReturnType<typeof summarize>,
  ReturnType<typeof summarize>,
];
process.stdout.write(
  `\nThroughput (compressed bytes / median): hoist ${(reg.image.compressedBytes / 1e6 / (h.median / 1000)).toFixed(0)} MB/s, ctr ${(reg.image.compressedBytes / 1e6 / (c.median / 1000)).toFixed(0)} MB/s, skopeo ${(reg.image.compressedBytes / 1e6 / (k.median / 1000)).toFixed(0)} MB/s\n`,
);
printGoals([
  { label: 'hoist / ctr content fetch', value: h.median / c.median, limit: 0.4 },
  { label: 'hoist / skopeo copy', value: h.median / k.median, limit: 1.0 },
  { label: 'hoist peak RSS', value: h.peakRssMiB, limit: 150, unit: ' MiB' },
]);
