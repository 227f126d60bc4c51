// Pull: resolve, fetch index → manifests → config and layers under a lease, label content for GC,
// then create (or move) the image's names and release the lease. Interrupted pulls keep their data
// under the lease so the same pull resumes; the lease's owner tells prune whether it is abandoned.
import type { Backend } from '../client/backend.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, parseManifestOrIndex } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { formatReference, parseDockerRef, type Reference } from '../core/reference.ts';
import { dropSupersededLeases, holdLease } from '../leases/keeper.ts';
import type { ImageRecord } from '../metadata/types.ts';
import type { Resolver } from '../remotes/types.ts';
import { CRI_NAMESPACE, criLabels, criNames } from './cri-names.ts';
import { fetchBlob, type ProgressFn } from './fetch-blob.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, selectManifests } from './walk.ts';

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
}

/** A small counting semaphore for layer downloads. */
function limiter(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
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
  const lctx: Context = { ...ctx, lease: lease.id };
  const fetcher = resolver.fetcher(ref);
  const limit = limiter(Math.max(1, opts.concurrency ?? 3));
  const source = sourceLabel(ref);
  const configs: Digest[] = [];
  const counts = { fetched: 0, existed: 0 };
  const count = (r: 'exists' | 'done') => (r === 'done' ? counts.fetched++ : counts.existed++);

  const fetchNode = async (desc: Descriptor): Promise<void> => {
    count(await fetchBlob(backend.content, lctx, fetcher, desc, source, opts.progress));
    const bytes = await backend.content.readBlob(lctx, desc.digest, MAX_MANIFEST_BYTES);
    const parsed = parseManifestOrIndex(bytes, desc.mediaType, refString);
    const refs: Record<string, string> = {};
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
      children.forEach((c, i) => {
        refs[`${Labels.gcRefContent}.m.${i}`] = c.digest;
      });
      await backend.content.update(
        lctx,
        { digest: desc.digest, labels: refs },
        Object.keys(refs).map((k) => `labels.${k}`),
      );
      await Promise.all(children.map((c) => fetchNode(c)));
      return;
    }
    const m = parsed.manifest;
    refs[`${Labels.gcRefContent}.config`] = m.config.digest;
    m.layers.forEach((l, i) => {
      refs[`${Labels.gcRefContent}.l.${i}`] = l.digest;
    });
    await backend.content.update(
      lctx,
      { digest: desc.digest, labels: refs },
      Object.keys(refs).map((k) => `labels.${k}`),
    );
    configs.push(m.config.digest);
    await Promise.all(
      [m.config, ...m.layers].map((d) =>
        limit(async () => count(await fetchBlob(backend.content, lctx, fetcher, d, source, opts.progress))),
      ),
    );
  };

  try {
    await fetchNode(target);
    const names = await createNames(backend, ctx, ref, target, configs, opts);
    await lease.release();
    await dropSupersededLeases(backend.leases, ctx, {
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
    const name = names.find((n) => n === formatReference(ref)) ?? names[0]!;
    return { ref, name, target, names, configs, ...counts };
  } catch (err) {
    // Keep the lease (and so the partial data) for resume; it expires leaseExpiryMs from now.
    await lease.keep();
    if (ctx.signal?.aborted) {
      throw new HoistError('HOIST_CANCELLED', `pull of ${refString} interrupted`, {
        cause: err,
        hint: `partial data is kept under lease ${lease.id}: run the same pull to resume, or \`hoist system prune\` to reclaim it`,
      });
    }
    throw err;
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
  try {
    return await backend.images.create(ctx, image);
  } catch (err) {
    if (!(err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS')) throw err;
    const fields = ['target', ...Object.keys(image.labels).map((k) => `labels.${k}`)];
    return backend.images.update(ctx, image, fields);
  }
}
