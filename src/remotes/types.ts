// The registry client interface (containerd's remotes.Resolver / Fetcher, go-containerregistry's small
// interfaces). The implementation speaks the OCI distribution spec over undici.
import type { Readable } from 'node:stream';
import type { Descriptor } from '../core/descriptor.ts';
import type { Reference } from '../core/reference.ts';

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
}
