// Push: a local image to a registry. The image is made whole first (missing blobs fetched from their
// source, or a precise error), then blobs go up (HEAD first; a cross-repository mount when the blob came
// from another repository of the same registry; upload otherwise), then manifests, then the index, so the
// registry never sees a document before what it refers to. One platform out of an index pushes only that
// manifest under the tag (as nerdctl does with --platform); --all-platforms pushes the whole index.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { HoistError, isNotFound } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import { forEachLimited } from '../core/limiter.ts';
import { isIndex, isManifest } from '../core/mediatypes.ts';
import { formatPlatform } from '../core/platform.ts';
import { formatReference, nameKind, parseDockerRef, type Reference } from '../core/reference.ts';
import { holdLease } from '../leases/keeper.ts';
import type { Pusher, Resolver } from '../remotes/types.ts';
import { ensureContent } from './ensure-content.ts';
import { type BlobStatus, mergeLabels, refKey } from './fetch-blob.ts';
import { resolveImage } from './resolve.ts';
import { MAX_MANIFEST_BYTES, type PlatformSelector, readNode, selectManifests, walkImage } from './walk.ts';

export type PushStatus = BlobStatus | 'uploading' | 'mounted';

export type PushProgressFn = (
  key: string,
  state: { status: PushStatus; current?: number; total?: number; detail?: string },
) => void;

export interface PushOptions {
  platforms: PlatformSelector;
  /** Fail instead of fetching blobs the store lacks. */
  noFetch?: boolean;
  progress?: PushProgressFn;
  /** Parallel blob uploads (default 3). */
  concurrency?: number;
  /** How long fetched blobs outlive a failed push (default 1h). */
  leaseExpiryMs?: number;
}

export interface PushResult {
  /** The destination. */
  ref: Reference;
  name: string;
  /** What the destination now names: the image's target, or the one manifest picked from its index. */
  target: Descriptor;
  /** Blobs uploaded, mounted from another repository, and already there; blobs fetched first. */
  pushed: number;
  mounted: number;
  existed: number;
  fetched: number;
}

const withoutExtras = (d: Descriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
});

/** The destination: DEST, else the name the user gave, else the image's first tag or digest name. */
function destination(input: string, dest: string | undefined, names: string[]): Reference {
  if (dest !== undefined) return parseDockerRef(dest);
  // An ID alias (sha256:…) is not a destination; only tag and digest names are.
  const named = names.find((n) => nameKind(n) === 'tag' || nameKind(n) === 'digest');
  if (named !== undefined) return parseDockerRef(named);
  throw new HoistError('HOIST_INVALID_ARGUMENT', `image ${JSON.stringify(input)} has no name to push to`, {
    hint: 'give a destination: hoist push IMAGE REGISTRY/REPO:TAG',
  });
}

/** The platforms of an index whose manifests the store lacks, for the --all-platforms error. */
async function missingPlatforms(backend: Backend, ctx: Context, target: Descriptor): Promise<string[]> {
  try {
    const node = await readNode(backend.content, ctx, target);
    const out: string[] = [];
    for (const m of node.index?.manifests ?? []) {
      try {
        await backend.content.info(ctx, m.digest);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        out.push(m.platform ? formatPlatform(m.platform) : m.digest);
      }
    }
    return out;
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** One platform out of an index: the manifest to push in its place (nested indexes are descended). */
async function pickManifest(
  backend: Backend,
  ctx: Context,
  target: Descriptor,
  sel: PlatformSelector,
  name: string,
) {
  let root = target;
  while (isIndex(root.mediaType)) {
    const node = await readNode(backend.content, ctx, root, name);
    const child = selectManifests(node.index!, sel)[0];
    if (!child) {
      const have = node.index!.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
      throw new HoistError(
        'HOIST_NOT_FOUND',
        `${name}: no manifest for the requested platform (image has: ${have.join(', ') || 'none'})`,
        { hint: 'choose one with --platform, or push every platform with --all-platforms' },
      );
    }
    root = withoutExtras(child);
  }
  return root;
}

export async function pushImage(
  backend: Backend,
  resolver: Resolver,
  ctx: Context,
  name: string,
  dest: string | undefined,
  opts: PushOptions,
): Promise<PushResult> {
  const resolution = await resolveImage(backend.images, ctx, name);
  const record = (
    resolution.group.names.find((n) => n.name === resolution.name) ?? resolution.group.names[0]!
  ).record;
  const target = withoutExtras(record.target);
  const ref = destination(name, dest, [
    ...(resolution.name ? [resolution.name] : []),
    ...resolution.group.names.map((n) => n.name),
  ]);
  const refName = formatReference(ref);
  const progress = opts.progress;
  const lease = await holdLease(backend.leases, ctx, {
    purpose: 'push',
    ref: refName,
    expiryMs: opts.leaseExpiryMs ?? 3600_000,
  });
  const lctx: Context = { ...ctx, lease: lease.id };
  let fetched: Descriptor[] = [];
  // Whether a fetch may have left data (fetched blobs, partial ingests) that a retry can use.
  let fetchedSome = false;
  try {
    try {
      fetchedSome = opts.noFetch !== true;
      const ensured = await ensureContent(backend, resolver, lctx, target, opts.platforms, {
        noFetch: opts.noFetch === true,
        ...(progress ? { progress } : {}),
      });
      fetched = ensured.fetched;
      fetchedSome = fetched.length > 0;
    } catch (err) {
      if (isNotFound(err) && isIndex(target.mediaType) && opts.platforms.kind === 'all') {
        const platforms = await missingPlatforms(backend, lctx, target);
        if (platforms.length > 0) {
          const e = err as HoistError;
          throw new HoistError(
            'HOIST_NOT_FOUND',
            `${record.name}: platforms not in the store: ${platforms.join(', ')}; ${e.message}`,
            {
              cause: err,
              hint: `${e.hint ?? 'pull them again'}; or push one platform with --platform`,
            },
          );
        }
      }
      throw err;
    }
    const root =
      opts.platforms.kind === 'one'
        ? await pickManifest(backend, lctx, target, opts.platforms, record.name)
        : target;
    if (ref.digest && ref.digest !== root.digest)
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        `${refName}: the image to push is ${root.digest}, not ${ref.digest}`,
        {
          hint: 'push to a tag, or to the digest of the image itself',
        },
      );
    const counts = await pushTree(backend, lctx, resolver.pusher(ref), ref, root, opts);
    // Record the destination as a source of every blob pushed: later pushes to that registry can mount.
    const source = { [`${Labels.distributionSource}${ref.domain}`]: ref.path };
    const walk = await walkImage(backend.content, lctx, root, opts.platforms);
    for (const d of walk.all) await mergeLabels(backend.content, lctx, d, source);
    await lease.release();
    return { ref, name: refName, target: root, ...counts, fetched: fetched.length };
  } catch (err) {
    // Fetched blobs stay under the lease for a retry (it expires, or `hoist system prune` reclaims it).
    if (fetchedSome) await lease.keep();
    else await lease.release();
    throw err;
  }
}

async function pushTree(
  backend: Backend,
  ctx: Context,
  pusher: Pusher,
  ref: Reference,
  root: Descriptor,
  opts: PushOptions,
): Promise<{ pushed: number; mounted: number; existed: number }> {
  const walk = await walkImage(backend.content, ctx, root, opts.platforms);
  if (walk.missingNodes.length > 0)
    throw new HoistError(
      'HOIST_NOT_FOUND',
      `${formatReference(ref)}: ${walk.missingNodes.map((d) => d.digest).join(', ')}: not found`,
    );
  const documents = walk.all.filter((d) => isIndex(d.mediaType) || isManifest(d.mediaType));
  const blobs = walk.all.filter((d) => !isIndex(d.mediaType) && !isManifest(d.mediaType));
  const counts = { pushed: 0, mounted: 0, existed: 0 };
  const progress = opts.progress;
  const stop = new AbortController();
  const onAbort = () => stop.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const signal = stop.signal;
  try {
    await forEachLimited(blobs, opts.concurrency ?? 3, async (desc) => {
      const key = refKey(desc);
      try {
        const result = await pushBlob(backend, ctx, pusher, ref, desc, signal, (current) =>
          progress?.(key, { status: 'uploading', current, total: desc.size }),
        );
        counts[result]++;
        progress?.(key, {
          status: result === 'pushed' ? 'done' : result === 'mounted' ? 'mounted' : 'exists',
          current: desc.size,
          total: desc.size,
        });
      } catch (err) {
        // Blobs stopped because another one failed are not failures of their own.
        const knockOn = signal.aborted && err instanceof HoistError && err.code === 'HOIST_CANCELLED';
        if (!knockOn) progress?.(key, { status: 'failed', detail: (err as Error).message });
        stop.abort(err);
        throw err;
      }
    });
    // Pre-order reversed: every manifest before the index that lists it, the root last, under the tag.
    for (const desc of documents.reverse()) {
      const key = refKey(desc);
      const isRoot = desc.digest === root.digest;
      if (!isRoot && (await pusher.exists(desc, { signal }))) {
        counts.existed++;
        progress?.(key, { status: 'exists', current: desc.size, total: desc.size });
        continue;
      }
      progress?.(key, { status: 'uploading', current: 0, total: desc.size });
      const bytes = await backend.content.readBlob(ctx, desc.digest, MAX_MANIFEST_BYTES);
      await pusher.pushManifest(isRoot ? (ref.tag ?? desc.digest) : desc.digest, desc, bytes, { signal });
      counts.pushed++;
      progress?.(key, { status: 'done', current: desc.size, total: desc.size });
    }
    return counts;
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

/** One blob: already there, mounted from a sibling repository, or uploaded. */
async function pushBlob(
  backend: Backend,
  ctx: Context,
  pusher: Pusher,
  ref: Reference,
  desc: Descriptor,
  signal: AbortSignal,
  onProgress: (bytes: number) => void,
): Promise<'pushed' | 'mounted' | 'existed'> {
  if (await pusher.exists(desc, { signal })) return 'existed';
  const info = await backend.content.info(ctx, desc.digest);
  const repos = (info.labels[`${Labels.distributionSource}${ref.domain}`] ?? '')
    .split(',')
    .filter((r) => r !== '' && r !== ref.path);
  let session: Awaited<ReturnType<Pusher['mount']>> | undefined;
  for (const from of repos) {
    session = await pusher.mount(desc, from, { signal });
    if (session.mounted) return 'mounted';
    if (session.session) break; // the registry opened an upload instead: use it
  }
  const open = (offset: number) => backend.content.reader(ctx, desc.digest, { offset });
  const upload = session && !session.mounted && session.session ? { session: session.session } : {};
  await pusher.pushBlob(desc, open, { ...upload, signal, onProgress });
  return 'pushed';
}
