// hoist as a library: one object over a store — the embedded one under a root directory, or any
// containerd API endpoint (a `hoist serve` or containerd itself) — with every operation the CLI has; the
// CLI is a thin layer over it. Settings come from hoist's config file as for the CLI, overridable per
// call. Every method works in the namespace the object was made for; `inNamespace` gives another view.
// Each operation loads its implementation when first called, so a short command starts fast.
import type { Readable, Writable } from 'node:stream';
import type { Backend } from '../api/backend.ts';
import type { Mount, Snapshotter } from '../api/snapshots.ts';
import { type HoistConfig, loadConfig, parseDuration, registryTimeouts } from '../config/config.ts';
import { type Context, isIdentifier } from '../core/context.ts';
import { invalidArgument } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { hostPlatform, parsePlatform } from '../core/platform.ts';
import { setUnpackConcurrency } from '../diff/unpack-concurrency.ts';
import { ALL_PLATFORMS, onePlatform, type PlatformSelector } from '../images/walk.ts';
import type {
  CommitOptions,
  ConvertOptions,
  CopyOptions,
  ExtractOptions,
  LoadOptions,
  ManifestOptions,
  MountOptions,
  OpenOptions,
  PlatformOptions,
  PrepareOptions,
  PullOptions,
  PushOptions,
  SaveOptions,
  UnpackChoice,
  UnpackOptions,
} from './options.ts';
import { StoreView } from './store-view.ts';

function selector(opts: PlatformOptions): PlatformSelector {
  if (opts.platform && opts.allPlatforms) throw invalidArgument('give a platform or all platforms, not both');
  if (opts.allPlatforms) return ALL_PLATFORMS;
  return onePlatform(opts.platform ? parsePlatform(opts.platform) : hostPlatform());
}

function namespaceOf(opts: OpenOptions, config: HoistConfig): string {
  // containerd's variable after hoist's own, so a shell set up for ctr/nerdctl works unchanged.
  const env = process.env;
  const namespace = opts.namespace ?? (env.HOIST_NAMESPACE || env.CONTAINERD_NAMESPACE || config.namespace);
  if (!isIdentifier(namespace))
    throw invalidArgument(
      `invalid namespace ${JSON.stringify(namespace)}: use letters, digits, and . _ - between them`,
    );
  return namespace;
}

function configOf(opts: OpenOptions): HoistConfig {
  const config =
    typeof opts.config === 'object'
      ? opts.config
      : loadConfig({ path: opts.config, env: process.env, isRoot: process.getuid?.() === 0 });
  return opts.root ? { ...config, root: opts.root } : config;
}

export class Hoist extends StoreView {
  /** The settings in force (the config file's, with the open call's root). */
  readonly config: HoistConfig;
  /** Registry requests, fallbacks, lease and GC decisions (OpenOptions.log); undefined: none. */
  readonly log: Logger | undefined;

  private constructor(backend: Backend, config: HoistConfig, namespace: string, log: Logger | undefined) {
    super(backend, namespace);
    this.config = config;
    this.log = log;
    setUnpackConcurrency(config.max_concurrent_unpacks);
  }

  /**
   * Open the embedded store (no daemon), or, when a live `hoist serve` owns it, that daemon's socket
   * (`viaDaemon: false` opens the store itself). Close it when done.
   */
  static async open(opts: OpenOptions = {}): Promise<Hoist> {
    const config = configOf(opts);
    const namespace = namespaceOf(opts, config);
    if (opts.viaDaemon !== false) {
      const { liveDaemon } = await import('../server/daemon-marker.ts');
      const address = await liveDaemon(config.root);
      if (address) return Hoist.connect(address, { ...opts, config });
    }
    const { openEmbedded } = await import('../embedded/backend.ts');
    return new Hoist(await openEmbedded(config.root), config, namespace, opts.log);
  }

  /** Talk to a `hoist serve` or a containerd over its socket. */
  static async connect(address: string, opts: Omit<OpenOptions, 'root' | 'viaDaemon'> = {}): Promise<Hoist> {
    const config = configOf(opts);
    const namespace = namespaceOf(opts, config);
    const { openGrpc } = await import('../client/grpc/backend.ts');
    opts.log?.debug('working through a daemon', { address });
    return new Hoist(await openGrpc(address), config, namespace, opts.log);
  }

  /**
   * Store credentials for a registry in Docker's config.json (or its credential helper), after checking
   * them against the registry with the config's hosts.toml directory and deadlines.
   */
  static async login(
    server: string,
    credentials: { username: string; password: string },
    opts: {
      plainHttp?: boolean;
      insecureSkipVerify?: boolean;
      config?: string | HoistConfig;
      log?: Logger;
    } = {},
  ): Promise<void> {
    const { login } = await import('../remotes/credentials.ts');
    const config = configOf(opts);
    await login(server, credentials, {
      plainHttp: opts.plainHttp ? true : config.registry.plain_http,
      insecureSkipVerify: opts.insecureSkipVerify ? true : config.registry.insecure_skip_verify,
      hostsDir: config.registry.config_path,
      timeouts: registryTimeouts(config),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  /** Forget a registry's stored credentials; false when there were none. */
  static async logout(server: string): Promise<boolean> {
    const { logout } = await import('../remotes/credentials.ts');
    return logout(server);
  }

  /** The same store, seen in another namespace (e.g. `k8s.io`, where the CRI keeps its images). */
  inNamespace(namespace: string): Hoist {
    return new Hoist(this.backend, this.config, namespaceOf({ namespace }, this.config), this.log);
  }

  #unpackChoice(opts: UnpackChoice) {
    if (opts.maxConcurrentUnpacks !== undefined) {
      if (!Number.isInteger(opts.maxConcurrentUnpacks) || opts.maxConcurrentUnpacks < 1)
        throw invalidArgument(
          `invalid max concurrent unpacks ${opts.maxConcurrentUnpacks}: use a whole number ≥ 1`,
        );
      setUnpackConcurrency(opts.maxConcurrentUnpacks);
    }
    return {
      snapshotter: opts.snapshotter ?? this.config.snapshotter,
      discardLayers: opts.discardUnpackedLayers ?? this.config.discard_unpacked_layers,
    };
  }

  /** The named snapshotter (default: the config's), failing with the names there are. */
  async snapshotter(name?: string): Promise<Snapshotter> {
    const { snapshotterFor } = await import('../images/unpack.ts');
    return snapshotterFor(this.backend, name ?? this.config.snapshotter);
  }

  /** GC after layers were discarded once unpacked: they lost their last reference with the lease. */
  async #collectDiscarded(): Promise<void> {
    this.log?.debug('collecting garbage: compressed layers discarded after unpack');
    const stats = await this.backend.collectGarbage();
    if (stats && this.log?.enabled('debug'))
      this.log.debug('garbage collected', {
        removed_blobs: stats.removedContent,
        removed_bytes: stats.removedBytes,
        removed_leases: stats.removedLeases,
        removed_snapshots: stats.removedSnapshots,
        duration_ms: Math.round(stats.durationMs),
      });
  }

  /** The image a name or ID picks: its target and the name to show for it. */
  async #resolve(ctx: Context, name: string) {
    const { resolveImage } = await import('../images/resolve.ts');
    const r = await resolveImage(this.backend.images, ctx, name);
    return { target: r.group.names[0]!.record.target, name: r.name ?? r.group.names[0]!.name };
  }

  /** Pull (and by default unpack) an image; an interrupted pull of the same image resumes. */
  async pull(reference: string, opts: PullOptions = {}) {
    const { downloadsOf, resolverFor, schemeLabel } = await import('./fetching.ts');
    const { pullImage } = await import('../images/pull.ts');
    const { parseReference } = await import('../core/reference.ts');
    const labels = { ...schemeLabel(this.config, opts, parseReference(reference)), ...opts.labels };
    const wanted = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    const unpack = opts.unpack ?? true;
    const { snapshotter, discardLayers } = this.#unpackChoice(opts);
    if (unpack) await this.snapshotter(snapshotter); // a bad name fails before any download
    const result = await pullImage(
      this.backend,
      resolverFor(this.config, opts, this.log),
      this.ctx(opts),
      reference,
      {
        platforms: opts.allPlatforms ? ALL_PLATFORMS : onePlatform(wanted),
        leaseExpiryMs: parseDuration(this.config.pull_lease_expiry),
        concurrency: downloadsOf(this.config, opts),
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(this.log ? { log: this.log } : {}),
        ...(opts.onProgress ? { progress: opts.onProgress } : {}),
        // Every platform may be fetched, but only the wanted one (this host by default) is unpacked.
        ...(unpack
          ? {
              unpack: {
                snapshotter,
                platforms: onePlatform(wanted),
                discardLayers,
                ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
              },
            }
          : {}),
      },
    );
    // Discarded layers lost their last reference with the pull's lease: collect them now, as rmi does.
    if (unpack && discardLayers) await this.#collectDiscarded();
    return result;
  }

  /** Upload an image to a registry (`destination` defaults to its name); missing blobs are fetched first. */
  async push(name: string, destination?: string, opts: PushOptions = {}) {
    const { downloadsOf, resolverFor, withRememberedScheme } = await import('./fetching.ts');
    const { pushImage } = await import('../images/push.ts');
    const ctx = this.ctx(opts);
    // Layers re-fetched for the push come over HTTP from a registry the image was pulled from that way.
    const { target } = await this.#resolve(ctx, name);
    const registry = await withRememberedScheme(this.backend, ctx, target, {
      ...opts,
      plainHttp: opts.plainHttp ?? this.config.registry.plain_http,
    });
    return pushImage(this.backend, resolverFor(this.config, registry, this.log), ctx, name, destination, {
      platforms: selector(opts),
      noFetch: opts.fetch === false,
      concurrency: downloadsOf(this.config, opts),
      leaseExpiryMs: parseDuration(this.config.pull_lease_expiry),
      ...(opts.onProgress ? { progress: opts.onProgress } : {}),
    });
  }

  /**
   * Copy an image (skopeo's `docker://REF`, `docker-archive:PATH[:REF]`, `oci-archive:PATH[:TAG]`,
   * `oci:DIR[:TAG]`; a bare name is a registry's): registry to registry directly, archives and layouts
   * through a scratch namespace of this store that is removed afterwards.
   */
  async copy(source: string, destination: string, opts: CopyOptions = {}) {
    const { copyImage } = await import('./copy.ts');
    return copyImage(this, source, destination, opts);
  }

  /** The manifest or index a reference names at its registry, as its exact bytes and descriptor. */
  async manifest(reference: string, opts: ManifestOptions = {}) {
    const { inspectManifest } = await import('./copy.ts');
    return inspectManifest(this, reference, opts);
  }

  /** Write an image archive (OCI layout + Docker manifest.json) of `references` to `out`, and end it. */
  async save(references: string[], out: Writable, opts: SaveOptions = {}) {
    const { fetchMissingFor } = await import('./fetching.ts');
    const { saveImages } = await import('../archive/save.ts');
    const platforms = selector(opts);
    return saveImages(this.backend, this.ctx(opts), references, out, {
      platforms,
      noFetch: opts.fetch === false,
      ensure: (target, ctx) =>
        fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log)(ctx),
    });
  }

  /** Load an image archive (Docker's, OCI, skopeo's, ctr's; plain, gzip or zstd), and by default unpack it. */
  async load(input: Readable, opts: LoadOptions = {}) {
    const [{ loadArchive }, { unpackImage, snapshotterFor }, { walkImage }, { formatPlatform }] =
      await Promise.all([
        import('../archive/load.ts'),
        import('../images/unpack.ts'),
        import('../images/walk.ts'),
        import('../core/platform.ts'),
      ]);
    const ctx = this.ctx(opts);
    const unpack = opts.unpack ?? true;
    const { snapshotter, discardLayers } = this.#unpackChoice(opts);
    if (unpack) snapshotterFor(this.backend, snapshotter); // fail before loading
    const host = hostPlatform();
    const platforms = onePlatform(host);
    const result = await loadArchive(this.backend, ctx, input, {
      ...(opts.baseName ? { baseName: opts.baseName } : {}),
      ...(unpack
        ? {
            unpack: async (image) => {
              const walk = await walkImage(this.backend.content, ctx, image.target, platforms);
              if (walk.manifests.length === 0) {
                opts.onWarning?.(
                  `not unpacking ${image.target.digest}: it has no manifest for ${formatPlatform(host)}`,
                );
                return;
              }
              await unpackImage(this.backend, ctx, image.target, {
                snapshotter,
                platforms,
                discardLayers,
                ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
              });
            },
          }
        : {}),
    });
    // The discarded layers lose their last reference only now; collect them before returning, as pull does.
    if (unpack && discardLayers) await this.#collectDiscarded();
    return result;
  }

  /** Unpack an image in the store into a snapshotter, fetching layers it lacks. */
  async unpack(name: string, opts: UnpackOptions = {}) {
    const { fetchMissingFor } = await import('./fetching.ts');
    const { unpackImage } = await import('../images/unpack.ts');
    const ctx = this.ctx(opts);
    const { target, name: shown } = await this.#resolve(ctx, name);
    const { snapshotter, discardLayers } = this.#unpackChoice(opts);
    const platforms = selector(opts);
    const results = await unpackImage(this.backend, ctx, target, {
      snapshotter,
      platforms,
      discardLayers,
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      fetchMissing: fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log),
    });
    if (discardLayers) await this.#collectDiscarded();
    return { name: shown, snapshotter, results };
  }

  /** Write an image's root filesystem into a new or empty directory (no snapshotter, no root needed). */
  async extract(name: string, dir: string, opts: ExtractOptions = {}) {
    const { fetchMissingFor } = await import('./fetching.ts');
    const [{ extractImage }, { holdLease }] = await Promise.all([
      import('../images/extract.ts'),
      import('../leases/keeper.ts'),
    ]);
    const ctx = this.ctx(opts);
    const { target, name: shown } = await this.#resolve(ctx, name);
    const platforms = selector(opts);
    // The lease keeps fetched layers from a concurrent GC until they are extracted.
    const lease = await holdLease(this.backend.leases, ctx, {
      purpose: 'extract',
      ref: target.digest,
      expiryMs: 3600_000,
    });
    try {
      const lctx: Context = { ...ctx, lease: lease.id };
      await fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log)(lctx);
      const r = await extractImage(this.backend, lctx, target, dir, {
        platforms,
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      });
      return { name: shown, ...r };
    } finally {
      await lease.release();
    }
  }

  /** Convert layer compression and/or Docker → OCI media types into a new name (may equal the source). */
  async convert(source: string, destination: string, opts: ConvertOptions = {}) {
    const { fetchMissingFor } = await import('./fetching.ts');
    const [{ convertImage }, { formatReference, parseDockerRef }, { rebuildFromSnapshots }] =
      await Promise.all([
        import('../convert/convert.ts'),
        import('../core/reference.ts'),
        import('./rebuild.ts'),
      ]);
    if (!opts.compression && !opts.oci)
      throw invalidArgument('nothing to convert', 'give a compression (zstd, gzip, none) and/or OCI');
    const level = opts.zstdLevel;
    if (level !== undefined && !(Number.isInteger(level) && level >= 1 && level <= 22))
      throw invalidArgument(`invalid zstd compression level ${opts.zstdLevel}: use 1 to 22`);
    const ctx = this.ctx(opts);
    const { target } = await this.#resolve(ctx, source);
    const name = formatReference(parseDockerRef(destination));
    const platforms = selector(opts);
    const result = await convertImage(this.backend, ctx, target, name, {
      platforms,
      ...(opts.compression ? { compression: opts.compression } : {}),
      ...(opts.zstdLevel !== undefined ? { zstdLevel: opts.zstdLevel } : {}),
      oci: opts.oci === true,
      fetchMissing: fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log),
      ...(opts.rebuildFromSnapshots ? { rebuildLayer: rebuildFromSnapshots(this.backend) } : {}),
    });
    return { name, ...result };
  }

  /**
   * A writable snapshot `key` on top of an image (`from`, unpacked first if needed) or of a committed
   * snapshot (`parent`); returns the mounts that give its tree. `commit` later makes an image of it.
   */
  async prepare(key: string, opts: PrepareOptions = {}): Promise<Mount[]> {
    const { fetchMissingFor } = await import('./fetching.ts');
    const [{ unpackImage }, { BaseLabels, manifestFor }, { Labels }] = await Promise.all([
      import('../images/unpack.ts'),
      import('../images/commit.ts'),
      import('../core/labels.ts'),
    ]);
    const ctx = this.ctx(opts);
    const sn = await this.snapshotter(opts.snapshotter);
    const labels: Record<string, string> = { [Labels.gcRoot]: 'prepared' };
    let top = opts.parent;
    if (opts.from) {
      if (opts.parent) throw invalidArgument('give a parent snapshot or an image to start from, not both');
      const { target } = await this.#resolve(ctx, opts.from);
      const platforms = opts.platform ? selector(opts) : onePlatform(hostPlatform());
      const [u] = await unpackImage(this.backend, ctx, target, {
        snapshotter: sn.name,
        platforms,
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
        fetchMissing: fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log),
      });
      top = u!.chainId || undefined;
      labels[BaseLabels.image] = target.digest;
      labels[BaseLabels.manifest] = (await manifestFor(this.backend, ctx, target, platforms)).digest;
    }
    return sn.prepare(ctx, key, top, { labels });
  }

  /** A new image `name` from the changes in a snapshot made by `prepare` with `from`. */
  async commit(key: string, name: string, opts: CommitOptions = {}) {
    const [{ commitSnapshot }, { normalizeName }] = await Promise.all([
      import('../images/commit.ts'),
      import('../images/resolve.ts'),
    ]);
    const sn = await this.snapshotter(opts.snapshotter);
    const full = normalizeName(name);
    const r = await commitSnapshot(this.backend, this.ctx(opts), sn, key, full, {
      ...(opts.message ? { message: opts.message } : {}),
      ...(opts.author ? { author: opts.author } : {}),
    });
    return { name: full, ...r };
  }

  /** Mount an image read-only at `dir` (root only); `unmount(dir)` undoes it. */
  async mount(name: string, dir: string, opts: MountOptions = {}): Promise<void> {
    const { fetchMissingFor } = await import('./fetching.ts');
    const { assertCanMount, mountImage } = await import('./mounts.ts');
    assertCanMount();
    const ctx = this.ctx(opts);
    const { target } = await this.#resolve(ctx, name);
    const sn = await this.snapshotter(opts.snapshotter);
    const platforms = onePlatform(opts.platform ? parsePlatform(opts.platform) : hostPlatform());
    await mountImage(this.backend, ctx, sn, target, dir, platforms, {
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      fetchMissing: fetchMissingFor(this.backend, this.config, target, platforms, opts, this.log),
    });
  }

  /** Unmount a directory mounted by `mount` and drop its view (in `snapshotter`, or whichever has it). */
  async unmount(dir: string, opts: { snapshotter?: string } = {}): Promise<void> {
    const { unmountImage } = await import('./mounts.ts');
    await unmountImage(this.backend, this.ctx(), dir, opts.snapshotter);
  }
}
