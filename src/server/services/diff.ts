// Diff service: Apply reads a layer blob from the store and applies it (hoist's applier: whiteouts, path
// safety, diffID computed) into the directory the mounts describe, the way ctr's unpacker asks for it:
// a bind mount is a plain directory (native, or an overlay base layer), an overlay mount applies into
// its upperdir with the lowerdirs as parents. The daemon never mounts: it reads its own mounts' paths.
// Diff computes a layer from two mounts with the differ hoist commit uses (native full trees: a double
// walk; an overlay upperdir: its entries), compressed as asked and stored like any blob.

import { randomBytes } from 'node:crypto';
import { PassThrough, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, createZstdCompress } from 'node:zlib';
import type { Digest } from '../../core/digest.ts';
import { DigestVerifier, hashingStage } from '../../core/digest.ts';
import { HoistError, invalidArgument } from '../../core/errors.ts';
import { Labels } from '../../core/labels.ts';
import { MediaType } from '../../core/mediatypes.ts';
import { applyLayer } from '../../diff/apply.ts';
import { layerCompressionOf } from '../../diff/decompress.ts';
import { diffDirs } from '../../diff/differ.ts';
import { writeBlob } from '../../metadata/write-blob.ts';
import type { LayerDirs } from '../../snapshots/types.ts';
import { descriptorFromProto } from '../convert.ts';
import { Diff } from '../gen/containerd/services/diff/v1/diff_pb.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

interface MountLike {
  type: string;
  source: string;
  options: string[];
}

/** Where to apply, for the mounts a Prepare returned. */
export function applyTargetOf(mounts: MountLike[]): {
  root: string;
  whiteouts: 'delete' | 'overlay';
  parents: string[];
} {
  if (mounts.length !== 1)
    throw invalidArgument(`expected one mount, got ${mounts.length}: invalid argument`);
  const m = mounts[0]!;
  if (m.type === 'bind' || m.type === 'rbind') return { root: m.source, whiteouts: 'delete', parents: [] };
  if (m.type === 'overlay') {
    const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
    const upper = opt('upperdir');
    if (!upper) throw invalidArgument('overlay mount without upperdir is read-only: invalid argument');
    return { root: upper, whiteouts: 'overlay', parents: (opt('lowerdir') ?? '').split(':').filter(Boolean) };
  }
  throw new HoistError('HOIST_NOT_IMPLEMENTED', `cannot apply into a ${m.type} mount`);
}

/** The directories a Diff request's mounts stand for (hoist's own mount shapes). */
function layerDirsOf(left: MountLike[], right: MountLike[]): LayerDirs {
  if (right.length !== 1)
    throw invalidArgument(`expected one right mount, got ${right.length}: invalid argument`);
  const r = right[0]!;
  const opt = (m: MountLike, k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
  const upper = r.type === 'overlay' ? opt(r, 'upperdir') : undefined;
  if (upper)
    return { dir: upper, parents: (opt(r, 'lowerdir') ?? '').split(':').filter(Boolean), layered: true };
  if (r.type !== 'bind' && r.type !== 'rbind')
    throw new HoistError('HOIST_NOT_IMPLEMENTED', `cannot diff a ${r.type} mount without an upperdir`);
  if (left.length === 0) return { dir: r.source, parents: [], layered: false };
  const l = left[0]!;
  if (left.length !== 1 || (l.type !== 'bind' && l.type !== 'rbind'))
    throw new HoistError(
      'HOIST_NOT_IMPLEMENTED',
      'diff of a full tree against a multi-layer overlay view is not supported',
    );
  return { dir: r.source, parents: [l.source], layered: false };
}

export function diffService(deps: ServerDeps): RegisteredService {
  return defineService('diff', Diff, {
    apply: async (req, call) => {
      const ctx = call.store();
      const desc = descriptorFromProto(req.diff);
      const target = applyTargetOf(req.mounts);
      const blob = await deps.backend.content.reader(ctx, desc.digest as Digest);
      const r = await applyLayer(blob, {
        root: target.root,
        mediaType: desc.mediaType,
        whiteouts: target.whiteouts,
        parents: target.parents,
        signal: call.signal,
      });
      return {
        applied: { mediaType: MediaType.OciLayer, digest: r.diffId, size: BigInt(r.size), annotations: {} },
      };
    },
    diff: async (req, call) => {
      const ctx = call.store();
      const dirs = layerDirsOf(req.left, req.right);
      const mediaType = req.mediaType || MediaType.OciLayerGzip;
      const compression = layerCompressionOf(mediaType);
      const tarHash = new DigestVerifier();
      const stages: Transform[] = [hashingStage(tarHash)];
      if (compression === 'gzip') stages.push(createGzip());
      if (compression === 'zstd') stages.push(createZstdCompress());
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      const piping = pipeline(diffDirs(dirs), stages[0]!, ...stages.slice(1), out);
      const ref = req.ref || `diff-${randomBytes(8).toString('hex')}`;
      const [written] = await Promise.all([
        writeBlob(deps.backend.content, ctx, ref, out, undefined, { labels: { ...req.labels } }),
        piping,
      ]);
      await deps.backend.content.update(
        ctx,
        { digest: written.digest, labels: { [Labels.uncompressed]: tarHash.digest() } },
        [`labels.${Labels.uncompressed}`],
      );
      return { diff: { mediaType, digest: written.digest, size: BigInt(written.size), annotations: {} } };
    },
  });
}
