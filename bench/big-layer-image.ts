// The 1 GiB single-layer image: one gzip layer whose tar holds 1 GiB of files (256 files of 4 MiB in 16
// directories). Each file is 64 KiB segments, half of them pseudo-random bytes (gzip cannot shrink them
// but still has to scan them) and half text lines (gzip codes them word by word, as in the medium image),
// so the layer compresses to roughly two thirds. Generating is memcpy from two pools; deterministic,
// cached as an OCI layout under the temp dir, pushed to a loopback registry.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { writeOciLayout } from '../test/helpers/image-builder.ts';
import { type BenchRegistry, type CountedImage, cachedLayout, registryWith } from './fixture-image.ts';
import { linePool, prng } from './medium-image.ts';

const DIRS = 16;
const FILES_PER_DIR = 16;
const FILE_BYTES = 4 << 20;
const SEGMENT = 64 << 10;
const RANDOM_POOL = 16 << 20;
export const BIG_LAYER_BYTES = DIRS * FILES_PER_DIR * FILE_BYTES;
const VERSION = 'big-layer-v1';

function randomPool(seed: number): Buffer {
  const rnd = prng(seed);
  const words = new Uint32Array(RANDOM_POOL / 4);
  for (let i = 0; i < words.length; i++) words[i] = rnd();
  return Buffer.from(words.buffer);
}

/** One file's bytes, 1 MiB at a time: 64 KiB segments, each random (a pool slice) or text (pool lines). */
function* fileChunks(lines: Buffer[], random: Buffer, rnd: () => number): Generator<Buffer> {
  const chunk = 1 << 20;
  for (let left = FILE_BYTES; left > 0; left -= chunk) {
    const buf = Buffer.allocUnsafe(chunk);
    for (let seg = 0; seg < chunk; seg += SEGMENT) {
      if (rnd() & 1) {
        const from = rnd() % (RANDOM_POOL - SEGMENT);
        random.copy(buf, seg, from, from + SEGMENT);
        continue;
      }
      let at = seg;
      while (at < seg + SEGMENT) {
        const line = lines[rnd() & 0xffff]!;
        at += line.copy(buf, at, 0, Math.min(line.length, seg + SEGMENT - at));
      }
    }
    yield buf;
  }
}

function bigTar(): Readable {
  const pack = tar.pack();
  const lines = linePool(7);
  const random = randomPool(8);
  const rnd = prng(9);
  (async () => {
    const mtime = new Date('2024-01-01T00:00:00Z');
    for (let d = 0; d < DIRS; d++) {
      pack.entry({ name: `data/d${d}`, type: 'directory', mode: 0o755, mtime });
      for (let f = 0; f < FILES_PER_DIR; f++) {
        const entry = pack.entry({ name: `data/d${d}/f${f}.bin`, size: FILE_BYTES, mode: 0o644, mtime });
        await pipeline(Readable.from(fileChunks(lines, random, rnd)), entry);
      }
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}

export function bigLayerLayout(): Promise<CountedImage> {
  return cachedLayout(VERSION, async (dir) => {
    const built = await writeOciLayout(dir, [
      { tag: 'v1', image: { layers: [{ tar: bigTar }], config: { Cmd: ['/bin/sh'] } } },
    ]);
    const img = built[0]!.images[0]!;
    return {
      compressedBytes: img.layers.reduce((n, l) => n + l.size, 0) + img.config.size + img.manifest.size,
      uncompressedBytes: BIG_LAYER_BYTES,
      manifestDigest: img.manifest.digest,
    };
  });
}

export async function registryWithBigLayer(): Promise<BenchRegistry> {
  return registryWith(await bigLayerLayout(), 'bench/big:v1');
}
