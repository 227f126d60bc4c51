// The embedded store's diff port: the layer applier and the differ, in process, over the directories the
// mounts name (this process's own snapshots: it reads their paths and never mounts). `hoist serve`'s Diff
// service is a wire adapter over this.
import { randomBytes } from 'node:crypto';
import { PassThrough, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../api/content.ts';
import type { DiffService } from '../api/diff.ts';
import type { LayerDirs, Mount } from '../api/snapshots.ts';
import { zlib } from '../core/builtins.ts';
import type { Digest } from '../core/digest.ts';
import { DigestVerifier, hashingStage } from '../core/digest.ts';
import { HoistError, invalidArgument } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { MediaType } from '../core/mediatypes.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { applyLayer } from './apply.ts';
import { layerCompressionOf } from './decompress.ts';
import { diffDirs } from './differ.ts';

const option = (m: Mount, key: string) =>
  m.options.find((o) => o.startsWith(`${key}=`))?.slice(key.length + 1);

/** Where to apply, for the mounts a Prepare returned. */
export function applyTargetOf(mounts: Mount[]): {
  root: string;
  whiteouts: 'delete' | 'overlay';
  parents: string[];
} {
  if (mounts.length !== 1)
    throw invalidArgument(`expected one mount, got ${mounts.length}: invalid argument`);
  const m = mounts[0]!;
  if (m.type === 'bind' || m.type === 'rbind') return { root: m.source, whiteouts: 'delete', parents: [] };
  if (m.type === 'overlay') {
    const upper = option(m, 'upperdir');
    if (!upper) throw invalidArgument('overlay mount without upperdir is read-only: invalid argument');
    return {
      root: upper,
      whiteouts: 'overlay',
      parents: (option(m, 'lowerdir') ?? '').split(':').filter(Boolean),
    };
  }
  throw new HoistError('HOIST_NOT_IMPLEMENTED', `cannot apply into a ${m.type} mount`);
}

/** The directories a comparison's mounts stand for (hoist's own mount shapes). */
export function layerDirsOf(lower: Mount[], upper: Mount[]): LayerDirs {
  if (upper.length !== 1)
    throw invalidArgument(`expected one upper mount, got ${upper.length}: invalid argument`);
  const r = upper[0]!;
  const upperDir = r.type === 'overlay' ? option(r, 'upperdir') : undefined;
  if (upperDir)
    return {
      dir: upperDir,
      parents: (option(r, 'lowerdir') ?? '').split(':').filter(Boolean),
      layered: true,
    };
  if (r.type !== 'bind' && r.type !== 'rbind')
    throw new HoistError('HOIST_NOT_IMPLEMENTED', `cannot diff a ${r.type} mount without an upperdir`);
  if (lower.length === 0) return { dir: r.source, parents: [], layered: false };
  const l = lower[0]!;
  if (lower.length !== 1 || (l.type !== 'bind' && l.type !== 'rbind'))
    throw new HoistError(
      'HOIST_NOT_IMPLEMENTED',
      'diff of a full tree against a multi-layer overlay view is not supported',
    );
  return { dir: r.source, parents: [l.source], layered: false };
}

export function localDiffService(content: ContentStore): DiffService {
  return {
    async apply(ctx, layer, mounts, opts = {}) {
      const target = applyTargetOf(mounts);
      const blob = await content.reader(ctx, layer.digest);
      const r = await applyLayer(blob, {
        root: target.root,
        mediaType: layer.mediaType,
        whiteouts: target.whiteouts,
        parents: target.parents,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      });
      return { mediaType: MediaType.OciLayer, digest: r.diffId, size: r.size };
    },

    async compare(ctx, lower, upper, opts) {
      const dirs = layerDirsOf(lower, upper);
      const compression = layerCompressionOf(opts.mediaType);
      const tarHash = new DigestVerifier();
      const stages: Transform[] = [hashingStage(tarHash)];
      if (compression === 'gzip') stages.push(zlib().createGzip({ chunkSize: 512 * 1024 }));
      if (compression === 'zstd') stages.push(zlib().createZstdCompress({ chunkSize: 512 * 1024 }));
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      const piping = pipeline(diffDirs(dirs), stages[0]!, ...stages.slice(1), out);
      const ref = opts.ref || `diff-${randomBytes(8).toString('hex')}`;
      const [written] = await Promise.all([
        writeBlob(content, ctx, ref, out, undefined, { labels: { ...(opts.labels ?? {}) } }),
        piping,
      ]);
      const diffId = tarHash.digest() as Digest;
      await content.update(ctx, { digest: written.digest, labels: { [Labels.uncompressed]: diffId } }, [
        `labels.${Labels.uncompressed}`,
      ]);
      return { mediaType: opts.mediaType, digest: written.digest, size: written.size };
    },
  };
}
