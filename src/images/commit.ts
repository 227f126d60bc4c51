// `hoist commit`: a new image from the changes made in an active snapshot prepared from an image. The
// snapshot's layer (src/diff/differ.ts) is gzipped into the content store while its diffID and digest
// are computed; the base image's config gets the new diff_id and a history entry, its manifest the new
// layer; everything is written under a lease with GC labels set before anything refers to it, and the
// new manifest keeps the base manifest's distribution sources, so the base layers can be fetched again
// when they are missing (pulled with discard_unpacked_layers). The active snapshot is then committed as
// the new chain ID, so the new image is already unpacked.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../api/backend.ts';
import type { Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type Manifest, parseImageConfig } from '../core/descriptor.ts';
import { type Digest, sha256 } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { isIndex, MediaType } from '../core/mediatypes.ts';
import { holdLease } from '../leases/keeper.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { applyRefLabels, manifestRefLabels } from './gc-labels.ts';
import { upsertImage } from './pull.ts';
import { chainIds } from './rootfs.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, readNode, selectManifests } from './walk.ts';

/** Labels `snapshot prepare --from` puts on the active snapshot: which image and manifest it starts from. */
export const BaseLabels = {
  image: 'hoist.io/base-image',
  manifest: 'hoist.io/base-manifest',
} as const;

export interface CommitOptions {
  message?: string;
  author?: string;
  /** Keep the active snapshot (do not turn it into the new image's committed layer). */
  keepActive?: boolean;
}

export interface CommitResult {
  target: Descriptor;
  layer: Descriptor;
  diffId: Digest;
  chainId: Digest;
}

/** The single-platform manifest of `target` for `sel` (an index picks one). */
export async function manifestFor(
  backend: Backend,
  ctx: Context,
  target: Descriptor,
  sel: PlatformSelector,
): Promise<Descriptor> {
  if (!isIndex(target.mediaType)) return target;
  const node = await readNode(backend.content, ctx, target);
  const m = selectManifests(node.index!, sel)[0];
  if (!m) throw new HoistError('HOIST_NOT_FOUND', `image ${target.digest} has no manifest for this platform`);
  return m;
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

async function writeDoc(
  backend: Backend,
  ctx: Context,
  bytes: Buffer,
  labels: Record<string, string>,
): Promise<{ digest: Digest; size: number }> {
  const digest = sha256(bytes);
  const r = await writeBlob(
    backend.content,
    ctx,
    `commit-doc-${digest}`,
    (async function* () {
      yield bytes;
    })(),
    { digest, size: bytes.length },
    { labels },
  );
  if (r.existed && Object.keys(labels).length > 0) await applyRefLabels(backend.content, ctx, digest, labels);
  return { digest, size: bytes.length };
}

interface StoredLayer {
  digest: Digest;
  size: number;
  diffId: Digest;
}

/**
 * The layer between a view of the parent and the active snapshot, computed and stored by the backend's
 * diff port (in process for the embedded store, Diff.Diff on a daemon).
 */
async function snapshotLayer(
  backend: Backend,
  sn: Snapshotter,
  ctx: Context,
  key: string,
  parentChain: Digest | undefined,
): Promise<StoredLayer> {
  const viewKey = `commit-parent-${randomBytes(6).toString('hex')}`;
  const left = parentChain ? await sn.view(ctx, viewKey, parentChain, { labels: {} }) : [];
  try {
    const right = await sn.mounts(ctx, key);
    const d = await backend.diff.compare(ctx, left, right, { mediaType: MediaType.OciLayerGzip });
    const diffId = (await backend.content.info(ctx, d.digest)).labels[Labels.uncompressed] as
      | Digest
      | undefined;
    if (!diffId)
      throw new HoistError('HOIST_INTERNAL', `layer ${d.digest} was stored without its diffID label`);
    return { digest: d.digest, size: d.size, diffId };
  } finally {
    if (parentChain) await sn.remove(ctx, viewKey).catch(() => undefined);
  }
}

export async function commitSnapshot(
  backend: Backend,
  ctx: Context,
  sn: Snapshotter,
  key: string,
  name: string,
  opts: CommitOptions = {},
): Promise<CommitResult> {
  const info = await sn.stat(ctx, key);
  if (info.kind !== 'active')
    throw new HoistError(
      'HOIST_FAILED_PRECONDITION',
      `snapshot ${key} is ${info.kind}, not active: only a prepared snapshot can be committed`,
    );
  const manifestDigest = info.labels[BaseLabels.manifest] as Digest | undefined;
  if (!manifestDigest)
    throw new HoistError('HOIST_FAILED_PRECONDITION', `snapshot ${key} was not prepared from an image`, {
      hint: 'prepare it with `hoist snapshot prepare KEY --from IMAGE`',
    });
  const lease = await holdLease(backend.leases, ctx, { purpose: 'commit', ref: name, expiryMs: 3600_000 });
  const lctx: Context = { ...ctx, lease: lease.id };
  try {
    const manifestBytes = await backend.content.readBlob(lctx, manifestDigest, MAX_MANIFEST_BYTES);
    const rawManifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest & Record<string, unknown>;
    const cfgBytes = await backend.content.readBlob(lctx, rawManifest.config.digest, MAX_MANIFEST_BYTES);
    const cfg = parseImageConfig(cfgBytes, manifestDigest);
    const diffIds = (cfg.rootfs?.diff_ids ?? []) as Digest[];
    const parentChain = chainIds(diffIds).at(-1);
    if ((info.parent ?? undefined) !== parentChain)
      throw new HoistError(
        'HOIST_FAILED_PRECONDITION',
        `snapshot ${key} is not on top of its base image's layers`,
      );

    const {
      digest: layerDigest,
      size: layerSize,
      diffId,
    } = await snapshotLayer(backend, sn, lctx, key, parentChain);
    const docker = rawManifest.mediaType === MediaType.DockerManifest;
    const layer: Descriptor = {
      mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip,
      digest: layerDigest,
      size: layerSize,
    };

    // Config: the base config plus the new diff_id and a history entry.
    const now = new Date().toISOString();
    const rawConfig = JSON.parse(cfgBytes.toString('utf8')) as Record<string, unknown>;
    rawConfig.created = now;
    rawConfig.rootfs = { type: 'layers', diff_ids: [...diffIds, diffId] };
    const history = Array.isArray(rawConfig.history) ? [...rawConfig.history] : [];
    history.push({
      created: now,
      created_by: 'hoist commit',
      ...(opts.message ? { comment: opts.message } : {}),
      ...(opts.author ? { author: opts.author } : {}),
    });
    rawConfig.history = history;
    if (opts.author) rawConfig.author = opts.author;
    const config = await writeDoc(backend, lctx, json(rawConfig), {});

    // Manifest: base layers + the new one; the base manifest's distribution sources come along.
    const baseInfo = await backend.content.info(lctx, manifestDigest);
    const sources = Object.fromEntries(
      Object.entries(baseInfo.labels).filter(([k]) => k.startsWith(Labels.distributionSource)),
    );
    const manifest = {
      ...rawManifest,
      config: { ...rawManifest.config, digest: config.digest, size: config.size },
      layers: [...rawManifest.layers, layer],
    };
    const m = await writeDoc(backend, lctx, json(manifest), { ...manifestRefLabels(manifest), ...sources });
    const target: Descriptor = { mediaType: rawManifest.mediaType, digest: m.digest, size: m.size };

    // The snapshot becomes the new image's top layer: already unpacked, protected by the config label.
    const chainId = chainIds([...diffIds, diffId]).at(-1)!;
    if (!opts.keepActive) {
      try {
        await sn.commit(lctx, chainId, key, { labels: {} });
      } catch (err) {
        if (!(err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS')) throw err;
        await sn.remove(lctx, key); // the same changes were committed before: that snapshot serves
      }
      const label = `${Labels.gcRefSnapshot}${sn.name}`;
      await backend.content.update(lctx, { digest: config.digest, labels: { [label]: chainId } }, [
        `labels.${label}`,
      ]);
    }
    await upsertImage(backend, ctx, { name, target, labels: {} });
    await lease.release();
    return { target, layer, diffId, chainId };
  } catch (err) {
    await lease.release();
    throw err;
  }
}
