// The registry client interface (containerd's remotes.Resolver / Fetcher / Pusher, go-containerregistry's small
// interfaces). The implementation speaks the OCI distribution spec over Node's http client.
import type { Readable } from 'node:stream';
import type { Descriptor } from '../core/descriptor.ts';
import type { Logger } from '../core/log.ts';
import type { Reference } from '../core/reference.ts';
import type { RegistryHost } from './hosts.ts';
import type { RegistryTimeouts } from './timeouts.ts';

export interface Credentials {
  username?: string;
  password?: string;
  /** A registry token (docker config `identitytoken` / CRI `identity_token`), sent as an OAuth2 refresh token. */
  identityToken?: string;
  /** A bearer token to send as-is (CRI `registry_token`). */
  registryToken?: string;
}

export type CredentialsProvider = (host: string) => Promise<Credentials | undefined>;

export interface ResolverOptions {
  /** Use plain HTTP: true for every host, or the hosts (host[:port]) that are plain. */
  plainHttp?: boolean | string[];
  /** Skip TLS verification: true for every host, or a list of hosts. */
  insecureSkipVerify?: boolean | string[];
  /** containerd-style `certs.d` directory (`<dir>/<host>/hosts.toml`); default from config. */
  hostsDir?: string;
  credentials?: CredentialsProvider;
  /** Parallel blob downloads per resolver (default 3). */
  concurrency?: number;
  /** Attempts for idempotent requests on network errors and 5xx/429 (default 4). */
  retries?: number;
  userAgent?: string;
  signal?: AbortSignal;
  /** Connect, response-header and idle deadlines (default 30 s each; config `registry.*_timeout`). */
  timeouts?: RegistryTimeouts;
  /** Discovered peers, tried as pull-only mirrors before hosts.toml's hosts (config `[peers]`). */
  peers?: PeerMirrors;
  /** Each request, challenge, token fetch and fallback (debug); retries (warn). Never a credential. */
  log?: Logger;
}

/** Peers' registry endpoints (peers/discovery.ts): where to look for a blob before the configured hosts. */
export interface PeerMirrors {
  /** The peers to try for `digest` of an image on `registry`, best first; none when it is not mirrored. */
  forBlob(registry: string, digest: string): Promise<RegistryHost[]>;
}

export interface Resolved {
  /** The normalised reference that was resolved. */
  ref: Reference;
  /** The manifest or index the name (or digest) points to. */
  descriptor: Descriptor;
}

export interface FetchOptions {
  /** Resume: start at this byte (HTTP Range). The stream yields bytes from `offset` on. */
  offset?: number;
  signal?: AbortSignal;
  /** Ask only the upstream, not hosts.toml mirrors (a blob a mirror's bytes failed to verify). */
  skipMirrors?: boolean;
}

export interface Fetcher {
  /** Blob or manifest bytes for a descriptor, as a stream (never buffered whole). */
  fetch(desc: Descriptor, opts?: FetchOptions): Promise<Readable>;
}

export interface Resolver {
  /** Resolve a tag or digest reference to its manifest/index descriptor (HEAD, falling back to GET). */
  resolve(ref: Reference, opts?: { signal?: AbortSignal }): Promise<Resolved>;
  /** A fetcher for one repository (it tries the hosts/mirrors configured for the registry in order). */
  fetcher(ref: Reference): Fetcher;
  /** Every host tried for this registry, in order, for error messages (`mirror.example`, `registry`). */
  hostsFor(ref: Reference): string[];
  /** A pusher for one repository: the registry's host with the push capability (never a pull-only mirror). */
  pusher(ref: Reference): Pusher;
}

/** An upload session the registry opened (POST /blobs/uploads/ answered 202): where to send bytes next. */
export interface UploadSession {
  /** The session URL from the registry's `Location` (absolute; it changes after every chunk). */
  location: URL;
  /** `OCI-Chunk-Min-Length`: the smallest chunk the registry accepts, when it says. */
  minChunkSize?: number;
}

/** Result of a cross-repository mount: mounted, or not (then an upload session may already be open). */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/** Open the local blob from `offset` (a retry after a failed chunk re-opens where the registry stands). */
export type BlobOpener = (offset: number) => Promise<Readable>;

export interface PushBlobOptions {
  /** Bytes the registry has accepted so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  /** Continue this upload session (from a mount that answered 202) instead of opening one. */
  session?: UploadSession;
}

export interface Pusher {
  /** Is the blob (or manifest, by digest) already in the repository? (HEAD) */
  exists(desc: Descriptor, opts?: { signal?: AbortSignal }): Promise<boolean>;
  /** Ask the registry to mount the blob from another repository of the same registry. */
  mount(desc: Descriptor, fromRepository: string, opts?: { signal?: AbortSignal }): Promise<MountResult>;
  /** Upload a blob: one PUT when small, PATCH chunks (resumed after a failed chunk) when large. */
  pushBlob(desc: Descriptor, open: BlobOpener, opts?: PushBlobOptions): Promise<void>;
  /** PUT a manifest or index under a tag or its digest; `bytes` are sent exactly (they are the digest). */
  pushManifest(
    tagOrDigest: string,
    desc: Descriptor,
    bytes: Uint8Array,
    opts?: { signal?: AbortSignal },
  ): Promise<void>;
}
