// The 40-layer image of issue 3's benchmark: many small layers (each a directory of 24 text files of
// 12 KiB, ~290 KiB), so per-layer costs (snapshot create/commit, process and lease bookkeeping) dominate
// instead of bytes. Deterministic, cached as an OCI layout under the temp dir, pushed to a loopback registry.
import { writeOciLayout } from '../test/helpers/image-builder.ts';
import { type BenchRegistry, type CountedImage, cachedLayout, registryWith } from './fixture-image.ts';

export const MANY_LAYERS = 40;
const FILES = 24;
const FILE_BYTES = 12 * 1024;
const VERSION = 'many-layers-v1';

function text(layer: number, file: number): string {
  const line = `layer ${layer} file ${file}: the quick brown fox jumps over the lazy dog ${layer * 131 + file}\n`;
  return line.repeat(Math.ceil(FILE_BYTES / line.length)).slice(0, FILE_BYTES);
}

export function manyLayersLayout(): Promise<CountedImage> {
  return cachedLayout(VERSION, async (dir) => {
    const layers = Array.from({ length: MANY_LAYERS }, (_, l) =>
      Object.fromEntries(Array.from({ length: FILES }, (_, f) => [`l${l}/f${f}.txt`, text(l, f)])),
    );
    const built = await writeOciLayout(dir, [{ tag: 'v1', image: { layers, config: { Cmd: ['/bin/sh'] } } }]);
    const img = built[0]!.images[0]!;
    return {
      compressedBytes: img.layers.reduce((n, l) => n + l.size, 0) + img.config.size + img.manifest.size,
      uncompressedBytes: MANY_LAYERS * FILES * FILE_BYTES,
      manifestDigest: img.manifest.digest,
    };
  });
}

export async function registryWithManyLayers(): Promise<BenchRegistry> {
  return registryWith(await manyLayersLayout(), 'bench/many:v1');
}
