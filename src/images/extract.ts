// `hoist image unpack NAME --to DIR`: the image's root filesystem as a plain directory (like
// `umoci unpack`), no snapshots and no mounts. Layers are applied in order into one directory with
// whiteouts as deletions. Works without root: what needs root (devices, ownership) is skipped, with a
// warning from the applier.
import { mkdir, readdir, rm } from 'node:fs/promises';
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, parseImageConfig } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { applyLayer } from '../diff/apply.ts';
import { checkContent } from './missing.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, walkImage } from './walk.ts';

export interface ExtractOptions {
  platforms: PlatformSelector;
  onWarning?: (message: string) => void;
  onLayer?: (layer: Descriptor, index: number, count: number) => void;
}

export interface ExtractResult {
  manifest: Digest;
  layers: number;
  /** Sum of the layers' uncompressed tar bytes. */
  bytes: number;
}

async function ensureEmptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0) {
    throw new HoistError('HOIST_INVALID_ARGUMENT', `${dir} is not empty`, {
      hint: 'unpack into a new or empty directory',
    });
  }
}

export async function extractImage(
  backend: Backend,
  ctx: Context,
  target: Descriptor,
  dir: string,
  opts: ExtractOptions,
): Promise<ExtractResult> {
  const walk = await walkImage(backend.content, ctx, target, opts.platforms);
  const m = walk.manifests[0];
  if (!m) {
    throw new HoistError(
      'HOIST_NOT_FOUND',
      `image ${target.digest}: no manifest for the platform in the store`,
      {
        hint: 'choose another with --platform, or pull this platform first',
      },
    );
  }
  if (walk.manifests.length > 1) {
    throw new HoistError(
      'HOIST_INVALID_ARGUMENT',
      `image ${target.digest} has several platforms in the store`,
      {
        hint: 'choose one with --platform',
      },
    );
  }
  const presence = await checkContent(backend.content, ctx, m.desc, opts.platforms);
  if (presence.missing.length > 0) {
    throw new HoistError(
      'HOIST_NOT_FOUND',
      `image ${target.digest} is incomplete: missing ${presence.missing.map((d) => d.digest).join(', ')}`,
      { hint: 'pull the image again to fetch the missing blobs (`hoist image check -v` lists them)' },
    );
  }
  const config = parseImageConfig(
    await backend.content.readBlob(ctx, m.manifest.config.digest, MAX_MANIFEST_BYTES),
    m.desc.digest,
  );
  const diffIds = config.rootfs?.diff_ids ?? [];
  await ensureEmptyDir(dir);
  const result: ExtractResult = { manifest: m.desc.digest, layers: 0, bytes: 0 };
  try {
    for (const [i, layer] of m.manifest.layers.entries()) {
      opts.onLayer?.(layer, i, m.manifest.layers.length);
      const stream = await backend.content.reader(ctx, layer.digest);
      const applyOpts: Parameters<typeof applyLayer>[1] = {
        root: dir,
        mediaType: layer.mediaType,
        whiteouts: 'delete',
      };
      const diffId = diffIds[i];
      if (diffId) applyOpts.expectedDiffId = diffId;
      if (ctx.signal) applyOpts.signal = ctx.signal;
      if (opts.onWarning) applyOpts.onWarning = opts.onWarning;
      const r = await applyLayer(stream, applyOpts);
      result.layers++;
      result.bytes += r.size;
    }
  } catch (err) {
    // A half-applied tree is not the image: do not leave it looking like one.
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  return result;
}
