// Pull: resolve, fetch index → manifests → config and layers under a lease, label content for GC,
// then create (or move) the image's names and release the lease. Interrupted pulls keep their data
// under the lease so the same pull resumes; the lease's owner tells prune whether it is abandoned.
import type { Backend } from '../api/backend.ts';
import type { ImageRecord } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type Manifest, parseManifestOrIndex } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { Limiter } from '../core/limiter.ts';
import type { Logger } from '../core/log.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { formatReference, parseDockerRef, type Reference } from '../core/reference.ts';
import { dropSupersededLeases, holdLease } from '../leases/keeper.ts';
import type { Resolver } from '../remotes/types.ts';
import { CRI_NAMESPACE, criLabels, criNames } from './cri-names.ts';
import { fetchBlob, type ProgressFn, refKey } from './fetch-blob.ts';
import { applyRefLabels, indexRefLabels, manifestRefLabels } from './gc-labels.ts';
import { snapshotterFor, type UnpackResult, unpackManifest } from './unpack.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, selectManifests } from './walk.ts';

export interface PullUnpackOptions {
  snapshotter: string;
  /** Which manifests to unpack (pull may fetch more platforms than it unpacks). */
  platforms: PlatformSelector;
  discardLayers: boolean;
  onWarning?: (message: string) => void;
}

export interface PullOptions {
  platforms: PlatformSelector;
  /** Milliseconds the pull's lease outlives its process (config `pull_lease_expiry`). */
  leaseExpiryMs: number;
  concurrency?: number;
  progress?: ProgressFn;
  /** Extra labels on every image record. */
  labels?: Record<string, string>;
  /** Create the CRI's three names (default: when the namespace is k8s.io). */
  criNames?: boolean;
  pinned?: boolean;
  /** Unpack each selected manifest as its layers arrive (pipelined with the downloads). */
  unpack?: PullUnpackOptions;
  /** The pull's lease decisions, at debug level. */
  log?: Logger;
}

export interface PullResult {
  ref: Reference;
  name: string;
  target: Descriptor;
  names: string[];
  /** Config digests of the platform manifests fetched. */
  configs: Digest[];
  fetched: number;
  existed: number;
  unpacked: UnpackResult[];
}

/** Settles when a blob is in the store; unpack waits on these instead of on the whole pull. */
class Arrivals {
  #waiting = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
  #get(digest: string) {
    let w = this.#waiting.get(digest);
    if (!w) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined); // a failure nobody waits for is reported by the fetch itself
      w = { promise, resolve, reject };
      this.#waiting.set(digest, w);
    }
    return w;
  }
  wait(digest: string): Promise<void> {
    return this.#get(digest).promise;
  }
  arrived(digest: string): void {
    this.#get(digest).resolve();
  }
  failed(digest: string, err: unknown): void {
    this.#get(digest).reject(err);
  }
}

function sourceLabel(ref: Reference): Record<string, string> {
  return { [`${Labels.distributionSource}${ref.domain}`]: ref.path };
}

export async function pullImage(
  backend: Backend,
  resolver: Resolver,
  ctx: Context,
  input: string,
  opts: PullOptions,
): Promise<PullResult> {
  const ref = parseDockerRef(input);
  const refString = formatReference(ref);
  const resolved = await resolver.resolve(ref, ctx.signal ? { signal: ctx.signal } : undefined);
  const target = resolved.descriptor;
  if (!isIndex(target.mediaType) && !isManifest(target.mediaType)) {
    parseManifestOrIndex('{}', target.mediaType, refString); // throws the schema1/unsupported message
  }
  const lease = await holdLease(backend.leases, ctx, {
    purpose: 'pull',
    ref: refString,
    expiryMs: opts.leaseExpiryMs,
  });
  opts.log?.debug('pull lease held: what is fetched is safe from GC until the image is named', {
    lease: lease.id,
    ref: refString,
    expiry_ms: opts.leaseExpiryMs,
  });
  // Our own abort, so a failed unpack stops the downloads (and the reverse) instead of leaving them running.
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(ctx.signal?.reason);
  if (ctx.signal?.aborted) onOuterAbort();
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const lctx: Context = { ...ctx, lease: lease.id, signal: inner.signal };
  const fetcher = resolver.fetcher(ref);
  const arrivals = new Arrivals();
  const unpacks: Promise<UnpackResult>[] = [];
  const sn = opts.unpack ? snapshotterFor(backend, opts.unpack.snapshotter) : undefined;
  // The resolver holds a download slot only while bytes flow (max_concurrent_downloads); a blob also
  // spends time in its commit (verify, fsync, record), so twice as many blobs may be in flight here, and
  // the next download starts while the last one commits.
  const inFlight = new Limiter(2 * Math.max(1, opts.concurrency ?? 3));
  const limit = <T>(fn: () => Promise<T>): Promise<T> => inFlight.run(fn, lctx.signal);
  const source = sourceLabel(ref);
  const configs: Digest[] = [];
  const counts = { fetched: 0, existed: 0 };
  const count = (r: 'exists' | 'done') => (r === 'done' ? counts.fetched++ : counts.existed++);
  const fetchOne = async (d: Descriptor): Promise<void> => {
    try {
      count(await fetchBlob(backend.content, lctx, fetcher, d, source, opts.progress));
      arrivals.arrived(d.digest);
    } catch (err) {
      arrivals.failed(d.digest, err);
      throw err;
    }
  };
  const startUnpack = (desc: Descriptor, manifest: Manifest): void => {
    if (!opts.unpack || !sn) return;
    const u = opts.unpack;
    const job = unpackManifest(backend, sn, lctx, desc, manifest, {
      snapshotter: u.snapshotter,
      platforms: u.platforms,
      discardLayers: u.discardLayers,
      ready: (digest) => arrivals.wait(digest),
      progress: (e) =>
        opts.progress?.(refKey(e.layer), {
          status: e.state === 'unpacking' ? 'unpacking' : 'unpacked',
          current: e.layer.size,
          total: e.layer.size,
          ...(e.state === 'exists' ? { detail: 'snapshot already present' } : {}),
        }),
      ...(u.onWarning ? { onWarning: u.onWarning } : {}),
    });
    job.catch((err: unknown) => inner.abort(err));
    unpacks.push(job);
  };

  // Like Promise.all, but the first failure aborts the pull's other work and waits for it to stop, and
  // is the one reported: no download of a failed pull goes on writing after pullImage returns.
  let firstError: { err: unknown } | undefined;
  const allOrNothing = async (jobs: Promise<void>[]): Promise<void> => {
    const settled = await Promise.allSettled(
      jobs.map((j) =>
        j.catch((err: unknown) => {
          firstError ??= { err };
          inner.abort(err);
          throw err;
        }),
      ),
    );
    if (settled.some((r) => r.status === 'rejected')) throw firstError!.err;
  };

  const fetchNode = async (desc: Descriptor, unpackThis: boolean): Promise<void> => {
    await fetchOne(desc);
    const bytes = await backend.content.readBlob(lctx, desc.digest, MAX_MANIFEST_BYTES);
    const parsed = parseManifestOrIndex(bytes, desc.mediaType, refString);
    if (parsed.kind === 'index') {
      const children = selectManifests(parsed.index, opts.platforms);
      if (children.length === 0) {
        const have = parsed.index.manifests
          .map((m) =>
            m.platform
              ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}`
              : '',
          )
          .filter((p) => p && !p.startsWith('unknown'))
          .join(', ');
        throw new HoistError(
          'HOIST_NOT_FOUND',
          `${refString}: no manifest for the requested platform (image has: ${have || 'none'})`,
          {
            hint: 'choose one with --platform, or pull every platform with --all-platforms',
          },
        );
      }
      await applyRefLabels(backend.content, lctx, desc.digest, indexRefLabels(children));
      const toUnpack = new Set(
        opts.unpack ? selectManifests(parsed.index, opts.unpack.platforms).map((c) => c.digest) : [],
      );
      await allOrNothing(children.map((c) => fetchNode(c, unpackThis && toUnpack.has(c.digest))));
      return;
    }
    const m = parsed.manifest;
    await applyRefLabels(backend.content, lctx, desc.digest, manifestRefLabels(m));
    configs.push(m.config.digest);
    if (unpackThis) startUnpack(desc, m);
    await allOrNothing([m.config, ...m.layers].map((d) => limit(() => fetchOne(d))));
  };

  try {
    const fetched = await fetchNode(target, true).then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    // Wait for every unpack even when a download failed: none may touch the store after we return.
    // An unpack's own failure (diffID mismatch, hostile layer) explains more than the abort it caused.
    const settled = await Promise.allSettled(unpacks);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed && !ctx.signal?.aborted) throw failed.reason;
    if (fetched) throw fetched.err;
    const unpacked = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const names = await createNames(backend, ctx, ref, target, configs, opts);
    await lease.release();
    opts.log?.debug('pull lease released: the image records hold the content now', { lease: lease.id });
    const superseded = await dropSupersededLeases(backend.leases, ctx, {
      purpose: 'pull',
      ref: refString,
      keep: lease.id,
      // Only "not found" means finished; any other failure keeps the old lease (the safe side).
      ingestExists: (r) =>
        backend.content.status(ctx, r).then(
          () => true,
          (err: unknown) => !isNotFound(err),
        ),
    });
    if (superseded.length > 0)
      opts.log?.debug('earlier interrupted pulls of this image: their leases dropped', {
        leases: superseded,
      });
    const name = names.find((n) => n === formatReference(ref)) ?? names[0]!;
    return { ref, name, target, names, configs, ...counts, unpacked };
  } catch (err) {
    // Keep the lease (and so the partial data) for resume; it expires leaseExpiryMs from now.
    await lease.keep();
    opts.log?.debug('pull lease kept: the partial data stays for a resumed pull until it expires', {
      lease: lease.id,
      expiry_ms: opts.leaseExpiryMs,
    });
    if (ctx.signal?.aborted) {
      throw new HoistError('HOIST_CANCELLED', `pull of ${refString} interrupted`, {
        cause: err,
        hint: `partial data is kept under lease ${lease.id}: run the same pull to resume, or \`hoist system prune\` to reclaim it`,
      });
    }
    throw err;
  } finally {
    ctx.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function createNames(
  backend: Backend,
  ctx: Context,
  ref: Reference,
  target: Descriptor,
  configs: Digest[],
  opts: PullOptions,
): Promise<string[]> {
  const useCri = opts.criNames ?? ctx.namespace === CRI_NAMESPACE;
  const labels = { ...(opts.labels ?? {}), ...(useCri ? criLabels(opts.pinned === true) : {}) };
  const recordTarget: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size };
  const names = useCri
    ? criNames(ref, recordTarget, configs.length === 1 ? configs[0] : undefined).reverse()
    : [formatReference(ref)];
  for (const name of names) await upsertImage(backend, ctx, { name, target: recordTarget, labels });
  return names;
}

export async function upsertImage(
  backend: Backend,
  ctx: Context,
  image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>,
): Promise<ImageRecord> {
  const fields = ['target', ...Object.keys(image.labels).map((k) => `labels.${k}`)];
  // Create, or update the record that exists. Another process may remove it in between (an rmi racing
  // this pull): then it is created again. The name's last writer wins, as with containerd.
  for (let attempt = 0; ; attempt++) {
    try {
      return await backend.images.create(ctx, image);
    } catch (err) {
      if (!(err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS')) throw err;
    }
    try {
      return await backend.images.update(ctx, image, fields);
    } catch (err) {
      if (!(err instanceof HoistError && err.code === 'HOIST_NOT_FOUND') || attempt >= 3) throw err;
    }
  }
}
