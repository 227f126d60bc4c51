// hoist serve against containerd 1.6 through the same clients (issue 5), each daemon started here:
//   1. `ctr images ls -q` with 10,000 names (the medium image plus 10,000 names on it)
//   2. `ctr content ingest` of 1 GiB of random bytes (stdin from a file; removed and collected between runs)
//   3. `ctr images pull --plain-http` of the medium image, unpacked into overlayfs (a fresh daemon per run),
//      with the daemon's CPU time and peak RSS
//   4. CRI ListImages with 1,000 images (distinct configs and manifests sharing one empty layer, imported
//      with `ctr -n k8s.io images import` into both), timed in one client process: median of 20 calls
// Setup is untimed. Names for (1) are created in hoist's store through the library before serve starts
// and in containerd with `ctr images tag` batches (as bench/images-list.ts does).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { openLocalStore } from '../src/metadata/store.ts';
import { ImageService } from '../src/server/gen/k8s/cri/runtime/v1/api_pb.ts';
import { TestClients, unary } from '../test/helpers/grpc-client.ts';
import { type Containerd, startContainerd } from './containerd.ts';
import { startHoistServe } from './hoist-serve.ts';
import {
  type Bench,
  hoistStore,
  log,
  machineLine,
  median,
  printGoals,
  printTable,
  RUNS,
  run,
  runInterleaved,
  type Sample,
} from './lib.ts';
import { registryWithMediumImage } from './medium-image.ts';

const NAMES = Number(process.env.BENCH_NAMES ?? 10_000);
const INGEST_MIB = Number(process.env.BENCH_INGEST_MIB ?? 1024);
const CRI_IMAGES = 1000;
/** Which parts to run (BENCH_PARTS=1,4); all by default. */
const PARTS = new Set((process.env.BENCH_PARTS ?? '1,2,3,4').split(',').map(Number));
const nameOf = (i: number) => `bench.local/team${i % 20}/app${i % 500}:v${i}`;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const work = await mkdtemp(join(tmpdir(), 'hoist-bench-serve-api-'));
const reg = await registryWithMediumImage();
const out: string[] = [];
const goals: { label: string; value: number; limit: number; unit?: string }[] = [];
const ratio = (a: Bench, b: Bench) => median(a.samples.map((s) => s.ms)) / median(b.samples.map((s) => s.ms));

async function tagInContainerd(d: Containerd, src: string, names: string[]): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < names.length; i += 500) batches.push(names.slice(i, i + 500));
  const worker = async () => {
    for (let b = batches.shift(); b; b = batches.shift()) await d.ctr(['images', 'tag', src, ...b]);
  };
  await Promise.all([worker(), worker()]);
}

try {
  // 1. images ls -q with 10,000 names.
  if (PARTS.has(1)) {
    const store = await hoistStore();
    await store.hoist(['pull', '-q', '--plain-http', '--unpack=false', reg.ref]);
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
    const hoistd = await startHoistServe({ root: store.root });
    const ctrd = await startContainerd();
    try {
      await ctrd.ctr(['content', 'fetch', '--plain-http', reg.ref]);
      await tagInContainerd(
        ctrd,
        reg.ref,
        Array.from({ length: NAMES }, (_, i) => nameOf(i)),
      );
      log(`images ls: ${NAMES + 1} names in both daemons`);
      const ls = (d: Containerd) => async (): Promise<Sample> => {
        const { result, sample } = await d.timedCtr(['images', 'ls', '-q'], { keepStdout: true });
        const lines = result.stdout.trimEnd().split('\n').length;
        if (lines !== NAMES + 1)
          throw new Error(`images ls -q printed ${lines} lines, expected ${NAMES + 1}`);
        return sample;
      };
      const a: Bench = {
        name: 'ctr images ls -q → hoist serve',
        command: 'ctr images ls -q',
        samples: [],
        fn: ls(hoistd),
      };
      const b: Bench = {
        name: 'ctr images ls -q → containerd',
        command: 'ctr images ls -q',
        samples: [],
        fn: ls(ctrd),
      };
      await runInterleaved([a, b]);
      printTable(`ctr images ls -q, ${NAMES + 1} names`, [a, b]);
      goals.push({
        label: `ctr images ls -q (${NAMES + 1} names) hoist serve / containerd`,
        value: ratio(a, b),
        limit: 1,
      });
    } finally {
      await hoistd.stop();
      await ctrd.stop();
      await store.cleanup();
    }
  }

  // 2. content ingest of 1 GiB.
  if (PARTS.has(2)) {
    const file = join(work, 'ingest.bin');
    const hash = createHash('sha256');
    const ws = createWriteStream(file);
    for (let i = 0; i < INGEST_MIB; i++) {
      const chunk = randomBytes(1 << 20);
      hash.update(chunk);
      if (!ws.write(chunk)) await new Promise<void>((r) => ws.once('drain', () => r()));
    }
    await new Promise<void>((r) => ws.end(() => r()));
    const digest = `sha256:${hash.digest('hex')}`;
    const size = INGEST_MIB << 20;
    const hoistd = await startHoistServe();
    const ctrd = await startContainerd();
    try {
      const ingest = (d: Containerd) => async (): Promise<Sample> => {
        const before = await d.cpuMs();
        const r = await run('sh', [
          '-c',
          `exec ${'/usr/bin/ctr'} -a ${d.socket} content ingest --expected-digest ${digest} --expected-size ${size} bench-ingest < ${file}`,
        ]);
        const sample: Sample = {
          ms: r.ms,
          rssKiB: r.maxRssKiB,
          cpuMs: r.cpuMs,
          daemonCpuMs: (await d.cpuMs()) - before,
          daemonRssKiB: await d.peakRssKiB(),
        };
        // Remove it and collect before the next run, so every run writes every byte.
        await d.ctr(['content', 'rm', digest]);
        const lease = (await d.ctr(['leases', 'create'], { keepStdout: true })).stdout.trim();
        await d.ctr(['leases', 'rm', '--sync', lease]);
        return sample;
      };
      const a: Bench = {
        name: 'ctr content ingest 1 GiB → hoist serve',
        command: 'ctr content ingest',
        samples: [],
        fn: ingest(hoistd),
      };
      const b: Bench = {
        name: 'ctr content ingest 1 GiB → containerd',
        command: 'ctr content ingest',
        samples: [],
        fn: ingest(ctrd),
      };
      await runInterleaved([a, b]);
      printTable(`ctr content ingest, ${INGEST_MIB} MiB`, [a, b]);
      goals.push({
        label: 'ctr content ingest 1 GiB hoist serve / containerd',
        value: ratio(a, b),
        limit: 1,
      });
    } finally {
      await hoistd.stop();
      await ctrd.stop();
      await rm(file, { force: true });
    }
  }

  // 3. ctr images pull (unpack into overlayfs), a fresh daemon per run.
  if (PARTS.has(3)) {
    const pull = (start: () => Promise<Containerd>) => async (): Promise<Sample> => {
      const d = await start();
      try {
        const { sample } = await d.timedCtr(['images', 'pull', '--plain-http', reg.ref]);
        return sample;
      } finally {
        await d.stop();
      }
    };
    const a: Bench = {
      name: 'ctr images pull → hoist serve',
      command: 'ctr images pull --plain-http',
      samples: [],
      fn: pull(() => startHoistServe()),
    };
    const b: Bench = {
      name: 'ctr images pull → containerd',
      command: 'ctr images pull --plain-http',
      samples: [],
      fn: pull(() => startContainerd()),
    };
    await runInterleaved([a, b]);
    printTable('ctr images pull --plain-http (medium image, overlayfs unpack)', [a, b]);
    goals.push({ label: 'ctr images pull hoist serve / containerd', value: ratio(a, b), limit: 1 });
    const rss = (x: Bench) => median(x.samples.map((s) => s.daemonRssKiB ?? 0)) / 1024;
    out.push(
      `Daemon peak RSS during the pull (median): hoist serve ${rss(a).toFixed(0)} MiB, containerd ${rss(b).toFixed(0)} MiB.`,
    );
    goals.push({ label: 'hoist serve peak RSS during the pull', value: rss(a), limit: 110, unit: ' MiB' });
  }

  // 4. CRI ListImages with 1,000 images.
  if (PARTS.has(4)) {
    const layout = join(work, 'cri-layout');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    const put = async (b: Buffer) => {
      const d = sha(b);
      await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), b);
      return d;
    };
    const layer = Buffer.alloc(10240); // an empty tar
    const layerDigest = await put(layer);
    const manifests = [];
    for (let i = 0; i < CRI_IMAGES; i++) {
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Env: [`IMAGE=${i}`] },
          rootfs: { type: 'layers', diff_ids: [layerDigest] },
        }),
      );
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: await put(config),
            size: config.length,
          },
          layers: [
            { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length },
          ],
        }),
      );
      manifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: await put(manifest),
        size: manifest.length,
        annotations: { 'io.containerd.image.name': `bench.local/cri/img${i}:v1` },
      });
    }
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
    const archive = join(work, 'cri.tar');
    await run('tar', ['-C', layout, '-cf', archive, '.']);
    const hoistd = await startHoistServe();
    const ctrd = await startContainerd({ cri: true });
    const clients: TestClients[] = [];
    try {
      const listers = [hoistd, ctrd].map((d) => {
        const c = new TestClients(d.socket);
        clients.push(c);
        return c.client(ImageService);
      });
      for (const d of [hoistd, ctrd])
        await d.ctr(['-n', 'k8s.io', 'images', 'import', '--no-unpack', archive]);
      for (const [i, c] of listers.entries()) {
        const r = await unary<{ images: unknown[] }>(c, 'listImages', {}, new Metadata());
        if (r.images.length !== CRI_IMAGES)
          throw new Error(
            `${i === 0 ? 'hoist' : 'containerd'} CRI lists ${r.images.length} images, expected ${CRI_IMAGES}`,
          );
      }
      const listOnce = (c: (typeof listers)[number]) => async (): Promise<Sample> => {
        const times: number[] = [];
        for (let k = 0; k < 20; k++) {
          const t = performance.now();
          await unary(c, 'listImages', {}, new Metadata());
          times.push(performance.now() - t);
        }
        return { ms: median(times), rssKiB: 0 };
      };
      const a: Bench = {
        name: 'CRI ListImages → hoist serve',
        command: 'ListImages (median of 20)',
        samples: [],
        fn: listOnce(listers[0]!),
      };
      const b: Bench = {
        name: 'CRI ListImages → containerd',
        command: 'ListImages (median of 20)',
        samples: [],
        fn: listOnce(listers[1]!),
      };
      await runInterleaved([a, b]);
      printTable(`CRI ListImages, ${CRI_IMAGES} images`, [a, b]);
      goals.push({
        label: `CRI ListImages (${CRI_IMAGES} images) hoist serve / containerd`,
        value: ratio(a, b),
        limit: 1,
      });
    } finally {
      for (const c of clients) c.close();
      await hoistd.stop();
      await ctrd.stop();
    }
  }

  process.stdout.write(`\n${await machineLine()}\n`);
  for (const line of out) process.stdout.write(`\n${line}\n`);
  printGoals(goals);
  process.stdout.write(`\nruns per tool: ${RUNS}\n`);
} finally {
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
