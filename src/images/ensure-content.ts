// Make an image whole before it leaves the store (push, save): find the blobs it lacks (discarded after
// unpack, never fetched, interrupted) and fetch them from where the image came from, as recorded in the
// `containerd.io/distribution.source.<host>=<repo>` labels on the blob or on the manifest/index above it
// (a manifest keeps them when its layers were discarded). With `noFetch`, or when no source has a blob,
// fail naming every missing digest and every source tried, before anything is written.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { forEachLimited } from '../core/limiter.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { type Reference, repository } from '../core/reference.ts';
import { holdLease } from '../leases/keeper.ts';
import type { Resolver } from '../remotes/types.ts';
import { fetchBlob, type ProgressFn } from './fetch-blob.ts';
import { applyRefLabels, indexRefLabels, manifestRefLabels } from './gc-labels.ts';
import { checkContent } from './missing.ts';
import { type PlatformSelector, readNode, selectManifests } from './walk.ts';

export interface EnsureContentOptions {
  /** Fail instead of fetching what is missing. */
  noFetch?: boolean;
  progress?: ProgressFn;
  /** Tried after the recorded sources (e.g. the name the image was pulled as). */
  sourceRef?: Reference;
  /** Parallel fetches (default 3). */
  concurrency?: number;
}

/** Lease for fetches when the caller has none: fetched blobs stay at least this long (an hour). */
const FETCH_LEASE_MS = 3600_000;
/** An index above an index above a manifest is as deep as images go; a bound keeps a bad store finite. */
const MAX_ROUNDS = 8;

/** `host/repo` sources in the order to try them, from the labels of a blob and the documents above it. */
function sourcesFromLabels(labels: Record<string, string>[]): Reference[] {
  const out: Reference[] = [];
  for (const l of labels) {
    for (const [k, v] of Object.entries(l)) {
      if (!k.startsWith(Labels.distributionSource)) continue;
      const domain = k.slice(Labels.distributionSource.length);
      for (const path of v.split(',')) if (domain && path) out.push({ domain, path });
    }
  }
  return out;
}

function dedupe(refs: Reference[]): Reference[] {
  const seen = new Set<string>();
  return refs.filter((r) => {
    const key = repository(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function labelsOf(backend: Backend, ctx: Context, desc: Descriptor): Promise<Record<string, string>> {
  try {
    return (await backend.content.info(ctx, desc.digest)).labels;
  } catch (err) {
    if (isNotFound(err)) return {};
    throw err;
  }
}

interface Failure {
  desc: Descriptor;
  tried: { source: string; error: string }[];
}

function describe(desc: Descriptor): string {
  const kind = isIndex(desc.mediaType)
    ? 'index'
    : isManifest(desc.mediaType)
      ? 'manifest'
      : /config/.test(desc.mediaType)
        ? 'config'
        : 'layer';
  return `${desc.digest} (${kind}, ${desc.size} bytes)`;
}

/**
 * Fetch whatever the selected part of the image under `target` lacks. Returns the descriptors fetched.
 * Runs under `ctx.lease` when the caller has one (so the blobs stay until the caller is done with them),
 * else under a lease of its own released when done: fetched blobs are then kept by the image's own
 * references only (discarded layers become collectable again, as the config asks).
 */
export async function ensureContent(
  backend: Backend,
  resolver: Resolver,
  ctx: Context,
  target: Descriptor,
  sel: PlatformSelector,
  opts: EnsureContentOptions = {},
): Promise<{ fetched: Descriptor[] }> {
  const fetched: Descriptor[] = [];
  let presence = await checkContent(backend.content, ctx, target, sel);
  if (presence.missing.length === 0) return { fetched };
  const imageSources = (): Reference[] =>
    [...presence.sources].flatMap(([domain, repos]) => [...repos].map((path) => ({ domain, path })));

  if (opts.noFetch) {
    const sources = dedupe([...imageSources(), ...(opts.sourceRef ? [opts.sourceRef] : [])]);
    throw new HoistError(
      'HOIST_NOT_FOUND',
      `image ${target.digest}: ${presence.missing.length} blob(s) missing from the store and --no-fetch given: ${presence.missing.map(describe).join(', ')}; sources: ${sources.map(repository).join(', ') || 'none recorded'}`,
      { hint: 'remove --no-fetch to fetch them from their source, or pull the image again' },
    );
  }

  const lease = ctx.lease
    ? undefined
    : await holdLease(backend.leases, ctx, {
        purpose: 'fetch',
        ref: target.digest,
        expiryMs: FETCH_LEASE_MS,
      });
  const lctx: Context = lease ? { ...ctx, lease: lease.id } : ctx;
  try {
    for (let round = 0; presence.missing.length > 0; round++) {
      if (round >= MAX_ROUNDS)
        throw new HoistError('HOIST_INTERNAL', `image ${target.digest}: content keeps going missing`);
      // Parents of each missing blob: its manifest and the indexes above, nearest first.
      const parents = new Map<string, Descriptor[]>();
      for (const m of presence.walk.manifests)
        for (const child of [m.manifest.config, ...m.manifest.layers])
          if (!parents.has(child.digest)) parents.set(child.digest, [m.desc, ...[...m.parents].reverse()]);
      const failures: Failure[] = [];
      await forEachLimited(presence.missing, opts.concurrency ?? 3, async (desc) => {
        const above = parents.get(desc.digest) ?? presence.required.filter((d) => isIndex(d.mediaType));
        const labels = [await labelsOf(backend, lctx, desc)];
        for (const p of above) labels.push(await labelsOf(backend, lctx, p));
        const sources = dedupe([
          ...sourcesFromLabels(labels),
          ...imageSources(),
          ...(opts.sourceRef ? [opts.sourceRef] : []),
        ]);
        const failure = await fetchFromSources(backend, resolver, lctx, desc, sources, sel, opts.progress);
        if (failure) failures.push(failure);
        else fetched.push(desc);
      });
      if (failures.length > 0) throw fetchError(target, failures);
      const missingNow = new Set(presence.missing.map((d) => d.digest as string));
      presence = await checkContent(backend.content, lctx, target, sel);
      // Only new children of the documents just fetched may be missing now; the same blob again is a bug.
      if (presence.missing.some((d) => missingNow.has(d.digest)))
        throw new HoistError('HOIST_INTERNAL', `image ${target.digest}: fetched content is still missing`);
    }
    await lease?.release();
    return { fetched };
  } catch (err) {
    // Keep what was fetched (and partial ingests) for a retry; the lease expires on its own.
    await lease?.keep();
    throw err;
  }
}

/** Try each source in order; undefined when one delivered the blob, else what every source said. */
async function fetchFromSources(
  backend: Backend,
  resolver: Resolver,
  ctx: Context,
  desc: Descriptor,
  sources: Reference[],
  sel: PlatformSelector,
  progress: ProgressFn | undefined,
): Promise<Failure | undefined> {
  const tried: Failure['tried'] = [];
  for (const source of sources) {
    const label = { [`${Labels.distributionSource}${source.domain}`]: source.path };
    try {
      await fetchBlob(backend.content, ctx, resolver.fetcher(source), desc, label, progress);
      await labelChildren(backend, ctx, desc, sel);
      return undefined;
    } catch (err) {
      if (err instanceof HoistError && err.code === 'HOIST_CANCELLED') throw err;
      if (ctx.signal?.aborted) throw new HoistError('HOIST_CANCELLED', 'operation cancelled', { cause: err });
      tried.push({ source: repository(source), error: (err as Error).message });
    }
  }
  return { desc, tried };
}

/** A fetched manifest or index gets the GC references pull gives it, so its children stay with it. */
async function labelChildren(
  backend: Backend,
  ctx: Context,
  desc: Descriptor,
  sel: PlatformSelector,
): Promise<void> {
  if (!isIndex(desc.mediaType) && !isManifest(desc.mediaType)) return;
  const node = await readNode(backend.content, ctx, desc);
  const refs =
    node.kind === 'index'
      ? indexRefLabels(selectManifests(node.index!, sel))
      : manifestRefLabels(node.manifest!);
  await applyRefLabels(backend.content, ctx, desc.digest, refs);
}

function fetchError(target: Descriptor, failures: Failure[]): HoistError {
  const sources = dedupe(
    failures.flatMap((f) =>
      f.tried.map((t) => {
        const slash = t.source.indexOf('/');
        return { domain: t.source.slice(0, slash), path: t.source.slice(slash + 1) };
      }),
    ),
  );
  const details = failures
    .map((f) =>
      f.tried.length === 0
        ? `${describe(f.desc)}: no distribution source recorded`
        : `${describe(f.desc)}: ${f.tried.map((t) => `${t.source}: ${t.error}`).join('; ')}`,
    )
    .join('\n  ');
  return new HoistError(
    'HOIST_NOT_FOUND',
    `image ${target.digest}: ${failures.length} missing blob(s) could not be fetched (sources tried: ${sources.map(repository).join(', ') || 'none'}):\n  ${details}`,
    {
      hint:
        sources.length === 0
          ? 'no source is recorded for them: pull the image again (hoist pull NAME)'
          : 'check that the source registry is reachable and still has the image, or pull the image again',
    },
  );
}
