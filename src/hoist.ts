// hoist as a library: one object over a store — the embedded one under a root directory, or any
// containerd API endpoint (a `hoist serve` or containerd itself) — with the operations the CLI has.
// Settings come from hoist's config file as for the CLI (registries, snapshotter, leases), overridable
// per call. Every method takes the namespace the object was made for; `inNamespace` gives another view.
import type { Readable, Writable } from 'node:stream';
import type { Backend } from './api/backend.ts';
import { type HoistConfig, loadConfig, parseDuration } from './config/config.ts';
import type { Context } from './core/context.ts';
import { hostPlatform, parsePlatform } from './core/platform.ts';
import type { ProgressFn } from './images/fetch-blob.ts';
import { type ImageRow, listImages } from './images/list.ts';
import { type PullResult, pullImage } from './images/pull.ts';
import { type RemoveResult, removeImages } from './images/remove.ts';
import { tagImage } from './images/tag.ts';
import { snapshotterFor, unpackImage } from './images/unpack.ts';
import { ALL_PLATFORMS, onePlatform, walkImage } from './images/walk.ts';
import { dockerConfigCredentials } from './remotes/credentials.ts';
import { createResolver } from './remotes/resolver.ts';
import type { Resolver } from './remotes/types.ts';

export interface OpenOptions {
  /** The store directory (default: the config's `root`, /var/lib/hoist as root). */
  root?: string;
  /** Namespace (default: the config's, "default"). */
  namespace?: string;
  /** A config file to read instead of the default one. */
  config?: string;
}

export interface RegistryOptions {
  /** HTTP instead of HTTPS: true for every registry, or the hosts it applies to. */
  plainHttp?: boolean | string[];
  insecureSkipVerify?: boolean | string[];
}

export interface PullOptions extends RegistryOptions {
  /** `os/arch[/variant]` (default: this host). */
  platform?: string;
  allPlatforms?: boolean;
  /** Unpack into the snapshotter (default true). */
  unpack?: boolean;
  snapshotter?: string;
  discardUnpackedLayers?: boolean;
  /** Called per blob as it downloads, verifies and unpacks. */
  onProgress?: ProgressFn;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface SaveOptions extends RegistryOptions {
  platform?: string;
  allPlatforms?: boolean;
  signal?: AbortSignal;
}

export interface LoadOptions {
  unpack?: boolean;
  snapshotter?: string;
  signal?: AbortSignal;
}

export class Hoist {
  readonly namespace: string;
  readonly #backend: Backend;
  readonly #config: HoistConfig;

  private constructor(backend: Backend, config: HoistConfig, namespace: string) {
    this.#backend = backend;
    this.#config = config;
    this.namespace = namespace;
  }

  /** Open the embedded store (no daemon). Close it when done. */
  static async open(opts: OpenOptions = {}): Promise<Hoist> {
    const config = loadConfig({ path: opts.config });
    const { openEmbedded } = await import('./client/embedded.ts');
    return new Hoist(
      await openEmbedded(opts.root ?? config.root),
      config,
      opts.namespace ?? config.namespace,
    );
  }

  /** Talk to a `hoist serve` or a containerd over its socket. */
  static async connect(address: string, opts: Omit<OpenOptions, 'root'> = {}): Promise<Hoist> {
    const config = loadConfig({ path: opts.config });
    const { openGrpc } = await import('./client/grpc/backend.ts');
    return new Hoist(await openGrpc(address), config, opts.namespace ?? config.namespace);
  }

  /** The same store, seen in another namespace (e.g. `k8s.io`, where the CRI keeps its images). */
  inNamespace(namespace: string): Hoist {
    return new Hoist(this.#backend, this.#config, namespace);
  }

  #ctx(signal?: AbortSignal): Context {
    return signal ? { namespace: this.namespace, signal } : { namespace: this.namespace };
  }

  #resolver(opts: RegistryOptions): Resolver {
    const registry = this.#config.registry;
    return createResolver({
      plainHttp: opts.plainHttp ?? registry.plain_http,
      insecureSkipVerify: opts.insecureSkipVerify ?? registry.insecure_skip_verify,
      hostsDir: registry.config_path,
      credentials: dockerConfigCredentials(),
      concurrency: this.#config.max_concurrent_downloads,
    });
  }

  /** Pull (and by default unpack) an image; an interrupted pull of the same image resumes. */
  async pull(reference: string, opts: PullOptions = {}): Promise<PullResult> {
    const wanted = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    const unpack = opts.unpack ?? true;
    const snapshotter = opts.snapshotter ?? this.#config.snapshotter;
    const discardLayers = opts.discardUnpackedLayers ?? this.#config.discard_unpacked_layers;
    if (unpack) snapshotterFor(this.#backend, snapshotter);
    const result = await pullImage(this.#backend, this.#resolver(opts), this.#ctx(opts.signal), reference, {
      platforms: opts.allPlatforms ? ALL_PLATFORMS : onePlatform(wanted),
      leaseExpiryMs: parseDuration(this.#config.pull_lease_expiry),
      concurrency: this.#config.max_concurrent_downloads,
      ...(opts.onProgress ? { progress: opts.onProgress } : {}),
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
    });
    if (unpack && discardLayers) await this.#backend.collectGarbage();
    return result;
  }

  /** One row per tag (as `hoist images`), or every name with `all`; filters as `--filter`. */
  images(opts: { all?: boolean; filters?: string[] } = {}): Promise<ImageRow[]> {
    return listImages(this.#backend.images, this.#backend.content, this.#ctx(), opts);
  }

  /** Give the image `source` names another name. */
  async tag(source: string, target: string): Promise<void> {
    await tagImage(this.#backend.images, this.#ctx(), source, target);
  }

  /** Remove names (a name removes that name; an image ID every name of the image), then collect garbage. */
  remove(references: string[], opts: { force?: boolean } = {}): Promise<RemoveResult> {
    return removeImages(this.#backend, this.#ctx(), references, opts);
  }

  /** Write an image archive (OCI layout + Docker manifest.json) of `references` to `out`, and end it. */
  async save(references: string[], out: Writable, opts: SaveOptions = {}) {
    const { saveImages } = await import('./archive/save.ts');
    const wanted = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    return saveImages(this.#backend, this.#ctx(opts.signal), references, out, {
      platforms: opts.allPlatforms ? ALL_PLATFORMS : onePlatform(wanted),
      noFetch: true,
    });
  }

  /** Load an image archive (Docker's, OCI, skopeo's, ctr's; plain, gzip or zstd), and by default unpack it. */
  async load(input: Readable, opts: LoadOptions = {}) {
    const { loadArchive } = await import('./archive/load.ts');
    const ctx = this.#ctx(opts.signal);
    const snapshotter = opts.snapshotter ?? this.#config.snapshotter;
    const platforms = onePlatform(hostPlatform());
    const unpack = opts.unpack ?? true;
    if (unpack) snapshotterFor(this.#backend, snapshotter);
    return loadArchive(this.#backend, ctx, input, {
      ...(unpack
        ? {
            unpack: async (image) => {
              const walk = await walkImage(this.#backend.content, ctx, image.target, platforms);
              if (walk.manifests.length === 0) return;
              await unpackImage(this.#backend, ctx, image.target, { snapshotter, platforms });
            },
          }
        : {}),
    });
  }

  /** Reclaim what no image, lease or snapshot references. */
  collectGarbage() {
    return this.#backend.collectGarbage();
  }

  async close(): Promise<void> {
    await this.#backend.close();
  }
}
