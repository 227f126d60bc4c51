// Kubernetes CRI `runtime.v1.ImageService` over the same store, in namespace `k8s.io`, with the
// behaviour of containerd 1.6's CRI plugin (pkg/cri/server/image_*.go): a CRI image is every record
// sharing one config digest (its ID); repo_tags and repo_digests are its names; pulls create the same
// three records containerd's CRI does; a missing image is an empty answer, not an error. Because these
// are the same records the native API and the CLI read, every view agrees.
import { statfs } from 'node:fs/promises';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { ImageDeleteSchema } from '../../api/gen/containerd/events/image_pb.ts';
import { type ImageSchema, ImageService } from '../../api/gen/k8s/cri/runtime/v1/api_pb.ts';
import type { Context } from '../../core/context.ts';
import type { Digest } from '../../core/digest.ts';
import { isNotFound } from '../../core/errors.ts';
import { hostPlatform } from '../../core/platform.ts';
import { nameKind, parseDockerRef } from '../../core/reference.ts';
import { CRI_NAMESPACE } from '../../images/cri-names.ts';
import { groupByTarget } from '../../images/names.ts';
import { pullImage } from '../../images/pull.ts';
import { resolveImage } from '../../images/resolve.ts';
import { chainIds } from '../../images/rootfs.ts';
import { SummaryCache } from '../../images/summary.ts';
import { onePlatform } from '../../images/walk.ts';
import type { Credentials, Resolver } from '../../remotes/types.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

/** The image file system ImageFsInfo reports: where the snapshotter keeps its data, and what it holds. */
export interface ImageFs {
  mountpoint: string;
  bytes: number;
  inodes: number;
}

export interface CriOptions {
  /**
   * The image file system (default: the embedded store's snapshotter directory and its snapshots' usage);
   * in front of a containerd, that containerd's snapshotter.
   */
  imageFs?: (ctx: Context) => Promise<ImageFs>;
  /** A resolver for one pull from `domain`, with the request's credentials when it carries any. */
  resolver(domain: string, credentials?: { host: string; creds: Credentials }): Promise<Resolver>;
  snapshotter: string;
  discardLayers: boolean;
  leaseExpiryMs: number;
}

type CriImage = MessageInitShape<typeof ImageSchema>;

interface Grouped {
  id: Digest;
  image: CriImage;
  names: string[];
  chainId: Digest | undefined;
  config: unknown;
}

const PINNED = 'io.cri-containerd.pinned';

/** Every CRI image in k8s.io: records grouped by target, then by config digest (the CRI image ID). */
/** What criImages derives, kept while the store's image version holds (containerd's CRI keeps a cache too). */
interface CriCache {
  summaries: SummaryCache;
  listed?: { version: string; images: Promise<Grouped[]> };
}

async function criImages(deps: ServerDeps, ctx: Context, cache: CriCache): Promise<Grouped[]> {
  const version = deps.backend.images.version(ctx);
  if (version !== undefined && cache.listed?.version === version) return cache.listed.images;
  const images = groupCriImages(deps, ctx, cache.summaries);
  if (version === undefined) cache.listed = undefined;
  else {
    const listed = { version, images };
    cache.listed = listed;
    images.catch(() => {
      if (cache.listed === listed) cache.listed = undefined;
    });
  }
  return images;
}

async function groupCriImages(deps: ServerDeps, ctx: Context, summaries: SummaryCache): Promise<Grouped[]> {
  const byId = new Map<string, Grouped>();
  for (const g of groupByTarget(await deps.backend.images.list(ctx))) {
    const s = await summaries.get(ctx, g.names[0]!.record.target).catch(() => undefined);
    const primary = s?.primary;
    if (!primary) continue; // content missing: containerd's CRI does not list it either
    const id = primary.config.digest;
    let entry = byId.get(id);
    if (!entry) {
      const user = primary.imageConfig?.config?.User ?? '';
      const uidPart = user.split(':')[0] ?? '';
      const target = g.names[0]!.record.target;
      const indexSize = target.digest === primary.manifest.digest ? 0 : target.size;
      entry = {
        id,
        image: {
          id,
          repoTags: [],
          repoDigests: [],
          size: BigInt(indexSize + primary.size),
          ...(/^\d+$/.test(uidPart) ? { uid: { value: BigInt(uidPart) } } : { username: uidPart }),
          pinned: false,
        },
        names: [],
        chainId: chainIds((primary.imageConfig?.rootfs?.diff_ids ?? []) as Digest[]).at(-1),
        config: primary.imageConfig,
      };
      byId.set(id, entry);
    }
    for (const n of g.names) {
      entry.names.push(n.name);
      if (n.record.labels[PINNED] === 'pinned') entry.image.pinned = true;
      const kind = nameKind(n.name);
      if (kind === 'tag') entry.image.repoTags!.push(n.name);
      else if (kind === 'digest') entry.image.repoDigests!.push(n.name);
    }
  }
  for (const e of byId.values()) {
    e.image.repoTags!.sort();
    e.image.repoDigests!.sort();
  }
  return [...byId.values()];
}

/** The CRI image a user string names (ID, ID prefix or reference), or undefined. */
async function findImage(
  deps: ServerDeps,
  ctx: Context,
  spec: string,
  cache: CriCache,
): Promise<Grouped | undefined> {
  let target: Digest;
  try {
    target = (await resolveImage(deps.backend.images, ctx, spec)).group.target;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const all = await criImages(deps, ctx, cache);
  return (
    all.find((g) => g.names.some((n) => n === spec)) ??
    all.find((g) => g.id === target) ??
    findByTarget(all, deps, ctx, target)
  );
}

async function findByTarget(
  all: Grouped[],
  deps: ServerDeps,
  ctx: Context,
  target: Digest,
): Promise<Grouped | undefined> {
  const names = new Set((await deps.backend.images.listByTarget(ctx, target)).map((r) => r.name));
  return all.find((g) => g.names.some((n) => names.has(n)));
}

/** containerd's ParseAuth: credentials only for the host they name; username/password, identity token, or `auth`. */
function credentialsFor(
  auth:
    | {
        username: string;
        password: string;
        auth: string;
        serverAddress: string;
        identityToken: string;
        registryToken: string;
      }
    | undefined,
  host: string,
): { host: string; creds: Credentials } | undefined {
  if (!auth) return undefined;
  const server = auth.serverAddress.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (server && server !== host) return undefined;
  if (auth.username || auth.password)
    return { host, creds: { username: auth.username, password: auth.password } };
  if (auth.identityToken) return { host, creds: { identityToken: auth.identityToken } };
  if (auth.registryToken) return { host, creds: { registryToken: auth.registryToken } };
  if (auth.auth) {
    const plain = Buffer.from(auth.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i > 0) return { host, creds: { username: plain.slice(0, i), password: plain.slice(i + 1) } };
  }
  return undefined;
}

export function criImageService(deps: ServerDeps, opts: CriOptions): RegisteredService {
  const ctxOf = (signal: AbortSignal | undefined): Context => ({
    namespace: CRI_NAMESPACE,
    ...(signal ? { signal } : {}),
  });
  // Kept for the daemon's life, like containerd's CRI image cache: what a target's manifest and config say
  // never changes, and reading them again for every ListImages was most of its cost.
  const cache: CriCache = { summaries: new SummaryCache(deps.backend.content, { maxEntries: 50_000 }) };
  const embeddedImageFs = async (): Promise<ImageFs> => {
    const usage = await deps.backend.maintenance.usage().catch(() => undefined);
    const sn = usage?.snapshots.bySnapshotter.find((s) => s.snapshotter === opts.snapshotter);
    await statfs(deps.root).catch(() => undefined);
    return {
      mountpoint: `${deps.root}/snapshots/${opts.snapshotter}`,
      bytes: sn?.bytes ?? 0,
      inodes: sn?.inodes ?? 0,
    };
  };
  return defineService('cri', ImageService, {
    async listImages(_req, call) {
      // containerd 1.6 ignores the filter; so does hoist, so both answer alike.
      return { images: (await criImages(deps, ctxOf(call.signal), cache)).map((g) => g.image) };
    },
    async imageStatus(req, call) {
      const ctx = ctxOf(call.signal);
      const found = await findImage(deps, ctx, req.image?.image ?? '', cache);
      if (!found) return {};
      const info: Record<string, string> = {};
      if (req.verbose)
        info.info = JSON.stringify({ chainID: found.chainId ?? '', imageSpec: found.config ?? {} });
      return { image: found.image, info };
    },
    async pullImage(req, call) {
      const ctx = ctxOf(call.signal);
      const ref = parseDockerRef(req.image?.image ?? '');
      const resolver = await opts.resolver(ref.domain, credentialsFor(req.auth, ref.domain));
      const platforms = onePlatform(hostPlatform());
      const observed = deps.telemetry.pullStarted();
      const r = await pullImage(deps.backend, resolver, ctx, req.image?.image ?? '', {
        platforms,
        leaseExpiryMs: opts.leaseExpiryMs,
        criNames: true,
        progress: observed.progress,
        unpack: { snapshotter: opts.snapshotter, platforms, discardLayers: opts.discardLayers },
      }).then(
        (result) => {
          observed.done();
          return result;
        },
        (err: unknown) => {
          observed.done(err);
          throw err;
        },
      );
      if (opts.discardLayers) deps.gc.schedule();
      return { imageRef: r.configs[0] ?? r.target.digest };
    },
    async removeImage(req, call) {
      const ctx = ctxOf(call.signal);
      const found = await findImage(deps, ctx, req.image?.image ?? '', cache);
      if (!found) return {};
      for (const name of found.names) {
        await deps.backend.images.delete(ctx, name).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
      }
      for (const name of found.names)
        deps.events.publish(CRI_NAMESPACE, '/images/delete', ImageDeleteSchema, { name });
      await deps.gc.collectNow(); // containerd deletes the last record with sync GC
      return {};
    },
    async imageFsInfo(_req, call) {
      const fs = await (opts.imageFs ?? embeddedImageFs)(ctxOf(call.signal));
      return {
        imageFilesystems: [
          {
            timestamp: BigInt(Date.now()) * 1_000_000n,
            fsId: { mountpoint: fs.mountpoint },
            usedBytes: { value: BigInt(fs.bytes) },
            inodesUsed: { value: BigInt(fs.inodes) },
          },
        ],
      };
    },
  });
}
