// The 40-layer image of issue 3's benchmark: many small layers (each a directory of 24 text files of
// 12 KiB, ~290 KiB), so per-layer costs (snapshot create/commit, process and lease bookkeeping) dominate
// instead of bytes. Deterministic, cached as an OCI layout under the temp dir, pushed to a loopback registry.
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushLayout, writeOciLayout } from '../test/helpers/image-builder.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { log } from './lib.ts';
import type { BenchRegistry, MediumImage } from './medium-image.ts';

export const MANY_LAYERS = 40;
const FILES = 24;
const FILE_BYTES = 12 * 1024;
const VERSION = 'many-layers-v1';

function text(layer: number, file: number): string {
  const line = `layer ${layer} file ${file}: the quick brown fox jumps over the lazy dog ${layer * 131 + file}\n`;
  return line.repeat(Math.ceil(FILE_BYTES / line.length)).slice(0, FILE_BYTES);
}

export async function manyLayersLayout(): Promise<MediumImage> {
  const dir = join(tmpdir(), `hoist-bench-${VERSION}`);
  const meta = join(dir, 'bench-meta.json');
  if (process.env.BENCH_REBUILD !== '1' && existsSync(meta)) {
    return JSON.parse(await readFile(meta, 'utf8')) as MediumImage;
  }
  await rm(dir, { recursive: true, force: true });
  const layers = Array.from({ length: MANY_LAYERS }, (_, l) =>
    Object.fromEntries(Array.from({ length: FILES }, (_, f) => [`l${l}/f${f}.txt`, text(l, f)])),
  );
  const built = await writeOciLayout(dir, [{ tag: 'v1', image: { layers, config: { Cmd: ['/bin/sh'] } } }]);
  const img = built[0]!.images[0]!;
  const info: MediumImage = {
    layoutDir: dir,
    compressedBytes: img.layers.reduce((n, l) => n + l.size, 0) + img.config.size + img.manifest.size,
    uncompressedBytes: MANY_LAYERS * FILES * FILE_BYTES,
    manifestDigest: img.manifest.digest,
  };
  await writeFile(meta, JSON.stringify(info));
  return info;
}

export async function registryWithManyLayers(): Promise<BenchRegistry> {
  const image = await manyLayersLayout();
  const registry = await startRegistry();
  const ref = `${registry.registryHost}/bench/many:v1`;
  await pushLayout(image.layoutDir, 'bench/many:v1', registry.registryHost);
  log(`registry ${registry.registryHost}: ${ref} = ${MANY_LAYERS} layers`);
  return { registry, image, ref, stop: () => registry.stop() };
}
