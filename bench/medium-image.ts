// The "medium image" of issue 2's benchmarks, and the loopback registry that serves it: 5 gzip layers,
// 300 MiB of files (text-like, so gzip works about as hard as on real layers), built deterministically
// and cached as an OCI layout under the temp dir.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { writeOciLayout } from '../test/helpers/image-builder.ts';
import { type BenchRegistry, type CountedImage, cachedLayout, registryWith } from './fixture-image.ts';

/** Uncompressed file bytes per layer (the tar adds headers): 300 MiB in all. */
export const MEDIUM_LAYER_MIB = [96, 72, 60, 42, 30];
export const MEDIUM_REPO = 'bench/medium';
export const MEDIUM_TAG = 'v1';
const FILE_MIB = 8;
/** Bump when the generator changes, so a cached layout is not reused. */
const LAYOUT_VERSION = 'medium-v1';

/** mulberry32: a tiny, fast, seeded PRNG (reproducible layers → reproducible digests). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * A pool of 65,536 text lines of random words from an 8,192-word vocabulary. Output is made of lines
 * drawn at random from the pool: gzip's 32 KiB window almost never sees a line twice, so it has to code
 * word by word (ratio ≈ 2.5–3×, like source code or logs), while generating is a memcpy per line.
 */
export function linePool(seed: number): Buffer[] {
  const rnd = prng(seed);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocab: string[] = [];
  for (let i = 0; i < 8192; i++) {
    const len = 2 + (rnd() % 9);
    let w = '';
    for (let j = 0; j < len; j++) w += letters[Math.min(25, Math.floor((rnd() % 1000) ** 2 / 38000))];
    vocab.push(w);
  }
  const pool: Buffer[] = [];
  for (let i = 0; i < 65536; i++) {
    const words = 4 + (rnd() % 12);
    const parts: string[] = [];
    for (let j = 0; j < words; j++) parts.push(vocab[rnd() % vocab.length]!);
    const indent = ' '.repeat((rnd() % 4) * 2);
    pool.push(Buffer.from(`${indent}${parts.join(rnd() % 5 === 0 ? ', ' : ' ')}${rnd() % 3 ? ';' : ''}\n`));
  }
  return pool;
}

function* textChunks(size: number, pool: Buffer[], rnd: () => number): Generator<Buffer> {
  const chunk = 1 << 20;
  let left = size;
  while (left > 0) {
    const n = Math.min(chunk, left);
    const buf = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const line = pool[rnd() & 0xffff]!;
      at += line.copy(buf, at, 0, Math.min(line.length, n - at));
    }
    left -= n;
    yield buf;
  }
}

/** A tar of `mib` MiB of text, in files of FILE_MIB MiB, generated while streaming. */
function textLayerTar(layer: number, mib: number, pool: Buffer[]): Readable {
  const pack = tar.pack();
  const rnd = prng(1000 + layer);
  (async () => {
    const mtime = new Date('2024-01-01T00:00:00Z');
    pack.entry({ name: `layer${layer}`, type: 'directory', mode: 0o755, mtime });
    for (let f = 0, left = mib; left > 0; f++, left -= FILE_MIB) {
      const size = Math.min(FILE_MIB, left) * 1024 * 1024;
      const entry = pack.entry({ name: `layer${layer}/part${f}.txt`, size, mode: 0o644, mtime });
      await pipeline(Readable.from(textChunks(size, pool, rnd)), entry);
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}

/** The medium image's layout (the shared fixture type; kept under this name for the benches using it). */
export type MediumImage = CountedImage;
export type { BenchRegistry } from './fixture-image.ts';

/**
 * Build the medium image as an OCI layout, cached under the temp dir (the generator is deterministic);
 * BENCH_REBUILD=1 forces a rebuild.
 */
export function mediumLayout(): Promise<MediumImage> {
  return cachedLayout(LAYOUT_VERSION, async (dir) => {
    const pool = linePool(42);
    const built = await writeOciLayout(dir, [
      {
        tag: MEDIUM_TAG,
        image: {
          layers: MEDIUM_LAYER_MIB.map((mib, i) => ({ tar: () => textLayerTar(i, mib, pool) })),
          config: { Cmd: ['/bin/sh'] },
        },
      },
    ]);
    const img = built[0]!.images[0]!;
    return {
      compressedBytes: img.layers.reduce((n, l) => n + l.size, 0) + img.config.size + img.manifest.size,
      uncompressedBytes: MEDIUM_LAYER_MIB.reduce((n, m) => n + m, 0) * 1024 * 1024,
      manifestDigest: img.manifest.digest,
    };
  });
}

/** Start the loopback registry and push the medium image to it. */
export async function registryWithMediumImage(): Promise<BenchRegistry> {
  return registryWith(await mediumLayout(), `${MEDIUM_REPO}:${MEDIUM_TAG}`);
}
