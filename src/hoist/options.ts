// The options of the library's calls (src/hoist/hoist.ts). Every option has the CLI flag's meaning and,
// where the flag has one, the config file's default; a call that leaves an option out gets that default.
import type { HoistConfig } from '../config/config.ts';
import type { Logger } from '../core/log.ts';
import type { ProgressFn } from '../images/fetch-blob.ts';
import type { PushProgressFn } from '../images/push.ts';

export interface OpenOptions {
  /** The store directory (default: the config's `root`, /var/lib/hoist as root). */
  root?: string;
  /** Namespace (default: HOIST_NAMESPACE, else the config's, "default"). */
  namespace?: string;
  /** A config file to read instead of the default one, or the settings themselves. */
  config?: string | HoistConfig;
  /**
   * When a live `hoist serve` owns the store, work through its socket as the CLI does (default true): two
   * processes writing one store's snapshots behind each other's back is what the daemon's ownership rules out.
   */
  viaDaemon?: boolean;
  /**
   * Where to log what a user debugging a pull wants to see: each registry request, authentication
   * challenge and token fetch, fallbacks between hosts and to plain HTTP (debug), retries (warn), lease
   * and GC decisions (debug). Never a credential. Default: none.
   */
  log?: Logger;
}

/** Every long call stops when this is aborted (with HOIST_CANCELLED); what it wrote stays resumable. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface RegistryOptions {
  /** HTTP instead of HTTPS: true for every registry, or the hosts it applies to. */
  plainHttp?: boolean | string[];
  insecureSkipVerify?: boolean | string[];
  /** A containerd-style certs.d directory with `<host>/hosts.toml` (default: the config's). */
  hostsDir?: string;
  /** Parallel blob transfers (default: the config's `max_concurrent_downloads`). */
  maxConcurrentDownloads?: number;
}

export interface PlatformOptions {
  /** `os/arch[/variant]` (default: this host). */
  platform?: string;
  /** Every platform of a multi-platform image. */
  allPlatforms?: boolean;
}

/** What to do when the store lacks some of an image's blobs (layers discarded after unpack, lazy pulls). */
export interface FetchOptions extends RegistryOptions {
  /** Fetch them from the image's recorded sources (default true); false fails naming each missing blob. */
  fetch?: boolean;
  /** Per blob as it downloads. */
  onProgress?: ProgressFn;
}

export interface UnpackChoice {
  /** overlayfs or native (default: the config's `snapshotter`). */
  snapshotter?: string;
  /** Drop the compressed layers once unpacked (default: the config's `discard_unpacked_layers`). */
  discardUnpackedLayers?: boolean;
  /** Layers applied at once (default: the config's `max_concurrent_unpacks`). */
  maxConcurrentUnpacks?: number;
  onWarning?: (message: string) => void;
}

export interface PullOptions extends RegistryOptions, PlatformOptions, UnpackChoice, CallOptions {
  /** Unpack into the snapshotter (default true). Only the wanted platform (this host's) is unpacked. */
  unpack?: boolean;
  /** Labels for the image record. */
  labels?: Record<string, string>;
  /** Called per blob as it downloads, verifies and unpacks. */
  onProgress?: ProgressFn;
}

export interface PushOptions extends RegistryOptions, PlatformOptions, CallOptions {
  /** Fetch blobs the store lacks from where the image came from (default true). */
  fetch?: boolean;
  onProgress?: PushProgressFn;
}

export interface SaveOptions extends FetchOptions, PlatformOptions, CallOptions {}

export interface LoadOptions extends UnpackChoice, CallOptions {
  /** Unpack each image for this host (default true). */
  unpack?: boolean;
  /** Name images whose archive gives only a tag `<base>:<tag>` (ctr's --base-name). */
  baseName?: string;
}

export interface UnpackOptions extends FetchOptions, PlatformOptions, UnpackChoice, CallOptions {}

export interface ExtractOptions extends FetchOptions, PlatformOptions, CallOptions {
  onWarning?: (message: string) => void;
}

export interface ConvertOptions extends FetchOptions, PlatformOptions, CallOptions {
  compression?: 'gzip' | 'zstd' | 'none';
  /** zstd level 1-22 (default 3). */
  zstdLevel?: number;
  /** Docker media types → OCI (implied by zstd). */
  oci?: boolean;
  /** Regenerate layers that cannot be fetched from their unpacked snapshots (their diffIDs change). */
  rebuildFromSnapshots?: boolean;
}

export interface PrepareOptions extends FetchOptions, PlatformOptions, CallOptions {
  /** A committed snapshot to start from. */
  parent?: string;
  /** An image to start from (unpacked first if needed); the commit later records it as the base. */
  from?: string;
  snapshotter?: string;
  onWarning?: (message: string) => void;
}

export interface CommitOptions extends CallOptions {
  /** History comment. */
  message?: string;
  author?: string;
  snapshotter?: string;
}

export interface MountOptions extends FetchOptions, CallOptions {
  /** `os/arch[/variant]` (default: this host). */
  platform?: string;
  snapshotter?: string;
  onWarning?: (message: string) => void;
}

export interface ManifestOptions extends RegistryOptions, CallOptions {
  /** From an index, the manifest for this `os/arch[/variant]`. */
  platform?: string;
}

export interface CopyOptions extends RegistryOptions, CallOptions {
  /** Copy only this platform's manifest of an index (default: every platform, the index itself). */
  platform?: string;
}
