// Talking to registries from the library: the resolver a call's options and the config make, and how a
// command that reads every layer (unpack, extract, convert, prepare, save) makes an image whole first.
import type { Backend } from '../api/backend.ts';
import { type HoistConfig, registryTimeouts } from '../config/config.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { invalidArgument } from '../core/errors.ts';
import { Labels } from '../core/labels.ts';
import type { Logger } from '../core/log.ts';
import { type Reference, tryParseReference } from '../core/reference.ts';
import { ensureContent } from '../images/ensure-content.ts';
import type { PlatformSelector } from '../images/walk.ts';
import { dockerCredentials } from '../remotes/credentials.ts';
import { hostMatches } from '../remotes/hosts.ts';
import type { PeerDiscovery } from '../remotes/peers/discovery.ts';
import { createResolver } from '../remotes/resolver.ts';
import type { Resolver } from '../remotes/types.ts';
import type { FetchOptions, RegistryOptions } from './options.ts';
import { peersFor } from './peers.ts';

/** Parallel transfers for a call: its option, else the config's. */
export function downloadsOf(config: HoistConfig, opts: RegistryOptions): number {
  const n = opts.maxConcurrentDownloads ?? config.max_concurrent_downloads;
  if (!Number.isInteger(n) || n < 1)
    throw invalidArgument(`invalid max concurrent downloads ${n}: use a whole number ≥ 1`);
  return n;
}

export function resolverFor(config: HoistConfig, opts: RegistryOptions, log?: Logger): Resolver {
  const registry = config.registry;
  return createResolver({
    plainHttp: opts.plainHttp ?? registry.plain_http,
    insecureSkipVerify: opts.insecureSkipVerify ?? registry.insecure_skip_verify,
    hostsDir: opts.hostsDir ?? registry.config_path,
    credentials: dockerCredentials(),
    concurrency: downloadsOf(config, opts),
    timeouts: registryTimeouts(config),
    ...peerOption(config, log),
    ...(log ? { log } : {}),
  });
}

/** The resolver option for the config's discovered peers, when it has any. */
function peerOption(config: HoistConfig, log: Logger | undefined): { peers?: PeerDiscovery } {
  const peers = peersFor(config, log);
  return peers ? { peers } : {};
}

/** The label a pull of `ref` gives its image records: the scheme, when the registry was asked over HTTP. */
export function schemeLabel(
  config: HoistConfig,
  opts: RegistryOptions,
  ref: Reference,
): Record<string, string> {
  const plain = opts.plainHttp ?? config.registry.plain_http;
  return hostMatches(plain, ref.domain) ? { [Labels.registryScheme]: 'http' } : {};
}

/**
 * The call's options with the registries `target`'s records were pulled from over HTTP added to its plain
 * HTTP hosts: a re-fetch of discarded layers needs no --plain-http.
 */
export async function withRememberedScheme(
  backend: Backend,
  ctx: Context,
  target: Descriptor,
  opts: RegistryOptions,
): Promise<RegistryOptions> {
  if (opts.plainHttp === true) return opts;
  const plain = (await backend.images.listByTarget(ctx, target.digest))
    .filter((r) => r.labels[Labels.registryScheme] === 'http')
    .flatMap((r) => tryParseReference(r.name)?.domain ?? []);
  if (plain.length === 0) return opts;
  return { ...opts, plainHttp: [...(Array.isArray(opts.plainHttp) ? opts.plainHttp : []), ...plain] };
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
  log?: Logger,
): (ctx: Context) => Promise<void> {
  return async (ctx) => {
    const named = (await backend.images.listByTarget(ctx, target.digest))
      .map((r) => tryParseReference(r.name))
      .find((r) => r !== undefined);
    const remembered = await withRememberedScheme(backend, ctx, target, {
      ...opts,
      plainHttp: opts.plainHttp ?? config.registry.plain_http,
    });
    await ensureContent(backend, resolverFor(config, remembered, log), ctx, target, platforms, {
      noFetch: opts.fetch === false,
      concurrency: downloadsOf(config, opts),
      ...(opts.onProgress ? { progress: opts.onProgress } : {}),
      ...(named ? { sourceRef: named } : {}),
    });
  };
}
