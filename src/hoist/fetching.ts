// Talking to registries from the library: the resolver a call's options and the config make, and how a
// command that reads every layer (unpack, extract, convert, prepare, save) makes an image whole first.
import type { Backend } from '../api/backend.ts';
import { type HoistConfig, registryTimeouts } from '../config/config.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { invalidArgument } from '../core/errors.ts';
import { tryParseReference } from '../core/reference.ts';
import { ensureContent } from '../images/ensure-content.ts';
import type { PlatformSelector } from '../images/walk.ts';
import { dockerCredentials } from '../remotes/credentials.ts';
import { createResolver } from '../remotes/resolver.ts';
import type { Resolver } from '../remotes/types.ts';
import type { FetchOptions, RegistryOptions } from './options.ts';

/** Parallel transfers for a call: its option, else the config's. */
export function downloadsOf(config: HoistConfig, opts: RegistryOptions): number {
  const n = opts.maxConcurrentDownloads ?? config.max_concurrent_downloads;
  if (!Number.isInteger(n) || n < 1)
    throw invalidArgument(`invalid max concurrent downloads ${n}: use a whole number ≥ 1`);
  return n;
}

export function resolverFor(config: HoistConfig, opts: RegistryOptions): Resolver {
  const registry = config.registry;
  return createResolver({
    plainHttp: opts.plainHttp ?? registry.plain_http,
    insecureSkipVerify: opts.insecureSkipVerify ?? registry.insecure_skip_verify,
    hostsDir: opts.hostsDir ?? registry.config_path,
    credentials: dockerCredentials(),
    concurrency: downloadsOf(config, opts),
    timeouts: registryTimeouts(config),
  });
}

/**
 * Fetch what the store lacks of `target` (layers discarded after an earlier unpack, an interrupted pull)
 * from the image's recorded distribution sources, then from the names it has; with `fetch: false` fail
 * naming every missing digest and source. The resolver is made only when something is missing.
 */
export function fetchMissingFor(
  backend: Backend,
  config: HoistConfig,
  target: Descriptor,
  platforms: PlatformSelector,
  opts: FetchOptions,
): (ctx: Context) => Promise<void> {
  return async (ctx) => {
    const named = (await backend.images.listByTarget(ctx, target.digest))
      .map((r) => tryParseReference(r.name))
      .find((r) => r !== undefined);
    await ensureContent(backend, resolverFor(config, opts), ctx, target, platforms, {
      noFetch: opts.fetch === false,
      concurrency: downloadsOf(config, opts),
      ...(opts.onProgress ? { progress: opts.onProgress } : {}),
      ...(named ? { sourceRef: named } : {}),
    });
  };
}
