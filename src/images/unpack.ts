// Unpack: apply an image's layers into committed snapshots named by chain ID, the way containerd's
// unpacker does. Each layer is extracted into a fresh active snapshot on top of the previous chain ID (or,
// on overlayfs, ahead of it and rebased onto it: unpack-layer.ts) and committed, in layer order, under its
// own chain ID, so images that share a base share its snapshots. The
// image config then carries `containerd.io/gc.ref.snapshot.<snapshotter>` = top chain ID, which is what
// keeps the snapshots alive for GC; layer blobs get `containerd.io/uncompressed` = diffID.
//
// With `discardLayers` the manifest's `gc.ref.content.l.*` labels are dropped after a successful unpack,
// so the compressed layers become collectable (containerd's discard_unpacked_layers); the manifest and
// config stay, and so do the layers' distribution-source labels on the manifest, so save/push can fetch
// the layers again.
import type { Backend } from '../api/backend.ts';
import { hasDirectories, type Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type Manifest, parseImageConfig } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { holdLease } from '../leases/keeper.ts';
import { applyRefLabels, manifestRefLabels } from './gc-labels.ts';
import { layerSize } from './layer-size.ts';
import { chainIds } from './rootfs.ts';
import { applyAhead, applyOnParent, type LayerOutcome } from './unpack-layer.ts';
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

/**
 * Is `chain` committed already (another image's layers)? Then the unpack's lease takes it too: until the
 * layer above is prepared on it, another client may remove that image and GC take the chain ("parent
 * snapshot … does not exist"). Stat again once it is held: a collection that ran in between left nothing
 * to hold, and the layer is applied as if it had never been there.
 */
async function heldIfCommitted(backend: Backend, sn: Snapshotter, ctx: Context, chain: Digest) {
  if (!(await committed(sn, ctx, chain))) return false;
  if (ctx.lease === undefined) return true;
  await backend.leases.addResource(ctx, ctx.lease, { type: `snapshots/${sn.name}`, id: chain });
  return committed(sn, ctx, chain);
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
  await unpackLayers({ backend, sn, ctx, desc, manifest, diffIds, chains, opts, result });
  if (chains.length > 0) {
    const key = `${Labels.gcRefSnapshot}${sn.name}`;
    const labels: Record<string, string> = { [key]: result.chainId };
    const sizes = await Promise.all(chains.map((c) => layerSize(sn, ctx, c, { record: true })));
    if (sizes.every((n) => n !== undefined))
      labels[Labels.unpackedSize] = String(sizes.reduce((a, n) => a + n, 0));
    await backend.content.update(
      ctx,
      { digest: manifest.config.digest, labels },
      Object.keys(labels).map((k) => `labels.${k}`),
    );
  }
  if (opts.discardLayers) await discardLayerRefs(backend, ctx, desc.digest);
  // Layers fetched again for this unpack (after an earlier discard) are kept unless discard is asked for.
  else await applyRefLabels(backend.content, ctx, desc.digest, manifestRefLabels(manifest));
  return result;
}

interface LayersJob {
  backend: Backend;
  sn: Snapshotter;
  ctx: Context;
  desc: Descriptor;
  manifest: Manifest;
  diffIds: Digest[];
  chains: Digest[];
  opts: UnpackOptions;
  result: UnpackResult;
}

/**
 * Apply the layers, committing them in order. Each layer starts as soon as its blob is in the store:
 * with a snapshotter that can rebase (overlayfs) and the local applier, a layer whose parent is not
 * committed yet is applied ahead of it in its own directory (unpack-layer.ts), so layers apply in
 * parallel (bounded by max_concurrent_unpacks, the applier's worker pool); otherwise it waits for its
 * parent. One failure cancels the layers in flight; all have stopped when this returns.
 */
async function unpackLayers(j: LayersJob): Promise<void> {
  const { backend, sn, manifest, opts, result } = j;
  // Applying ahead needs the snapshots' directories (the embedded overlayfs), not only a rebase.
  const ahead = sn.rebase && hasDirectories(sn) ? sn : undefined;
  const stop = new AbortController();
  const outer = j.ctx.signal;
  const onOuterAbort = () => stop.abort(outer?.reason);
  if (outer?.aborted) onOuterAbort();
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const ctx: Context = { ...j.ctx, signal: stop.signal };
  const count = manifest.layers.length;
  const done: boolean[] = [];
  let below: Promise<unknown> = Promise.resolve();
  const jobs = manifest.layers.map((layer, i) => {
    const chain = j.chains[i]!;
    const step = {
      backend,
      sn,
      ctx,
      layer,
      diffId: j.diffIds[i]!,
      chain,
      parent: i === 0 ? undefined : j.chains[i - 1],
      onWarning: opts.onWarning,
    };
    const parentDone = below;
    const event = { layer, index: i, count };
    const job = (async () => {
      if (await heldIfCommitted(backend, sn, ctx, chain)) {
        result.existed++;
        opts.progress?.({ ...event, state: 'exists' });
      } else {
        await opts.ready?.(layer.digest);
        opts.progress?.({ ...event, state: 'unpacking' });
        let r: LayerOutcome;
        if (!ahead || i === 0 || done[i - 1]) {
          await parentDone;
          r = await applyOnParent(step);
        } else {
          const early = await applyAhead({ ...step, sn: ahead });
          await parentDone.catch(async (err: unknown) => {
            await early.discard();
            throw err;
          });
          r = await early.finish();
        }
        if (r === 'applied') result.applied++;
        else result.existed++;
        opts.progress?.({ ...event, state: 'unpacked' });
      }
      await parentDone; // a committed chain is only reported after the chains below it
      await backend.content
        .update(ctx, { digest: layer.digest, labels: { [Labels.uncompressed]: step.diffId } }, [
          `labels.${Labels.uncompressed}`,
        ])
        .catch((err: unknown) => {
          // A discarded layer has no record to label; the snapshot is what matters.
          if (!isNotFound(err)) throw err;
        });
      done[i] = true;
    })().catch((err: unknown) => {
      stop.abort(err);
      throw inLayer(err, j.desc.digest, layer, i, count);
    });
    below = job;
    return job;
  });
  try {
    const settled = await Promise.allSettled(jobs);
    const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    // The layer that failed explains more than the cancellations it caused in the others.
    const cause = failures.find((e) => !(e instanceof HoistError && e.code === 'HOIST_CANCELLED'));
    if (cause !== undefined || failures.length > 0) throw cause ?? failures[0];
  } finally {
    outer?.removeEventListener('abort', onOuterAbort);
  }
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
