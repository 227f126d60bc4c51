// Re-encoding one layer: decompress by its media type, hash the tar (the diffID must come out as the
// config says: conversion changes the wrapping, never the filesystem), compress to the target, and store
// the result with its `containerd.io/uncompressed` label. Streamed end to end; zlib runs on libuv's
// thread pool, so several layers converting at once use several cores.
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../api/content.ts';
import { zlib } from '../core/builtins.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { type Digest, DigestVerifier, hashingStage } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { type Compression, layerCompression } from '../core/mediatypes.ts';
import { decompressorFor } from '../diff/decompress.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { layerMediaType } from './media-types.ts';

export interface LayerTarget {
  /** undefined: keep each layer's compression. */
  compression: Compression | undefined;
  format: 'oci' | 'docker';
  zstdLevel?: number;
  gzipLevel?: number;
}

export interface ConvertedLayer {
  desc: Descriptor;
  diffId: Digest;
  /** false when the bytes were kept as they are (only the media type may have changed). */
  reencoded: boolean;
}

function compressorFor(c: Compression, t: LayerTarget): Transform | null {
  switch (c) {
    case 'gzip':
      return zlib().createGzip({
        level: t.gzipLevel ?? zlib().constants.Z_DEFAULT_COMPRESSION,
        chunkSize: 512 * 1024,
      });
    case 'zstd':
      return zlib().createZstdCompress({
        chunkSize: 512 * 1024,
        params: { [zlib().constants.ZSTD_c_compressionLevel]: t.zstdLevel ?? 3 },
      });
    default:
      return null;
  }
}

/**
 * Convert `desc` (whose uncompressed digest must be `diffId`) to `target`. `source` overrides where the
 * uncompressed tar comes from (a layer rebuilt from a snapshot); then `diffId` is whatever it hashes to.
 */
export async function convertLayer(
  content: ContentStore,
  ctx: Context,
  desc: Descriptor,
  diffId: Digest | undefined,
  target: LayerTarget,
  source?: () => Promise<Readable>,
): Promise<ConvertedLayer> {
  const from = layerCompression(desc.mediaType);
  const to = target.compression ?? from;
  const mediaType = layerMediaType(to, target.format, desc.mediaType);
  if (!source && to === from) {
    // Same bytes: only the media type may change (Docker → OCI), the digest stays.
    return { desc: { ...desc, mediaType }, diffId: diffId ?? desc.digest, reencoded: false };
  }
  const verifier = new DigestVerifier();
  const tar = source ? await source() : await content.reader(ctx, desc.digest);
  const stages: Transform[] = [];
  const decompress = source ? null : decompressorFor(desc.mediaType, 512 * 1024);
  if (decompress) stages.push(decompress);
  stages.push(hashingStage(verifier));
  const compress = compressorFor(to, target);
  if (compress) stages.push(compress);
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const chain = [...stages, out];
  const piping = pipeline(tar, chain[0]!, ...chain.slice(1));
  // One ref per source and exact encoding: compression is deterministic, so an interrupted conversion of
  // the same layer resumes its ingest where it stopped.
  const level = to === 'zstd' ? (target.zstdLevel ?? 3) : to === 'gzip' ? (target.gzipLevel ?? -1) : 0;
  const ref = `convert-${desc.digest}-${mediaType}-${level}${source ? '-rebuilt' : ''}`;
  // Settle both: when the write fails (a full disk), the pipeline then fails too, with the AbortError of
  // its destroyed output, and that must not hide the cause ("operation cancelled" for a full disk).
  const [write, pipe] = await Promise.allSettled([writeBlob(content, ctx, ref, out), piping]);
  if (pipe.status === 'rejected' && !(write.status === 'rejected' && isAbort(pipe.reason))) throw pipe.reason;
  if (write.status === 'rejected') throw write.reason;
  const written = write.value;
  const actual = verifier.digest();
  if (diffId !== undefined && actual !== diffId) {
    throw new HoistError(
      'HOIST_DIGEST_MISMATCH',
      `layer ${desc.digest}: its uncompressed content is ${actual}, but the image config says ${diffId}; the layer is corrupt, nothing was converted`,
      { hint: 'remove the image and pull it again' },
    );
  }
  await content.update(ctx, { digest: written.digest, labels: { [Labels.uncompressed]: actual } }, [
    `labels.${Labels.uncompressed}`,
  ]);
  const converted: Descriptor = { mediaType, digest: written.digest, size: written.size };
  if (desc.annotations) converted.annotations = desc.annotations;
  return { desc: converted, diffId: actual, reencoded: true };
}

function isAbort(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'AbortError';
}
