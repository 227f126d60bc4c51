// What the benchmark images share: an OCI layout built once and cached under the temp dir (BENCH_REBUILD=1
// rebuilds), its layers and their tar entries counted (the divisor of the per-file cost), an OCI layout
// written from gzip layers made by outside tools (GNU tar | gzip -n), and a loopback registry serving it.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushLayout } from '../test/helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.ts';
import { log, mib } from './lib.ts';

export interface FixtureImage {
  layoutDir: string;
  /** Sum of the compressed layer sizes plus config and manifest. */
  compressedBytes: number;
  uncompressedBytes: number;
  manifestDigest: string;
  /** Tar entries (files, directories, links) of all layers together: the per-file cost divides by it. */
  entries?: number;
  /**
   * Paths of the unpacked tree (below its root): every entry's path and the parent directories a tar
   * leaves implicit, once each across layers. Checks a `tar -x` of all layers.
   */
  treePaths?: number;
}

/** A fixture with its counts filled in. */
export type CountedImage = FixtureImage & { entries: number; treePaths: number };

export interface LayerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** The (single-platform) manifest's layers of the layout's only tag. */
export async function layoutLayers(layoutDir: string): Promise<LayerDescriptor[]> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: LayerDescriptor[];
  };
  const top = index.manifests[0]!;
  const manifest = JSON.parse(await readFile(blobPath(layoutDir, top.digest), 'utf8')) as {
    layers: LayerDescriptor[];
  };
  return manifest.layers;
}

export function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice(digest.indexOf(':') + 1));
}

/** The entry names of a layer blob (`gzip -dc | tar -t`, or `tar -t` for an uncompressed one). */
async function tarNames(file: string, gzipped: boolean): Promise<string[]> {
  const script = gzipped ? 'set -o pipefail; gzip -dc "$1" | tar -t' : 'tar -t -f "$1"';
  const child = spawn('bash', ['-c', script, 'bash', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`listing ${file} failed (${code}): ${err.trim()}`);
  return out.split('\n').filter(Boolean);
}

/** Count the layers' tar entries and the paths of the tree they unpack to. */
export async function countEntries(layoutDir: string): Promise<{ entries: number; treePaths: number }> {
  let entries = 0;
  const paths = new Set<string>();
  for (const l of await layoutLayers(layoutDir)) {
    const names = await tarNames(blobPath(layoutDir, l.digest), /gzip/.test(l.mediaType));
    entries += names.length;
    for (const name of names) {
      const parts = name
        .replace(/^(\.\/)+/, '')
        .split('/')
        .filter((p) => p && p !== '.');
      for (let i = 1; i <= parts.length; i++) paths.add(parts.slice(0, i).join('/'));
    }
  }
  return { entries, treePaths: paths.size };
}

/**
 * The layout `tmpdir()/hoist-bench-<name>`, built by `build` unless a finished one is cached there
 * (BENCH_REBUILD=1 rebuilds). `name` carries a version: bump it when a generator changes. Counts the
 * tar entries once (also for layouts cached before counting existed).
 */
export async function cachedLayout(
  name: string,
  build: (dir: string) => Promise<Omit<FixtureImage, 'layoutDir'>>,
): Promise<CountedImage> {
  const dir = join(tmpdir(), `hoist-bench-${name}`);
  const meta = join(dir, 'bench-meta.json');
  let info: FixtureImage;
  if (process.env.BENCH_REBUILD !== '1' && existsSync(meta)) {
    info = JSON.parse(await readFile(meta, 'utf8')) as FixtureImage;
  } else {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const started = performance.now();
    info = { ...(await build(dir)), layoutDir: dir };
    log(`built ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s (cached at ${dir})`);
  }
  if (info.entries === undefined || info.treePaths === undefined) {
    Object.assign(info, await countEntries(dir));
    await writeFile(meta, JSON.stringify(info));
  }
  return info as CountedImage;
}

// ---------------------------------------------------------------------------------------------------
// An OCI layout from gzip layers written by outside tools.

export interface GzipLayer {
  digest: string;
  size: number;
  diffId: string;
  /** Bytes of the uncompressed tar. */
  tarBytes: number;
}

/**
 * One gzip layer into `layoutDir`'s blobs: `cmd args` writes a tar to its stdout, `gzip -n` compresses it
 * (no name, no time stamp: reproducible); the tar is hashed on the way in (diffID), the gzip on the way
 * out (digest).
 */
export async function gzipLayerFrom(layoutDir: string, cmd: string, args: string[]): Promise<GzipLayer> {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tmp = join(blobs, `.tmp-${randomBytes(6).toString('hex')}`);
  const out = await open(tmp, 'w');
  const producer = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const gzip = spawn('gzip', ['-n', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let tarBytes = 0;
  let size = 0;
  let errors = '';
  producer.stderr.setEncoding('utf8').on('data', (d: string) => {
    errors += d;
  });
  gzip.stderr.setEncoding('utf8').on('data', (d: string) => {
    errors += d;
  });
  const closed = (c: ReturnType<typeof spawn>) =>
    new Promise<number>((resolve, reject) => {
      c.once('error', reject);
      c.once('close', (code) => resolve(code ?? 1));
    });
  const producerDone = closed(producer);
  const gzipDone = closed(gzip);
  const feed = (async () => {
    for await (const chunk of producer.stdout as AsyncIterable<Buffer>) {
      diffHash.update(chunk);
      tarBytes += chunk.byteLength;
      if (!gzip.stdin.write(chunk)) await new Promise((r) => gzip.stdin.once('drain', r));
    }
    gzip.stdin.end();
  })();
  const drain = (async () => {
    for await (const chunk of gzip.stdout as AsyncIterable<Buffer>) {
      blobHash.update(chunk);
      size += chunk.byteLength;
      await out.write(chunk);
    }
  })();
  try {
    const [pc, gc] = await Promise.all([producerDone, gzipDone, feed, drain]);
    if (pc !== 0 || gc !== 0) throw new Error(`${cmd} | gzip -n failed (${pc}, ${gc}): ${errors.trim()}`);
  } finally {
    await out.close();
  }
  const digest = `sha256:${blobHash.digest('hex')}`;
  await rename(tmp, join(blobs, digest.slice(7)));
  return { digest, size, diffId: `sha256:${diffHash.digest('hex')}`, tarBytes };
}

async function writeBlob(layoutDir: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(blobPath(layoutDir, digest), bytes);
  return { digest, size: bytes.byteLength };
}

/**
 * Finish an OCI layout around gzip layers already in its blobs: config (linux/amd64, fixed dates),
 * manifest, and index.json naming it `tag`.
 */
export async function writeGzipLayout(
  layoutDir: string,
  tag: string,
  layers: GzipLayer[],
  config: Record<string, unknown> = {},
): Promise<Omit<FixtureImage, 'layoutDir'>> {
  const created = '2024-01-01T00:00:00Z';
  const configDoc = {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...config },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created, created_by: 'hoist bench fixture' })),
  };
  const cfg = await writeBlob(layoutDir, Buffer.from(JSON.stringify(configDoc)));
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
  };
  const man = await writeBlob(layoutDir, Buffer.from(JSON.stringify(manifestDoc)));
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: manifestDoc.mediaType,
        ...man,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  await writeFile(join(layoutDir, 'index.json'), JSON.stringify(index));
  return {
    compressedBytes: layers.reduce((n, l) => n + l.size, 0) + cfg.size + man.size,
    uncompressedBytes: layers.reduce((n, l) => n + l.tarBytes, 0),
    manifestDigest: man.digest,
  };
}

// ---------------------------------------------------------------------------------------------------
// The loopback registry.

export interface BenchRegistry {
  registry: TestRegistry;
  image: CountedImage;
  /** `127.0.0.1:PORT/<repo>:<tag>` on the registry's own port (no counting proxy). */
  ref: string;
  /** The repository (`bench/medium`), for blob URLs: `http://<registryHost>/v2/<repo>/blobs/<digest>`. */
  repo: string;
  stop(): Promise<void>;
}

/** Start a loopback registry and push the layout's tag to `repoTag` (`repo:tag`) in it. */
export async function registryWith(image: CountedImage, repoTag: string): Promise<BenchRegistry> {
  const registry = await startRegistry();
  const ref = `${registry.registryHost}/${repoTag}`;
  await pushLayout(image.layoutDir, repoTag, registry.registryHost);
  log(
    `registry ${registry.registryHost}: ${ref} = ${mib(image.compressedBytes)} compressed, ${mib(image.uncompressedBytes)} uncompressed, ${image.entries} tar entries`,
  );
  return {
    registry,
    image,
    ref,
    repo: repoTag.slice(0, repoTag.lastIndexOf(':')),
    stop: () => registry.stop(),
  };
}
