// `image convert`: rebuild an image with re-encoded layers (gzip, zstd, uncompressed) and/or OCI media
// types. Like containerd's converter it walks index → manifests → config and layers and writes new
// documents bottom-up; unlike it, it first makes sure every blob is there (fetching from the image's
// recorded sources, or rebuilding a layer from its unpacked snapshot when asked), so it never fails
// halfway, and it runs under one lease with GC labels on every new blob before anything refers to it:
// a GC running at the same time can collect neither the source's blobs nor the new ones. The name moves
// to the new target in one update, so an in-place conversion never leaves the name pointing nowhere.
import type { Readable } from 'node:stream';
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type Manifest, parseImageConfig } from '../core/descriptor.ts';
import { type Digest, sha256 } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Limiter } from '../core/limiter.ts';
import { type Compression, isIndex } from '../core/mediatypes.ts';
import { applyRefLabels, indexRefLabels, manifestRefLabels } from '../images/gc-labels.ts';
import { checkContent } from '../images/missing.ts';
import { upsertImage } from '../images/pull.ts';
import { chainIds } from '../images/rootfs.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, readNode, selectManifests } from '../images/walk.ts';
import { holdLease } from '../leases/keeper.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { convertLayer, type LayerTarget } from './layer.ts';
import {
  configMediaType,
  formatOf,
  type ImageFormat,
  indexMediaType,
  manifestMediaType,
} from './media-types.ts';

export interface ConvertOptions {
  compression?: Compression;
  zstdLevel?: number;
  /** Docker media types → OCI. */
  oci?: boolean;
  platforms: PlatformSelector;
  /** Make the image whole first (fetch from its sources); throws naming what cannot be had. */
  fetchMissing?: (ctx: Context) => Promise<void>;
  /**
   * For a layer that is missing and cannot be fetched: its uncompressed tar rebuilt from the unpacked
   * snapshot (chain ID `chain`, parent `parent`), or undefined when no snapshotter has it.
   */
  rebuildLayer?: (
    ctx: Context,
    chain: Digest,
    parent: Digest | undefined,
  ) => Promise<(() => Promise<Readable>) | undefined>;
  /** Parallel layer conversions (default 2: one per core). */
  concurrency?: number;
  onLayer?: (event: {
    layer: Descriptor;
    state: 'converting' | 'converted' | 'kept' | 'rebuilt';
    result?: Descriptor;
  }) => void;
}

export interface ConvertResult {
  target: Descriptor;
  reencoded: number;
  kept: number;
  /** Layers regenerated from snapshots: their diffIDs (old → new). */
  rebuilt: { layer: Digest; oldDiffId: Digest; newDiffId: Digest }[];
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

async function writeDocument(
  backend: Backend,
  ctx: Context,
  mediaType: string,
  bytes: Buffer,
  labels: Record<string, string>,
): Promise<Descriptor> {
  const digest = sha256(bytes);
  const r = await writeBlob(
    backend.content,
    ctx,
    `convert-doc-${digest}`,
    (async function* () {
      yield bytes;
    })(),
    { digest, size: bytes.length },
    { labels },
  );
  // An existing blob keeps its labels; make sure the GC references are there before anything points here.
  if (r.existed) await applyRefLabels(backend.content, ctx, r.digest, labels);
  return { mediaType, digest: r.digest, size: r.size };
}

export async function convertImage(
  backend: Backend,
  ctx: Context,
  source: Descriptor,
  dst: string,
  opts: ConvertOptions,
): Promise<ConvertResult> {
  const lease = await holdLease(backend.leases, ctx, { purpose: 'convert', ref: dst, expiryMs: 3600_000 });
  const lctx: Context = { ...ctx, lease: lease.id };
  try {
    const result = await convertUnderLease(backend, lctx, source, opts);
    // One update: the name moves from the old target to the new one, never to nothing.
    await upsertImage(backend, ctx, { name: dst, target: result.target, labels: {} });
    await lease.release();
    return result;
  } catch (err) {
    await lease.release();
    throw err;
  }
}

async function convertUnderLease(
  backend: Backend,
  ctx: Context,
  source: Descriptor,
  opts: ConvertOptions,
): Promise<ConvertResult> {
  // Everything the conversion will read is checked (and fetched) before anything is written.
  let presence = await checkContent(backend.content, ctx, source, opts.platforms);
  let fetchError: unknown;
  if (presence.missing.length > 0 && opts.fetchMissing) {
    try {
      await opts.fetchMissing(ctx);
    } catch (err) {
      fetchError = err;
    }
    presence = await checkContent(backend.content, ctx, source, opts.platforms);
  }
  const missing = new Set<string>(presence.missing.map((d) => d.digest));
  const rebuilds = new Map<string, () => Promise<Readable>>();
  if (missing.size > 0) {
    const layersOnly = presence.missing.every(
      (d) =>
        !isIndex(d.mediaType) &&
        !presence.walk.manifests.some(
          (m) => m.desc.digest === d.digest || m.manifest.config.digest === d.digest,
        ),
    );
    if (opts.rebuildLayer && layersOnly && presence.walk.missingNodes.length === 0) {
      for (const m of presence.walk.manifests) {
        const cfg = parseImageConfig(
          await backend.content.readBlob(ctx, m.manifest.config.digest, MAX_MANIFEST_BYTES),
        );
        const chains = chainIds((cfg.rootfs?.diff_ids ?? []) as Digest[]);
        for (const [i, l] of m.manifest.layers.entries()) {
          if (!missing.has(l.digest) || rebuilds.has(l.digest)) continue;
          const rebuild = chains[i] ? await opts.rebuildLayer(ctx, chains[i]!, chains[i - 1]) : undefined;
          if (rebuild) rebuilds.set(l.digest, rebuild);
        }
      }
    }
    const unrecoverable = presence.missing.filter((d) => !rebuilds.has(d.digest));
    if (unrecoverable.length > 0) {
      if (fetchError) throw fetchError;
      const sources = [...presence.sources].flatMap(([h, repos]) => [...repos].map((r) => `${h}/${r}`));
      throw new HoistError(
        'HOIST_NOT_FOUND',
        `cannot convert ${source.digest}: ${unrecoverable.length} blob(s) missing from the store: ${unrecoverable.map((d) => d.digest).join(', ')}; sources tried: ${sources.join(', ') || 'none recorded'}`,
        {
          hint: opts.rebuildLayer
            ? 'no unpacked snapshot has these layers either; pull the image again'
            : 'fetch them (drop --no-fetch, check the registry), or use --rebuild-from-snapshots if the image is unpacked',
        },
      );
    }
  }
  const target: LayerTarget = { compression: opts.compression, format: 'oci' };
  const layers = new Limiter(Math.max(1, opts.concurrency ?? 2));
  const limit = <T>(fn: () => Promise<T>): Promise<T> => layers.run(fn, ctx.signal);
  const out: ConvertResult = { target: source, reencoded: 0, kept: 0, rebuilt: [] };
  const layerCache = new Map<string, Promise<{ desc: Descriptor; diffId: Digest }>>();

  const formatFor = (mt: string): ImageFormat =>
    opts.oci || opts.compression === 'zstd' ? 'oci' : formatOf(mt);

  const convertManifest = async (desc: Descriptor, manifest: Manifest): Promise<Descriptor> => {
    const format = formatFor(manifest.mediaType);
    const layerTarget: LayerTarget = {
      ...target,
      format,
      ...(opts.zstdLevel !== undefined ? { zstdLevel: opts.zstdLevel } : {}),
    };
    const cfgBytes = await backend.content.readBlob(ctx, manifest.config.digest, MAX_MANIFEST_BYTES);
    const cfg = parseImageConfig(cfgBytes, desc.digest);
    const diffIds = (cfg.rootfs?.diff_ids ?? []) as Digest[];
    if (diffIds.length !== manifest.layers.length)
      throw new HoistError(
        'HOIST_MALFORMED_MANIFEST',
        `manifest ${desc.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`,
      );
    const layers = await Promise.all(
      manifest.layers.map((l, i) => {
        const key = `${l.digest} ${format}`;
        let job = layerCache.get(key);
        if (!job) {
          const rebuild = rebuilds.get(l.digest);
          job = limit(async () => {
            opts.onLayer?.({ layer: l, state: 'converting' });
            const r = await convertLayer(
              backend.content,
              ctx,
              l,
              rebuild ? undefined : diffIds[i],
              layerTarget,
              rebuild,
            );
            if (rebuild) out.rebuilt.push({ layer: l.digest, oldDiffId: diffIds[i]!, newDiffId: r.diffId });
            if (r.reencoded) out.reencoded++;
            else out.kept++;
            opts.onLayer?.({
              layer: l,
              state: rebuild ? 'rebuilt' : r.reencoded ? 'converted' : 'kept',
              result: r.desc,
            });
            return r;
          });
          layerCache.set(key, job);
        }
        return job;
      }),
    );
    // The config changes only when a rebuilt layer changed a diffID (or its media type changes).
    const newDiffIds = layers.map((l) => l.diffId);
    let configDesc: Descriptor;
    const cfgMediaType = configMediaType(format);
    if (newDiffIds.every((d, i) => d === diffIds[i])) {
      configDesc = { ...manifest.config, mediaType: cfgMediaType };
    } else {
      const raw = JSON.parse(cfgBytes.toString('utf8')) as Record<string, unknown>;
      raw.rootfs = { type: 'layers', diff_ids: newDiffIds };
      configDesc = await writeDocument(backend, ctx, cfgMediaType, json(raw), {});
    }
    const raw = JSON.parse(
      (await backend.content.readBlob(ctx, desc.digest, MAX_MANIFEST_BYTES)).toString('utf8'),
    ) as Record<string, unknown>;
    const newManifest: Manifest & Record<string, unknown> = {
      ...raw,
      schemaVersion: 2,
      mediaType: manifestMediaType(format),
      config: configDesc,
      layers: layers.map((l) => l.desc),
    };
    const written = await writeDocument(
      backend,
      ctx,
      newManifest.mediaType,
      json(newManifest),
      manifestRefLabels(newManifest),
    );
    const d: Descriptor = { ...written };
    if (desc.platform) d.platform = desc.platform;
    if (desc.annotations) d.annotations = desc.annotations;
    return d;
  };

  const convertNode = async (desc: Descriptor): Promise<Descriptor> => {
    const node = await readNode(backend.content, ctx, desc);
    if (node.kind === 'manifest') return convertManifest(desc, node.manifest!);
    const children = selectManifests(node.index!, opts.platforms);
    const converted = await Promise.all(children.map((c) => convertNode(c)));
    const format = formatFor(node.index!.mediaType);
    const raw = JSON.parse(
      (await backend.content.readBlob(ctx, desc.digest, MAX_MANIFEST_BYTES)).toString('utf8'),
    ) as Record<string, unknown>;
    const index = { ...raw, schemaVersion: 2, mediaType: indexMediaType(format), manifests: converted };
    const written = await writeDocument(
      backend,
      ctx,
      index.mediaType,
      json(index),
      indexRefLabels(converted),
    );
    return { ...written, ...(desc.annotations ? { annotations: desc.annotations } : {}) };
  };

  out.target = await convertNode(source);
  return out;
}
