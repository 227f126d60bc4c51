// hoist serve against containerd 1.6 (the anchor) through the same clients (issue 5), both daemons started
// here on scratch dirs, each part interleaved hoist serve / containerd for BENCH_RUNS rounds:
//   1. `ctr images ls -q` with 10,001 names: the medium image plus 10,000 names on its target. Setup
//      (untimed): hoist pulls it without unpack and creates the names through the library in one
//      transaction BEFORE serve starts; containerd fetches it and gets the names by `ctr images tag`
//      batches of 500 (containerd has no faster public way, see bench/images-list.ts).
//   2. `ctr content ingest` of 1 GiB of random bytes (stdin redirected from a file, expected digest and
//      size given). Each run checks `ctr content ls -q` lists the digest, then `ctr content rm` and a
//      synchronous GC (`ctr leases rm --sync` of a fresh lease) and checks the blob file is gone from the
//      daemon's dir, so every run writes every byte.
//   3. `ctr images pull --plain-http` of the medium image, unpacked by ctr with the default snapshotter
//      (overlayfs), a fresh daemon and store per run; checks 5 committed snapshots. Records the daemon's
//      peak RSS (VmHWM) once the pull is done, and its VmHWM right after start (idle) for comparison.
//   4. CRI ListImages (runtime.v1.ImageService) with 1,000 images: a grpc-js client from the generated CRI
//      descriptors. Timed two ways: in one long-lived client (median of CRI_CALLS calls per sample; the
//      CPU columns are per call, client RSS not measured), and from a fresh client process per sample
//      (connect + first call; the process wall time, mostly Node start-up and loading grpc-js, is printed
//      beside it).
//      The 1,000 images are distinct (1,000 configs and manifests sharing one empty 10 KiB layer), written
//      as one OCI archive with CRI-style names `bench.local/cri/imgN:v1` and loaded into namespace k8s.io
//      of both daemons with `ctr images import --no-unpack` (untimed, ~10–25 s). Not 1,000 tags on the
//      medium image: CRI groups records by image ID (the config digest), so that would list ONE image with
//      1,000 repo tags, which is not the workload; pushing 1,000 images to a registry and pulling them
//      would measure setup, not ListImages.
// Ratios are hoist serve / containerd of the wall-time medians. BENCH_PARTS=1,4 runs a subset;
// BENCH_NAMES, BENCH_INGEST_MIB and BENCH_CRI_CALLS change the sizes.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { openLocalStore } from '../src/embedded/store.ts';
import { type AnyClient, TestClients, unary } from '../test/helpers/grpc-client.ts';
import { type Containerd, CTR, startContainerd } from './containerd.ts';
import { startHoistServe } from './hoist-serve.ts';
import {
  type Bench,
  type Goal,
  hoistStore,
  log,
  machineLine,
  median,
  NODE,
  printCpuRatios,
  printGoals,
  printTable,
  REPO_ROOT,
  run,
  runInterleaved,
  type Sample,
  sleep,
  summarize,
} from './lib.ts';
import { MEDIUM_LAYER_MIB, registryWithMediumImage } from './medium-image.ts';

const NAMES = Number(process.env.BENCH_NAMES ?? 10_000);
const INGEST_MIB = Number(process.env.BENCH_INGEST_MIB ?? 1024);
const CRI_IMAGES = 1000;
const CRI_CALLS = Number(process.env.BENCH_CRI_CALLS ?? 50);
const PARTS = new Set((process.env.BENCH_PARTS ?? '1,2,3,4').split(',').map(Number));
const nameOf = (i: number) => `bench.local/team${i % 20}/app${i % 500}:v${i}`;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The fresh CRI client process: load grpc-js and the CRI descriptors, connect, one ListImages. */
const CRI_CHILD = `
const { Metadata } = await import('@grpc/grpc-js');
const { ImageService } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src/api/gen/k8s/cri/runtime/v1/api_pb.ts')).href)});
const { TestClients, unary } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'test/helpers/grpc-client.ts')).href)});
const clients = new TestClients(process.env.BENCH_CRI_SOCKET);
const t = performance.now();
const r = await unary(clients.client(ImageService), 'listImages', {}, new Metadata());
const callMs = performance.now() - t;
clients.close();
process.stdout.write(JSON.stringify({ callMs, images: r.images.length }));
`;

type Daemon = Containerd;
const daemons: [string, (cri: boolean) => Promise<Daemon>][] = [
  ['hoist serve', () => startHoistServe()],
  ['containerd', (cri) => startContainerd({ cri })],
];
/** A fresh hoist serve (on a new store) and a fresh containerd, started side by side. */
const startBoth = (cri: boolean): Promise<[Daemon, Daemon]> =>
  Promise.all([startHoistServe(), startContainerd({ cri })]);

const goals: Goal[] = [];
const notes: string[] = [];
const cpuPairs: [Bench, Bench][] = [];
const ratio = (a: Bench, b: Bench) => summarize(a).median / summarize(b).median;
const mibOf = (kib: number) => (kib / 1024).toFixed(0);

/** Two benches (hoist serve first), interleaved, printed, with a wall-time goal. */
async function pair(
  title: string,
  label: string,
  command: string,
  fns: [() => Promise<Sample>, () => Promise<Sample>],
  goal = true,
): Promise<[Bench, Bench]> {
  const [a, b] = fns.map(
    (fn, i): Bench => ({ name: `${label} → ${daemons[i]![0]}`, command, samples: [], fn }),
  ) as [Bench, Bench];
  await runInterleaved([a, b]);
  printTable(title, [a, b]);
  cpuPairs.push([a, b]);
  if (goal) goals.push({ label: `${label}: hoist serve / containerd`, value: ratio(a, b), limit: 1 });
  return [a, b];
}

async function tagInContainerd(d: Daemon, src: string, count: number): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < count; i += 500)
    batches.push(Array.from({ length: Math.min(500, count - i) }, (_, k) => nameOf(i + k)));
  const worker = async () => {
    for (let b = batches.shift(); b; b = batches.shift()) await d.ctr(['images', 'tag', src, ...b]);
  };
  await Promise.all([worker(), worker()]);
}

/** An OCI archive of CRI_IMAGES distinct images sharing one empty layer, named bench.local/cri/imgN:v1. */
async function criArchive(work: string): Promise<string> {
  const layout = join(work, 'cri-layout');
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const layer = await put(Buffer.alloc(10240)); // an empty tar: two zero blocks and padding
  const manifests = [];
  for (let i = 0; i < CRI_IMAGES; i++) {
    const config = await put(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: { Env: [`IMAGE=${i}`], Cmd: ['/bin/sh'] },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      annotations: { 'io.containerd.image.name': `bench.local/cri/img${i}:v1` },
    });
  }
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  const archive = join(work, 'cri.tar');
  await run('tar', ['-C', layout, '-cf', archive, '.']);
  return archive;
}

const work = await mkdtemp(join(tmpdir(), 'hoist-bench-serve-'));
const reg = await registryWithMediumImage();
process.stdout.write('# hoist serve vs containerd 1.6 (issue 5)\n');

try {
  // 1. ctr images ls -q with NAMES + 1 names.
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
      await tagInContainerd(ctrd, reg.ref, NAMES);
      log(`images ls: ${NAMES + 1} names in both daemons`);
      const ls = (d: Daemon) => async (): Promise<Sample> => {
        const { result, sample } = await d.timedCtr(['images', 'ls', '-q'], { keepStdout: true });
        const lines = result.stdout.trimEnd().split('\n').length;
        if (lines !== NAMES + 1)
          throw new Error(`images ls -q printed ${lines} lines, expected ${NAMES + 1}`);
        return sample;
      };
      await pair(`ctr images ls -q, ${NAMES + 1} names`, 'ctr images ls -q', 'ctr images ls -q', [
        ls(hoistd),
        ls(ctrd),
      ]);
    } finally {
      await hoistd.stop();
      await ctrd.stop();
      await store.cleanup();
    }
  }

  // 2. ctr content ingest of INGEST_MIB MiB.
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
    const size = INGEST_MIB * 1024 * 1024;
    const [hoistd, ctrd] = await startBoth(false);
    try {
      const ingest = (d: Daemon) => async (): Promise<Sample> => {
        const before = await d.cpuMs();
        const r = await run('sh', [
          '-c',
          `exec ${CTR} -a ${d.socket} content ingest --expected-digest ${digest} --expected-size ${size} bench-ingest < ${file}`,
        ]);
        const sample: Sample = {
          ms: r.ms,
          rssKiB: r.maxRssKiB,
          cpuMs: r.cpuMs,
          daemonCpuMs: (await d.cpuMs()) - before,
          daemonRssKiB: await d.peakRssKiB(),
        };
        const listed = await d.ctr(['content', 'ls', '-q'], { keepStdout: true });
        if (!listed.stdout.split('\n').includes(digest)) throw new Error(`content ls lacks ${digest}`);
        await d.ctr(['content', 'rm', digest]);
        const lease = (await d.ctr(['leases', 'create'], { keepStdout: true })).stdout.trim();
        await d.ctr(['leases', 'rm', '--sync', lease]);
        const left = await run('find', [d.dir, '-name', digest.slice(7)], { keepStdout: true });
        if (left.stdout.trim()) throw new Error(`blob still on disk after rm + GC: ${left.stdout.trim()}`);
        return sample;
      };
      await pair(
        `ctr content ingest, ${INGEST_MIB} MiB`,
        `ctr content ingest ${INGEST_MIB} MiB`,
        `ctr content ingest --expected-digest D --expected-size ${size} REF < FILE`,
        [ingest(hoistd), ingest(ctrd)],
      );
    } finally {
      await hoistd.stop();
      await ctrd.stop();
      await rm(file, { force: true });
    }
  }

  // 3. ctr images pull with unpack into overlayfs, a fresh daemon per run.
  if (PARTS.has(3)) {
    const idle: number[][] = [[], []];
    const pull = (i: number) => async (): Promise<Sample> => {
      const d = await daemons[i]![1](false);
      try {
        idle[i]!.push(await d.peakRssKiB());
        const { sample } = await d.timedCtr(['images', 'pull', '--plain-http', reg.ref]);
        const ls = await d.ctr(['snapshots', 'ls'], { keepStdout: true });
        const committed = ls.stdout.split('\n').filter((l) => /\sCommitted\s*$/.test(l)).length;
        if (committed !== MEDIUM_LAYER_MIB.length)
          throw new Error(
            `${daemons[i]![0]}: ${committed} committed snapshots, expected ${MEDIUM_LAYER_MIB.length}`,
          );
        return sample;
      } finally {
        await d.stop();
      }
    };
    const [a, b] = await pair(
      'ctr images pull --plain-http, medium image, overlayfs unpack (fresh daemon per run)',
      'ctr images pull',
      `ctr images pull --plain-http ${reg.ref}`,
      [pull(0), pull(1)],
    );
    const peak = (x: Bench) => median(x.samples.map((s) => s.daemonRssKiB ?? 0));
    notes.push(
      `Daemon peak RSS (VmHWM) during the pull, median: hoist serve ${mibOf(peak(a))} MiB, containerd ${mibOf(peak(b))} MiB ` +
        `(${(peak(a) / peak(b)).toFixed(2)}×); right after start, idle: hoist serve ${mibOf(median(idle[0]!))} MiB, ` +
        `containerd ${mibOf(median(idle[1]!))} MiB.`,
    );
  }

  // 4. CRI ListImages with CRI_IMAGES images.
  if (PARTS.has(4)) {
    const archive = await criArchive(work);
    const [hoistd, ctrd] = await startBoth(true);
    const clients: TestClients[] = [];
    try {
      const pairOf: [Daemon, Daemon] = [hoistd, ctrd];
      const listers = pairOf.map((d) => {
        const c = new TestClients(d.socket);
        clients.push(c);
        return c.client(ImageService);
      });
      for (const [i, d] of pairOf.entries()) {
        await d.ctr(['-n', 'k8s.io', 'images', 'import', '--no-unpack', archive]);
        // containerd's CRI fills its image cache from image events: wait until it lists them all.
        const deadline = Date.now() + 60_000;
        for (;;) {
          const r = await unary<{ images: unknown[] }>(listers[i]!, 'listImages', {}, new Metadata());
          if (r.images.length === CRI_IMAGES) break;
          if (Date.now() > deadline)
            throw new Error(`${daemons[i]![0]}: CRI lists ${r.images.length} images, expected ${CRI_IMAGES}`);
          await sleep(200);
        }
      }
      log(`CRI: ${CRI_IMAGES} images listed by both daemons`);
      const inClient = (d: Daemon, c: AnyClient) => async (): Promise<Sample> => {
        const times: number[] = [];
        const cpu = process.cpuUsage();
        const daemonCpu = await d.cpuMs();
        for (let k = 0; k < CRI_CALLS; k++) {
          const t = performance.now();
          await unary(c, 'listImages', {}, new Metadata());
          times.push(performance.now() - t);
        }
        const used = process.cpuUsage(cpu);
        return {
          ms: median(times),
          rssKiB: 0, // the client is this process: its RSS says nothing about the call
          cpuMs: (used.user + used.system) / 1000 / CRI_CALLS,
          daemonCpuMs: ((await d.cpuMs()) - daemonCpu) / CRI_CALLS,
          daemonRssKiB: await d.peakRssKiB(),
        };
      };
      await pair(
        `CRI ListImages, ${CRI_IMAGES} images, one client (median of ${CRI_CALLS} calls; CPU per call)`,
        'CRI ListImages (one client)',
        `ImageService.ListImages {} × ${CRI_CALLS}`,
        [inClient(hoistd, listers[0]!), inClient(ctrd, listers[1]!)],
      );
      const walls: number[][] = [[], []];
      const fresh = (i: 0 | 1) => async (): Promise<Sample> => {
        const d = pairOf[i];
        const before = await d.cpuMs();
        const r = await run(NODE, ['--input-type=module', '-e', CRI_CHILD], {
          env: { ...process.env, BENCH_CRI_SOCKET: d.socket },
          keepStdout: true,
        });
        const out = JSON.parse(r.stdout) as { callMs: number; images: number };
        if (out.images !== CRI_IMAGES) throw new Error(`fresh client listed ${out.images} images`);
        walls[i]!.push(r.ms);
        return {
          ms: out.callMs,
          rssKiB: r.maxRssKiB,
          cpuMs: r.cpuMs,
          daemonCpuMs: (await d.cpuMs()) - before,
          daemonRssKiB: await d.peakRssKiB(),
        };
      };
      await pair(
        `CRI ListImages, ${CRI_IMAGES} images, a fresh client process per run (connect + first call)`,
        'CRI ListImages (fresh client process)',
        'node: load grpc-js + CRI descriptors, connect, ImageService.ListImages {}',
        [fresh(0), fresh(1)],
      );
      notes.push(
        `Fresh CRI client process wall time (Node start-up, loading grpc-js and the CRI descriptors, the call), ` +
          `median: hoist serve ${median(walls[0]!).toFixed(0)} ms, containerd ${median(walls[1]!).toFixed(0)} ms.`,
      );
    } finally {
      for (const c of clients) c.close();
      await hoistd.stop();
      await ctrd.stop();
    }
  }

  process.stdout.write(`\n${await machineLine()}\n`);
  for (const line of notes) process.stdout.write(`\n${line}\n`);
  printCpuRatios(cpuPairs);
  printGoals(goals);
} finally {
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
