// What an image is, computed from its content: platforms, config, size, created. Content is immutable,
// so a summary keyed by target digest never goes stale; it is memoised per process.
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, type ImageConfig, parseImageConfig } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { Labels } from '../core/labels.ts';
import { hostPlatform, normalizePlatform, type Platform, platformRank } from '../core/platform.ts';
import { ALL_PLATFORMS, walkImage } from './walk.ts';

export interface PlatformSummary {
  platform: Platform;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Manifest + config + layers, as the descriptors declare (present or not): the blob size. */
  size: number;
  /**
   * The layers' uncompressed bytes, as docker's SIZE (recorded on the config when the image was
   * unpacked); undefined for an image never unpacked in this store.
   */
  unpackedSize?: number;
  created?: Date;
  imageConfig?: ImageConfig;
}

export interface ImageSummary {
  target: Descriptor;
  /** Platforms whose manifest is in the store. */
  platforms: PlatformSummary[];
  /** The platform shown by default: the host's if present, else the first. */
  primary?: PlatformSummary;
  /** Size of everything the index/manifests reference for the present platforms (declared sizes). */
  totalSize: number;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export class SummaryCache {
  #content: ContentStore;
  #cache = new Map<string, Promise<ImageSummary>>();
  #maxEntries: number;

  /**
   * `maxEntries` bounds a long-lived cache (the daemon's CRI service keeps one: summaries of
   * content-addressed targets never change, and re-reading 1,000 configs per ListImages is its cost).
   */
  constructor(content: ContentStore, opts: { maxEntries?: number } = {}) {
    this.#content = content;
    this.#maxEntries = opts.maxEntries ?? Number.POSITIVE_INFINITY;
  }

  get(ctx: Context, target: Descriptor): Promise<ImageSummary> {
    const key = `${ctx.namespace}\0${target.digest}`;
    let p = this.#cache.get(key);
    if (!p) {
      p = summarize(this.#content, ctx, target);
      this.#cache.set(key, p);
      // Not kept: failures, and summaries without a readable manifest (its content may arrive later).
      p.then(
        (s) => s.primary === undefined && this.#cache.delete(key),
        () => this.#cache.delete(key),
      );
      // Oldest first (a Map iterates in insertion order).
      for (const k of this.#cache.keys()) {
        if (this.#cache.size <= this.#maxEntries) break;
        this.#cache.delete(k);
      }
    }
    return p;
  }
}

export async function summarize(
  content: ContentStore,
  ctx: Context,
  target: Descriptor,
): Promise<ImageSummary> {
  const walk = await walkImage(content, ctx, target, ALL_PLATFORMS);
  const platforms: PlatformSummary[] = [];
  for (const pm of walk.manifests) {
    const m = pm.manifest;
    const s: PlatformSummary = {
      platform: pm.desc.platform
        ? normalizePlatform(pm.desc.platform)
        : { os: 'unknown', architecture: 'unknown' },
      manifest: pm.desc,
      config: m.config,
      layers: m.layers,
      size: pm.desc.size + m.config.size + m.layers.reduce((a, l) => a + l.size, 0),
    };
    try {
      const [bytes, info] = await Promise.all([
        content.readBlob(ctx, m.config.digest, MAX_CONFIG_BYTES),
        content.info(ctx, m.config.digest),
      ]);
      const unpacked = Number(info.labels[Labels.unpackedSize] ?? Number.NaN);
      if (Number.isSafeInteger(unpacked) && unpacked >= 0) s.unpackedSize = unpacked;
      const cfg = parseImageConfig(bytes);
      s.imageConfig = cfg;
      if (!pm.desc.platform && cfg.os && cfg.architecture) {
        const p: Platform = { os: cfg.os, architecture: cfg.architecture };
        if (cfg.variant) p.variant = cfg.variant;
        s.platform = normalizePlatform(p);
      }
      if (cfg.created) {
        const d = new Date(cfg.created);
        if (!Number.isNaN(d.getTime())) s.created = d;
      }
    } catch {
      // Config missing or unreadable: the summary still lists the platform from the index.
    }
    // Attestation manifests in indexes carry platform unknown/unknown; they are not runnable images.
    if (s.platform.os === 'unknown') continue;
    platforms.push(s);
  }
  const host = hostPlatform();
  let primary: PlatformSummary | undefined;
  let best = Number.POSITIVE_INFINITY;
  for (const p of platforms) {
    const r = platformRank(host, p.platform);
    if (r < best) {
      best = r;
      primary = p;
    }
  }
  primary ??= platforms[0];
  const seen = new Set<Digest>();
  let totalSize = 0;
  for (const d of walk.all) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    totalSize += d.size;
  }
  const summary: ImageSummary = { target, platforms, totalSize };
  if (primary) summary.primary = primary;
  return summary;
}
