// Pull with unpack, cold store each run (issue 3), against containerd 1.6 and against the floor:
//   hoist pull --snapshotter overlayfs|native REF        (downloads and unpacks, pipelined)
//   ctr images pull --snapshotter overlayfs|native REF   (containerd 1.6, a fresh daemon per run)
//   download alone: curl -Z (parallel) of every layer blob from the registry to files
//   tar -x: `gzip -dc layer | tar -x -C dir` of every layer in order into one directory (as root)
// The floor is max(download, tar -x), both measured in the same interleaved rounds as the pulls.
// Images (BENCH_IMAGES=medium,40-layers,1gib,real-files, default all): the medium image (5 gzip layers,
// 300 MiB of generated text), 40 small layers, one 1 GiB layer, and 5 layers of this machine's real files
// (~37,000 tar entries). hoist's stores, containerd's root and state and the floor's files all go on one
// journaled ext4 (bench/journaled-fs.ts). Every run is checked: every layer a committed snapshot; for the
// floor, every blob's size and every path of the unpacked tree.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { registryWithBigLayer } from './big-layer-image.ts';
import { startContainerd } from './containerd.ts';
import { type BenchRegistry, blobPath, layoutLayers } from './fixture-image.ts';
import { journaledFs } from './journaled-fs.ts';
import {
  type Bench,
  type Goal,
  hoistStore,
  log,
  machineLine,
  mib,
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
import { registryWithManyLayers } from './many-layers-image.ts';
import { registryWithMediumImage } from './medium-image.ts';
import { registryWithRealFiles } from './real-files-image.ts';

type Sn = 'overlayfs' | 'native';
const SNAPSHOTTERS: Sn[] = ['overlayfs', 'native'];
/** hoist within this factor of the floor, for every image. */
const FLOOR_LIMIT = 1.3;

interface ImageCase {
  key: string;
  label: string;
  title: string;
  start: () => Promise<BenchRegistry>;
  /** Goal: hoist / ctr (median wall) at most this, for both snapshotters. */
  limit: number;
  limitNote?: string;
}

const IMAGES: ImageCase[] = [
  {
    key: 'medium',
    label: 'medium',
    title: 'medium image (5 gzip layers, 300 MiB of generated text)',
    start: registryWithMediumImage,
    limit: 0.5,
  },
  {
    key: '40-layers',
    label: '40 layers',
    title: '40-layer image (40 × 24 files of 12 KiB)',
    start: registryWithManyLayers,
    limit: 0.7,
  },
  {
    key: '1gib',
    label: '1 GiB layer',
    title: '1 GiB single-layer image (256 files of 4 MiB)',
    start: registryWithBigLayer,
    limit: 0.6,
  },
  {
    key: 'real-files',
    label: 'real files',
    title: "real-files image (5 gzip layers of this machine's /usr files)",
    start: registryWithRealFiles,
    limit: 0.5,
    limitNote: 'the issue names no ratio for this image; the medium image’s 0.5× is assumed',
  },
];

function selectedImages(): ImageCase[] {
  const want = process.env.BENCH_IMAGES?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!want?.length) return IMAGES;
  const unknown = want.filter((k) => !IMAGES.some((i) => i.key === k));
  if (unknown.length)
    throw new Error(
      `BENCH_IMAGES: unknown ${unknown.join(', ')}; known: ${IMAGES.map((i) => i.key).join(', ')}`,
    );
  return IMAGES.filter((i) => want.includes(i.key));
}

const images = selectedImages();
const fs = journaledFs();

const hoistPull = (ref: string, sn: Sn, layers: number) => async (): Promise<Sample> => {
  const store = await hoistStore({ parent: fs.dir });
  try {
    const r = await store.hoist(['pull', '--plain-http', '--progress', 'plain', '--snapshotter', sn, ref]);
    const ls = await store.hoist(['snapshot', '--snapshotter', sn, 'ls', '--format', 'json'], {
      keepStdout: true,
    });
    // One JSON object per line, as docker's --format json.
    const committed = ls.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { Kind: string })
      .filter((s) => s.Kind === 'committed');
    if (committed.length !== layers)
      throw new Error(`hoist: ${committed.length} committed snapshots, expected ${layers}`);
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrPull = (ref: string, sn: Sn, layers: number) => async (): Promise<Sample> => {
  const d = await startContainerd({ parent: fs.dir });
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

/** Download alone: every layer blob in parallel with one `curl -Z`, to files on the bench file system. */
async function downloadBench(reg: BenchRegistry): Promise<Bench> {
  const layers = await layoutLayers(reg.image.layoutDir);
  const url = (digest: string) => `http://${reg.registry.registryHost}/v2/${reg.repo}/blobs/${digest}`;
  return {
    name: 'download (curl -Z)',
    command: `curl -sS --fail -L -Z --parallel-immediate -o FILE http://REGISTRY/v2/${reg.repo}/blobs/DIGEST … (every layer)`,
    samples: [],
    fn: async () => {
      const dir = await mkdtemp(join(fs.dir, 'hoist-bench-download-'));
      try {
        const args = ['-sS', '--fail', '-L', '-Z', '--parallel-immediate'];
        for (const [i, l] of layers.entries()) args.push('-o', join(dir, `layer${i}`), url(l.digest));
        const r = await run('curl', args);
        for (const [i, l] of layers.entries()) {
          const got = (await stat(join(dir, `layer${i}`))).size;
          if (got !== l.size) throw new Error(`curl: layer ${i} is ${got} bytes, expected ${l.size}`);
        }
        return sampleOf(r);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** `gzip -dc layer | tar -x -C dir`, every layer in order, into one directory on the bench file system. */
async function untarBench(reg: BenchRegistry): Promise<Bench> {
  const layers = await layoutLayers(reg.image.layoutDir);
  if (layers.some((l) => !/gzip/.test(l.mediaType))) throw new Error('untar: expects gzip layers only');
  const files = layers.map((l) => blobPath(reg.image.layoutDir, l.digest));
  const script = 'set -eo pipefail; d=$1; shift; for f; do gzip -dc "$f" | tar -x -C "$d"; done';
  return {
    name: 'tar -x (gzip -dc | tar -x)',
    command: 'for f in LAYERS; do gzip -dc "$f" | tar -x -C DIR; done',
    samples: [],
    fn: async () => {
      const dir = await mkdtemp(join(fs.dir, 'hoist-bench-untar-'));
      try {
        const r = await run('bash', ['-c', script, 'bash', dir, ...files]);
        const found = (await run('find', [dir, '-mindepth', '1', '-printf', '.'])).stdoutBytes;
        if (found !== reg.image.treePaths)
          throw new Error(`tar -x: ${found} paths unpacked, expected ${reg.image.treePaths}`);
        return sampleOf(r);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

interface Done {
  image: ImageCase;
  reg: BenchRegistry;
  layers: number;
  pulls: Record<`${'hoist' | 'ctr'} ${Sn}`, Bench>;
  download: Bench;
  untar: Bench;
}

async function benchImage(image: ImageCase): Promise<Done> {
  const reg = await image.start();
  try {
    const layers = (await layoutLayers(reg.image.layoutDir)).length;
    const pulls = {} as Done['pulls'];
    for (const sn of SNAPSHOTTERS) {
      pulls[`hoist ${sn}`] = {
        name: `hoist pull ${sn}`,
        command: `hoist pull --plain-http --snapshotter ${sn} ${reg.ref}`,
        samples: [],
        fn: hoistPull(reg.ref, sn, layers),
      };
      pulls[`ctr ${sn}`] = {
        name: `ctr images pull ${sn}`,
        command: `ctr images pull --plain-http --snapshotter ${sn} ${reg.ref}`,
        samples: [],
        fn: ctrPull(reg.ref, sn, layers),
      };
    }
    const done: Done = {
      image,
      reg,
      layers,
      pulls,
      download: await downloadBench(reg),
      untar: await untarBench(reg),
    };
    log(`image ${image.key}: ${layers} layers, ${reg.image.entries} tar entries`);
    await runInterleaved([...Object.values(pulls), done.download, done.untar]);
    return done;
  } finally {
    await reg.stop();
  }
}

const done: Done[] = [];
const failed: string[] = [];
try {
  for (const image of images) {
    try {
      done.push(await benchImage(image));
    } catch (err) {
      // The first line (the command) and the last (its error), not all the progress in between.
      const lines = (err as Error).message.trim().split('\n');
      const msg = `${image.key}: ${lines.length > 2 ? `${lines[0]} … ${lines.at(-1)}` : lines.join(' ')}`;
      log(`FAILED ${msg}`);
      failed.push(msg);
    }
  }
} finally {
  fs.cleanup();
}

const med = (b: Bench) => summarize(b).median;
const floorOf = (d: Done) => Math.max(med(d.download), med(d.untar));
const fmt = (x: number) => `${x.toFixed(3)}×`;

process.stdout.write(`# pull with unpack, against containerd 1.6 and the floor\n\n${await machineLine()}\n`);
process.stdout.write(`- file system: ${fs.describe}\n`);
for (const d of done) {
  const i = d.reg.image;
  process.stdout.write(
    `- ${d.image.label} image: ${d.layers} layer${d.layers === 1 ? '' : 's'}, ${mib(i.compressedBytes)} compressed, ${mib(i.uncompressedBytes)} uncompressed, ${i.entries} tar entries, ${d.reg.ref}\n`,
  );
}
for (const d of done) {
  const all = [...Object.values(d.pulls), d.download, d.untar];
  printTable(`${d.image.title}: pull + unpack and the floor (median of ${RUNS})`, all, {
    files: d.reg.image.entries,
  });
  const floor = floorOf(d);
  const floorBy = med(d.download) >= med(d.untar) ? 'download' : 'tar -x';
  const perFile = (b: Bench) => `${(med(b) / d.reg.image.entries).toPrecision(3)} ms`;
  process.stdout.write(
    `\nFloor = max(download ${med(d.download).toFixed(0)}, tar -x ${med(d.untar).toFixed(0)}) = ${floor.toFixed(0)} ms (${floorBy}).\n`,
  );
  for (const sn of SNAPSHOTTERS) {
    const h = d.pulls[`hoist ${sn}`];
    const c = d.pulls[`ctr ${sn}`];
    process.stdout.write(
      `- ${sn}: hoist / ctr ${fmt(med(h) / med(c))}, hoist / floor ${fmt(med(h) / floor)}, ctr / floor ${fmt(med(c) / floor)}; per file hoist ${perFile(h)}, ctr ${perFile(c)}, tar -x ${perFile(d.untar)}\n`,
    );
  }
}
printCpuRatios(
  done.flatMap((d) =>
    SNAPSHOTTERS.flatMap((sn): [Bench, Bench][] => {
      const h = d.pulls[`hoist ${sn}`];
      const label = (b: Bench) => ({ ...b, name: `${b.name} (${d.image.label})` });
      return [
        [label(h), label(d.pulls[`ctr ${sn}`])],
        [label(h), label(d.untar)],
      ];
    }),
  ),
);
const goals: Goal[] = done.flatMap((d) =>
  SNAPSHOTTERS.flatMap((sn) => {
    const h = med(d.pulls[`hoist ${sn}`]);
    return [
      {
        label: `${d.image.label}: hoist / ctr, ${sn}${d.image.limitNote ? ` (${d.image.limitNote})` : ''}`,
        value: h / med(d.pulls[`ctr ${sn}`]),
        limit: d.image.limit,
      },
      { label: `${d.image.label}: hoist / floor, ${sn}`, value: h / floorOf(d), limit: FLOOR_LIMIT },
    ];
  }),
);
printGoals(goals);
if (failed.length) {
  process.stdout.write(`\nFailed (no numbers):\n${failed.map((f) => `- ${f}\n`).join('')}`);
  process.exitCode = 1;
}
