// Images out and in, the medium image (5 gzip layers, 160 MB compressed, 300 MiB of files):
//   hoist save -o FILE REF           vs  ctr images export FILE REF
//   hoist load -i FILE               vs  ctr images import FILE            (both unpack: overlayfs)
//   hoist load -i FILE --unpack=false vs ctr images import --no-unpack FILE
// Each tool loads an archive it wrote itself (the same image, the same blobs). Setup per run (untimed):
// hoist uses a copy of a store holding the image (save) or an empty store (load); containerd a fresh daemon
// with the image fetched (export) or empty (import). Each run checks the archive size / the image's blobs.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from './containerd.ts';
import { journaledFs } from './journaled-fs.ts';
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
import { registryWithMediumImage } from './medium-image.ts';

// Stores, daemon roots and archives on a journaled ext4, like a node's (bench/journaled-fs.ts).
const fs = journaledFs();
const reg = await registryWithMediumImage();
const ref = reg.ref;
const work = await mkdtemp(join(fs.dir, 'hoist-bench-archive-'));
const template = await hoistStore({ parent: fs.dir });
await template.hoist(['pull', '-q', '--plain-http', '--unpack=false', ref]);
const minBytes = reg.image.compressedBytes;

// The archives each tool loads: written once by that tool.
const hoistTar = join(work, 'hoist.tar');
await template.hoist(['save', '-q', '-o', hoistTar, ref]);
const ctrTar = join(work, 'ctr.tar');
{
  const d = await startContainerd({ parent: fs.dir });
  await d.ctr(['content', 'fetch', '--plain-http', ref]);
  await d.ctr(['images', 'export', ctrTar, ref]);
  await d.stop();
}

const checkSize = async (file: string, tool: string) => {
  const size = (await stat(file)).size;
  if (size < minBytes) throw new Error(`${tool} wrote ${size} bytes, less than the image's ${minBytes}`);
};

const hoistSave = async (): Promise<Sample> => {
  const out = join(work, `save-${Math.random()}.tar`);
  try {
    const r = await template.hoist(['save', '-q', '-o', out, ref]);
    await checkSize(out, 'hoist save');
    return sampleOf(r);
  } finally {
    await rm(out, { force: true });
  }
};

const ctrExport = async (): Promise<Sample> => {
  const d = await startContainerd({ parent: fs.dir });
  const out = join(work, `export-${Math.random()}.tar`);
  try {
    await d.ctr(['content', 'fetch', '--plain-http', ref]);
    const { sample } = await d.timedCtr(['images', 'export', out, ref]);
    await checkSize(out, 'ctr images export');
    return sample;
  } finally {
    await rm(out, { force: true });
    await d.stop();
  }
};

const hoistLoad = (unpack: boolean) => async (): Promise<Sample> => {
  const store = await hoistStore({ parent: fs.dir });
  try {
    const r = await store.hoist(['load', '-q', '-i', hoistTar, ...(unpack ? [] : ['--unpack=false'])]);
    const check = await store.hoist(['image', 'check', ref], { keepStdout: true });
    if (!/\scomplete\s/.test(check.stdout))
      throw new Error(`hoist load: image not complete:\n${check.stdout}`);
    if (unpack && !/overlayfs=true/.test(check.stdout)) throw new Error('hoist load did not unpack');
    return sampleOf(r);
  } finally {
    await store.cleanup();
  }
};

const ctrImport = (unpack: boolean) => async (): Promise<Sample> => {
  const d = await startContainerd({ parent: fs.dir });
  try {
    const { sample } = await d.timedCtr(['images', 'import', ...(unpack ? [] : ['--no-unpack']), ctrTar]);
    const check = await d.ctr(['images', 'check'], { keepStdout: true });
    if (!/complete/.test(check.stdout)) throw new Error(`ctr import: not complete:\n${check.stdout}`);
    return sample;
  } finally {
    await d.stop();
  }
};

const benches: Bench[] = [
  { name: 'hoist save', command: `hoist save -o FILE ${ref}`, samples: [], fn: hoistSave },
  { name: 'ctr images export', command: `ctr images export FILE ${ref}`, samples: [], fn: ctrExport },
  { name: 'hoist load (unpack)', command: 'hoist load -i hoist.tar', samples: [], fn: hoistLoad(true) },
  {
    name: 'ctr images import (unpack)',
    command: 'ctr images import ctr.tar',
    samples: [],
    fn: ctrImport(true),
  },
  {
    name: 'hoist load --unpack=false',
    command: 'hoist load -i hoist.tar --unpack=false',
    samples: [],
    fn: hoistLoad(false),
  },
  {
    name: 'ctr images import --no-unpack',
    command: 'ctr images import --no-unpack ctr.tar',
    samples: [],
    fn: ctrImport(false),
  },
];

try {
  await runInterleaved(benches);
} finally {
  await template.cleanup();
  await reg.stop();
  await rm(work, { recursive: true, force: true });
  fs.cleanup();
}

process.stdout.write(
  `# save and load: the medium image\n\n${await machineLine()}\n- file system: ${fs.describe}\n`,
);
printTable(`save / load (median of ${RUNS})`, benches);
const z = Object.fromEntries(benches.map((s) => [s.name, summarize(s).median]));
printCpuRatios([
  [benches[0]!, benches[1]!],
  [benches[2]!, benches[3]!],
  [benches[4]!, benches[5]!],
]);
printGoals([
  { label: 'hoist save / ctr images export', value: z['hoist save']! / z['ctr images export']!, limit: 0.5 },
  {
    label: 'hoist load / ctr images import (with unpack; issue 11)',
    value: z['hoist load (unpack)']! / z['ctr images import (unpack)']!,
    limit: 0.5,
  },
  {
    label: 'hoist load / ctr images import (no unpack)',
    value: z['hoist load --unpack=false']! / z['ctr images import --no-unpack']!,
    limit: 0.6,
  },
]);
