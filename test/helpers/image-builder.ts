// Test images without the network: OCI image layouts written from file maps, raw tars or generated random
// data (streamed: a 1 GB layer never sits in memory). The push helpers (registry-push.ts) are re-exported.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type FileContent =
  | string
  | Buffer
  | { content: string | Buffer; mode?: number }
  | { symlink: string }
  | { dir: true; mode?: number };

/** A layer: a map of paths to contents, raw tar bytes, a tar stream, or N random bytes in one file. */
export type LayerInput =
  | Record<string, FileContent>
  | Buffer
  | { tar: () => Readable }
  | { randomBytes: number; path?: string };

export type ImageFormat = 'oci' | 'docker';

export interface ImageSpec {
  layers: LayerInput[];
  /** Merged into the config's `config` object (Env, Cmd, Labels, User, …). */
  config?: Record<string, unknown>;
  /** Extra top-level config fields (history, author, …). */
  configExtras?: Record<string, unknown>;
  platform?: { os?: string; architecture?: string; variant?: string };
  /** Media types: OCI (default) or Docker schema 2. */
  format?: ImageFormat;
  compression?: 'gzip' | 'none';
  annotations?: Record<string, string>;
  created?: string;
}

export interface LayoutEntry {
  tag: string;
  /** A single-platform image … */
  image?: ImageSpec;
  /** … or an index (manifest list for format 'docker') of several. */
  platforms?: ImageSpec[];
  format?: ImageFormat;
}

export interface BuiltBlob {
  mediaType: string;
  digest: string;
  size: number;
}

export interface BuiltLayer extends BuiltBlob {
  diffId: string;
}

export interface BuiltImage {
  manifest: BuiltBlob & { bytes: Buffer };
  config: BuiltBlob & { bytes: Buffer };
  layers: BuiltLayer[];
  platform: { os: string; architecture: string; variant?: string };
}

export interface BuiltEntry {
  tag: string;
  /** What the tag points to: the manifest, or the index. */
  top: BuiltBlob & { bytes: Buffer };
  images: BuiltImage[];
}

const MT = {
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
    layer: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    layer: 'application/vnd.docker.image.rootfs.diff.tar',
  },
} as const;

const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');

function isFileMap(l: LayerInput): l is Record<string, FileContent> {
  return !Buffer.isBuffer(l) && !('tar' in l && typeof l.tar === 'function') && !('randomBytes' in l);
}

/** A tar stream of a file map (directories first, sorted, fixed mtimes: reproducible digests). */
export function tarOf(files: Record<string, FileContent>): Readable {
  const pack = tar.pack();
  const names = Object.keys(files).sort();
  (async () => {
    for (const name of names) {
      const v = files[name]!;
      const clean = name.replace(/^\/+/, '');
      if (typeof v === 'string' || Buffer.isBuffer(v)) {
        pack.entry({ name: clean, mode: 0o644, mtime: FIXED_MTIME }, Buffer.from(v));
      } else if ('symlink' in v) {
        pack.entry({ name: clean, type: 'symlink', linkname: v.symlink, mtime: FIXED_MTIME });
      } else if ('dir' in v) {
        pack.entry({ name: clean, type: 'directory', mode: v.mode ?? 0o755, mtime: FIXED_MTIME });
      } else {
        pack.entry({ name: clean, mode: v.mode ?? 0o644, mtime: FIXED_MTIME }, Buffer.from(v.content));
      }
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}

/** A tar with one file of `size` random bytes, generated while streaming (bounded memory). */
export function randomTar(size: number, path = 'random.bin'): Readable {
  const pack = tar.pack();
  const entry = pack.entry({ name: path, size, mode: 0o644, mtime: FIXED_MTIME }, (err) => {
    if (err) pack.destroy(err);
    else pack.finalize();
  });
  const chunk = 1 << 20;
  let left = size;
  Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(chunk, left);
        left -= n;
        yield randomBytes(n);
      }
    })(),
  ).pipe(entry);
  return pack as unknown as Readable;
}

function hashing(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.byteLength;
      cb(null, chunk);
    },
  });
}

async function writeBlobBytes(dir: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return digest;
}

/** Write one layer blob into the layout, computing its digest (compressed) and diffID (tar). */
export async function writeLayer(
  layoutDir: string,
  input: LayerInput,
  opts: { format?: ImageFormat; compression?: 'gzip' | 'none' } = {},
): Promise<BuiltLayer> {
  const mt = MT[opts.format ?? 'oci'];
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const source: Readable = Buffer.isBuffer(input)
    ? Readable.from([input])
    : isFileMap(input)
      ? tarOf(input)
      : 'randomBytes' in input
        ? randomTar(input.randomBytes, input.path)
        : input.tar();
  // gzip by default: skopeo compresses uncompressed layers when pushing, which would change digests.
  const compression = opts.compression ?? 'gzip';
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const raw = { n: 0 };
  const packed = { n: 0 };
  const tmp = join(blobs, `.tmp-${randomBytes(6).toString('hex')}`);
  const stages: NodeJS.ReadWriteStream[] = [hashing(diffHash, raw)];
  if (compression === 'gzip') stages.push(createGzip({ level: 1 }));
  stages.push(hashing(blobHash, packed));
  await pipeline(source, ...(stages as [Transform]), createWriteStream(tmp));
  const digest = `sha256:${blobHash.digest('hex')}`;
  await rename(tmp, join(blobs, digest.slice(7)));
  return {
    mediaType: compression === 'gzip' ? mt.layerGzip : mt.layer,
    digest,
    size: packed.n,
    diffId: `sha256:${diffHash.digest('hex')}`,
  };
}

async function writeImage(dir: string, spec: ImageSpec, fallbackFormat: ImageFormat): Promise<BuiltImage> {
  const format = spec.format ?? fallbackFormat;
  const mt = MT[format];
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) {
    const opts: { format: ImageFormat; compression?: 'gzip' | 'none' } = { format };
    if (spec.compression) opts.compression = spec.compression;
    layers.push(await writeLayer(dir, l, opts));
  }
  const platform = {
    os: spec.platform?.os ?? 'linux',
    architecture: spec.platform?.architecture ?? 'amd64',
    ...(spec.platform?.variant ? { variant: spec.platform.variant } : {}),
  };
  const configDoc = {
    created: spec.created ?? '2024-01-01T00:00:00Z',
    ...platform,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...spec.config },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'hoist test image-builder' })),
    ...spec.configExtras,
  };
  const configBytes = Buffer.from(JSON.stringify(configDoc));
  const config = {
    mediaType: mt.config,
    digest: await writeBlobBytes(dir, configBytes),
    size: configBytes.byteLength,
  };
  const manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: mt.manifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  if (spec.annotations && format === 'oci') manifestDoc.annotations = spec.annotations;
  const manifestBytes = Buffer.from(JSON.stringify(manifestDoc));
  const manifest = {
    mediaType: mt.manifest,
    digest: await writeBlobBytes(dir, manifestBytes),
    size: manifestBytes.byteLength,
    bytes: manifestBytes,
  };
  return { manifest, config: { ...config, bytes: configBytes }, layers, platform };
}

/**
 * Write (or add to) an OCI image layout at `dir`: each entry becomes a manifest (or an index of several)
 * listed in index.json under `org.opencontainers.image.ref.name = <tag>`, as skopeo's `oci:<dir>:<tag>`
 * expects. Calling it again on the same dir replaces index.json with the new entries.
 */
export async function writeOciLayout(dir: string, entries: LayoutEntry[]): Promise<BuiltEntry[]> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const built: BuiltEntry[] = [];
  for (const entry of entries) {
    const format = entry.format ?? entry.image?.format ?? 'oci';
    if (entry.image) {
      const img = await writeImage(dir, entry.image, format);
      built.push({ tag: entry.tag, top: img.manifest, images: [img] });
      continue;
    }
    const images: BuiltImage[] = [];
    for (const p of entry.platforms ?? []) images.push(await writeImage(dir, p, format));
    const indexDoc = {
      schemaVersion: 2,
      mediaType: MT[format].index,
      manifests: images.map((i) => ({
        mediaType: i.manifest.mediaType,
        digest: i.manifest.digest,
        size: i.manifest.size,
        platform: i.platform,
      })),
    };
    const bytes = Buffer.from(JSON.stringify(indexDoc));
    const top = {
      mediaType: MT[format].index,
      digest: await writeBlobBytes(dir, bytes),
      size: bytes.byteLength,
      bytes,
    };
    built.push({ tag: entry.tag, top, images });
  }
  const index = {
    schemaVersion: 2,
    mediaType: MT.oci.index,
    manifests: built.map((b) => ({
      mediaType: b.top.mediaType,
      digest: b.top.digest,
      size: b.top.size,
      annotations: { 'org.opencontainers.image.ref.name': b.tag },
    })),
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return built;
}

export {
  type PushOptions,
  pushBlob,
  pushBlobFile,
  pushLayout,
  pushManifest,
} from './registry-push.ts';
