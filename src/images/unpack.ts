// Unpack: apply an image's layers, in order, into committed snapshots named by chain ID, the way
// containerd's unpacker does. Each layer is extracted into a fresh active snapshot on top of the previous
// chain ID and committed under its own chain ID, so images that share a base share its snapshots. The
// image config then carries `containerd.io/gc.ref.snapshot.<snapshotter>` = top chain ID, which is what
// keeps the snapshots alive for GC; layer blobs get `containerd.io/uncompressed` = diffID.
//
// With `discardLayers` the manifest's `gc.ref.content.l.*` labels are dropped after a successful unpack,
// so the compressed layers become collectable (containerd's discard_unpacked_layers); the manifest and
// config stay, and so do the layers' distribution-source labels on the manifest, so save/push can fetch
// the layers again.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../client/backend.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type Manifest, parseImageConfig } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isAlreadyExists, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { applyLayer } from '../diff/apply.ts';
import { holdLease } from '../leases/keeper.ts';
import type { Snapshotter } from '../snapshots/types.ts';
import { applyRefLabels, manifestRefLabels } from './gc-labels.ts';
import { chainIds } from './rootfs.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, walkImage } from './walk.ts';

export type UnpackProgress = (event: {
  layer: Descriptor;
  index: number;
  count: number;
  state: 'unpacking' | 'unpacked' | 'exists';
}) => void;

export interface UnpackOptions {
  snapshotter: string;
  platforms: PlatformSelector;
  /** Drop the compressed layers' GC references after a successful unpack. */
  discardLayers?: boolean;
  /** Resolves when the blob is in the store (pull pipelines unpack behind its downloads). */
  ready?: (digest: Digest) => Promise<void>;
  progress?: UnpackProgress;
  onWarning?: (message: string) => void;
  /** Lease expiry for the unpack's own lease (active snapshots survive a crash until then). */
  leaseExpiryMs?: number;
  /**
   * Called under the unpack's lease when some selected manifest is not unpacked yet, before any layer is
   * read: fetch what the image lacks (layers discarded after an earlier unpack), or fail naming it.
   */
  fetchMissing?: (ctx: Context) => Promise<void>;
}

export interface UnpackResult {
  manifest: Digest;
  config: Digest;
  /** Top chain ID: the committed snapshot that is the image's root filesystem. */
  chainId: Digest;
  applied: number;
  existed: number;
}

export function snapshotterFor(backend: Backend, name: string): Snapshotter {
  const sn = backend.snapshotters?.get(name);
  if (!sn) {
    const have = [...(backend.snapshotters?.keys() ?? [])].join(', ') || 'none';
    throw new HoistError('HOIST_INVALID_ARGUMENT', `snapshotter "${name}" not available (have: ${have})`, {
      hint: 'choose one with --snapshotter or the `snapshotter` config key',
    });
  }
  return sn;
}

async function committed(sn: Snapshotter, ctx: Context, key: string): Promise<boolean> {
  try {
    const info = await sn.stat(ctx, key);
    return info.kind === 'committed';
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Commit the active `key` as `chain`; another unpack that committed the same chain first wins. */
async function commitChain(
  sn: Snapshotter,
  ctx: Context,
  chain: Digest,
  key: string,
): Promise<'applied' | 'exists'> {
  try {
    await sn.commit(ctx, chain, key, { labels: {} });
    return 'applied';
  } catch (err) {
    if (isAlreadyExists(err)) return 'exists';
    throw err;
  }
}

/** Apply one layer on top of `parent` and commit it as `chain`. */
async function applyOne(
  backend: Backend,
  sn: Snapshotter,
  ctx: Context,
  layer: Descriptor,
  diffId: Digest,
  chain: Digest,
  parent: Digest | undefined,
  opts: UnpackOptions,
): Promise<'applied' | 'exists'> {
  // containerd's key shape (`extract-<time>-<random> <chainID>`), so its tools read our snapshots alike.
  const key = `extract-${Date.now()}-${randomBytes(4).toString('hex')} ${chain}`;
  // Protected by the unpack's lease (ctx.lease) while it runs; collectable after a crash.
  const mounts = await sn.prepare(ctx, key, parent, { labels: {} });
  let ok = false;
  try {
    if (backend.applyLayer) {
      // Through a daemon: it applies into its own directories, as containerd's Diff.Apply does.
      const applied = await backend.applyLayer(ctx, layer, mounts);
      if (applied !== diffId)
        throw new HoistError(
          'HOIST_DIGEST_MISMATCH',
          `layer diffID mismatch: expected ${diffId}, got ${applied}; the unpacked snapshot is discarded`,
        );
      const r = await commitChain(sn, ctx, chain, key);
      ok = r === 'applied'; // 'exists': ours is redundant, removed below
      return r;
    }
    const target = await sn.applyTarget(ctx, key);
    const stream = await backend.content.reader(ctx, layer.digest);
    const applyOpts: Parameters<typeof applyLayer>[1] = {
      root: target.dir,
      mediaType: layer.mediaType,
      whiteouts: target.whiteouts,
      expectedDiffId: diffId,
      parents: target.parents,
    };
    if (ctx.signal) applyOpts.signal = ctx.signal;
    if (opts.onWarning) applyOpts.onWarning = opts.onWarning;
    // A blob damaged on disk fails gzip's/zstd's checksums or the diffID, as in containerd's applier,
    // which hashes only the uncompressed stream.
    await applyLayer(stream, applyOpts);
    const r = await commitChain(sn, ctx, chain, key);
    ok = r === 'applied'; // 'exists': ours is redundant, removed below
    return r;
  } finally {
    if (!ok) await sn.remove(ctx, key).catch(() => undefined);
  }
}

/** Unpack one platform manifest (pull calls this per manifest, pipelined behind its downloads). */
export async function unpackManifest(
  backend: Backend,
  sn: Snapshotter,
  ctx: Context,
  desc: Descriptor,
  manifest: Manifest,
  opts: UnpackOptions,
): Promise<UnpackResult> {
  await opts.ready?.(manifest.config.digest);
  const config = parseImageConfig(
    await backend.content.readBlob(ctx, manifest.config.digest, MAX_MANIFEST_BYTES),
    desc.digest,
  );
  const diffIds = (config.rootfs?.diff_ids ?? []) as Digest[];
  if (diffIds.length !== manifest.layers.length) {
    throw new HoistError(
      'HOIST_MALFORMED_MANIFEST',
      `manifest ${desc.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids; the image is malformed`,
    );
  }
  const chains = chainIds(diffIds);
  const result: UnpackResult = {
    manifest: desc.digest,
    config: manifest.config.digest,
    chainId: chains.at(-1) ?? ('' as Digest),
    applied: 0,
    existed: 0,
  };
  let parent: Digest | undefined;
  for (const [i, layer] of manifest.layers.entries()) {
    const chain = chains[i]!;
    const diffId = diffIds[i]!;
    const event = { layer, index: i, count: manifest.layers.length };
    if (await committed(sn, ctx, chain)) {
      result.existed++;
      opts.progress?.({ ...event, state: 'exists' });
    } else {
      await opts.ready?.(layer.digest);
      opts.progress?.({ ...event, state: 'unpacking' });
      const r = await applyOne(backend, sn, ctx, layer, diffId, chain, parent, opts).catch((err: unknown) => {
        throw inLayer(err, desc.digest, layer, i, manifest.layers.length);
      });
      if (r === 'applied') result.applied++;
      else result.existed++;
      opts.progress?.({ ...event, state: 'unpacked' });
    }
    await backend.content
      .update(ctx, { digest: layer.digest, labels: { [Labels.uncompressed]: diffId } }, [
        `labels.${Labels.uncompressed}`,
      ])
      .catch((err: unknown) => {
        // A discarded layer has no record to label; the snapshot is what matters.
        if (!isNotFound(err)) throw err;
      });
    parent = chain;
  }
  if (chains.length > 0) {
    const key = `${Labels.gcRefSnapshot}${sn.name}`;
    await backend.content.update(ctx, { digest: manifest.config.digest, labels: { [key]: result.chainId } }, [
      `labels.${key}`,
    ]);
  }
  if (opts.discardLayers) await discardLayerRefs(backend, ctx, desc.digest);
  // Layers fetched again for this unpack (after an earlier discard) are kept unless discard is asked for.
  else await applyRefLabels(backend.content, ctx, desc.digest, manifestRefLabels(manifest));
  return result;
}

/** Say which layer of which manifest an apply error is about (the applier only knows entry names). */
function inLayer(err: unknown, manifest: Digest, layer: Descriptor, i: number, n: number): unknown {
  if (!(err instanceof HoistError) || err.code === 'HOIST_CANCELLED') return err;
  return new HoistError(
    err.code,
    `unpacking layer ${i + 1}/${n} (${layer.digest}) of manifest ${manifest}: ${err.message}`,
    { cause: err, ...(err.hint !== undefined ? { hint: err.hint } : {}) },
  );
}

/** Drop `gc.ref.content.l.*` from a manifest so its compressed layers become collectable. */
export async function discardLayerRefs(backend: Backend, ctx: Context, manifest: Digest): Promise<void> {
  const info = await backend.content.info(ctx, manifest);
  const prefix = `${Labels.gcRefContent}.l.`;
  const drop = Object.keys(info.labels).filter((k) => k.startsWith(prefix));
  if (drop.length === 0) return;
  const labels: Record<string, string> = {};
  for (const k of drop) labels[k] = '';
  await backend.content.update(
    ctx,
    { digest: manifest, labels },
    drop.map((k) => `labels.${k}`),
  );
}

/**
 * Unpack the image under `target` for the selected platforms into `opts.snapshotter`. Runs under its own
 * lease so that active snapshots and half-done chains are protected while it runs and collectable after
 * a crash; the committed chain is protected by the config's snapshot label once the lease goes.
 */
export async function unpackImage(
  backend: Backend,
  ctx: Context,
  target: Descriptor,
  opts: UnpackOptions,
): Promise<UnpackResult[]> {
  const sn = snapshotterFor(backend, opts.snapshotter);
  const lease = await holdLease(backend.leases, ctx, {
    purpose: 'unpack',
    ref: target.digest,
    expiryMs: opts.leaseExpiryMs ?? 24 * 3600_000,
  });
  const lctx: Context = { ...ctx, lease: lease.id };
  try {
    const walk = await walkImage(backend.content, lctx, target, opts.platforms);
    if (walk.manifests.length === 0) {
      throw new HoistError(
        'HOIST_NOT_FOUND',
        `image ${target.digest}: no manifest for the platform in the store`,
        {
          hint: 'pull the image (for this platform) first',
        },
      );
    }
    if (opts.fetchMissing) {
      const pending = await Promise.all(
        walk.manifests.map(async (m) => !(await isUnpacked(backend, lctx, sn, m.manifest.config.digest))),
      );
      if (pending.some(Boolean)) await opts.fetchMissing(lctx);
    }
    const results: UnpackResult[] = [];
    for (const m of walk.manifests) {
      results.push(await unpackManifest(backend, sn, lctx, m.desc, m.manifest, opts));
    }
    await lease.release();
    return results;
  } catch (err) {
    await lease.release();
    throw err;
  }
}

/** Is the image's top snapshot committed in this snapshotter? */
export async function isUnpacked(
  backend: Backend,
  ctx: Context,
  sn: Snapshotter,
  config: Digest,
): Promise<boolean> {
  try {
    const cfg = parseImageConfig(await backend.content.readBlob(ctx, config, MAX_MANIFEST_BYTES));
    const top = chainIds((cfg.rootfs?.diff_ids ?? []) as Digest[]).at(-1);
    return top !== undefined && (await committed(sn, ctx, top));
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
