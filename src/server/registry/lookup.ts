// What a peer asks for, found in the store: a repository name (with containerd's `?ns=<registry>`) and a
// tag or digest become a manifest descriptor; a digest becomes a committed blob. Only the configured
// namespaces are searched, in order. Reads only: the content and image tables are read without the write
// queue, so a peer's pull never waits behind (or holds up) the node's own writers.
import type { Backend } from '../../api/backend.ts';
import type { ContentInfo } from '../../api/content.ts';
import type { Context } from '../../core/context.ts';
import { MAX_DOCUMENT_BYTES } from '../../core/descriptor.ts';
import { type Digest, isDigest } from '../../core/digest.ts';
import { isNotFound } from '../../core/errors.ts';
import { isIndex, isManifest, MediaType } from '../../core/mediatypes.ts';
import { DistributionError } from './errors.ts';

/** The spec's repository name grammar, with a `host[:port]` first component allowed (see imageNames). */
const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface Found {
  namespace: string;
  digest: Digest;
  size: number;
  mediaType: string;
}

/**
 * The image record names a tag may be stored under. containerd asks a mirror for `/v2/library/alpine/…
 * ?ns=docker.io`: the record is `docker.io/library/alpine:<tag>`. Without `ns` the name is the full
 * reference when its first component is a registry host (`/v2/docker.io/library/alpine/…`, as skopeo
 * reaches this endpoint directly), else a Docker Hub name.
 */
export function imageNames(name: string, tag: string, ns: string | undefined): string[] {
  if (ns) return [`${ns}/${name}:${tag}`];
  const first = name.split('/')[0] ?? '';
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  if (isHost && name.includes('/')) return [`${name}:${tag}`];
  return [`docker.io/${name.includes('/') ? name : `library/${name}`}:${tag}`];
}

export function checkName(name: string): void {
  if (!NAME.test(name) || name.length > 255)
    throw new DistributionError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
}

export function checkDigest(reference: string): Digest {
  if (!isDigest(reference))
    throw new DistributionError('DIGEST_INVALID', `invalid digest ${JSON.stringify(reference)}`);
  return reference;
}

/** A manifest's media type from its own bytes (content records keep no media type). */
export function documentMediaType(body: Buffer): string | undefined {
  let doc: { mediaType?: unknown; manifests?: unknown; layers?: unknown; schemaVersion?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || doc.schemaVersion !== 2) return undefined;
  if (typeof doc.mediaType === 'string') {
    return isManifest(doc.mediaType) || isIndex(doc.mediaType) ? doc.mediaType : undefined;
  }
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (Array.isArray(doc.layers)) return MediaType.OciManifest;
  return undefined;
}

export class StoreLookup {
  #backend: Backend;
  #namespaces: readonly string[];

  constructor(backend: Backend, namespaces: readonly string[]) {
    this.#backend = backend;
    this.#namespaces = namespaces;
  }

  #ctx(namespace: string, signal?: AbortSignal): Context {
    return signal ? { namespace, signal } : { namespace };
  }

  /** A committed blob in one of the namespaces (ingests in progress have no record, so are never served). */
  async blob(digest: Digest): Promise<{ namespace: string; info: ContentInfo } | undefined> {
    for (const namespace of this.#namespaces) {
      try {
        return { namespace, info: await this.#backend.content.info(this.#ctx(namespace), digest) };
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return undefined;
  }

  /** The manifest or index a tag or digest names, or MANIFEST_UNKNOWN / NAME_UNKNOWN. */
  async manifest(name: string, reference: string, ns: string | undefined): Promise<Found> {
    if (isDigest(reference)) return this.#manifestByDigest(name, reference);
    if (reference.startsWith('sha') && reference.includes(':')) checkDigest(reference);
    if (!TAG.test(reference))
      throw new DistributionError('MANIFEST_UNKNOWN', `invalid tag ${JSON.stringify(reference)}`);
    const names = imageNames(name, reference, ns);
    for (const namespace of this.#namespaces) {
      for (const imageName of names) {
        try {
          const image = await this.#backend.images.get(this.#ctx(namespace), imageName);
          const t = image.target;
          if (!isManifest(t.mediaType) && !isIndex(t.mediaType)) continue;
          // The record may outlive its content (a GC race, a half-pulled image): only what is here.
          if (!(await this.blob(t.digest))) continue;
          return { namespace, digest: t.digest, size: t.size, mediaType: t.mediaType };
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    if (!(await this.#repositoryKnown(names))) {
      throw new DistributionError('NAME_UNKNOWN', `repository ${JSON.stringify(name)} is not known here`, {
        name,
      });
    }
    throw new DistributionError(
      'MANIFEST_UNKNOWN',
      `manifest ${JSON.stringify(reference)} is not known here`,
      {
        name,
        tag: reference,
      },
    );
  }

  async #manifestByDigest(name: string, digest: Digest): Promise<Found> {
    const found = await this.blob(digest);
    const unknown = () =>
      new DistributionError('MANIFEST_UNKNOWN', `manifest ${digest} is not known here`, { name, digest });
    if (!found || found.info.size > MAX_DOCUMENT_BYTES) throw unknown();
    let body: Buffer;
    try {
      body = await this.#backend.content.readBlob(this.#ctx(found.namespace), digest, MAX_DOCUMENT_BYTES);
    } catch (err) {
      if (isNotFound(err)) throw unknown();
      throw err;
    }
    const mediaType = documentMediaType(body);
    if (!mediaType) throw unknown();
    return { namespace: found.namespace, digest, size: found.info.size, mediaType };
  }

  /** The tags of image records named `<prefix><tag>` in the namespaces, sorted and unique. */
  async tags(prefix: string): Promise<string[]> {
    const tags = new Set<string>();
    for (const namespace of this.#namespaces) {
      for (const image of await this.#backend.images.list(this.#ctx(namespace))) {
        const tag = image.name.startsWith(prefix) ? image.name.slice(prefix.length) : undefined;
        if (tag && TAG.test(tag)) tags.add(tag);
      }
    }
    return [...tags].sort();
  }

  /** Does any image in the namespaces carry this repository (names differ from `names` in the tag only)? */
  async #repositoryKnown(names: string[]): Promise<boolean> {
    const repos = names.map((n) => n.slice(0, n.lastIndexOf(':') + 1));
    for (const namespace of this.#namespaces) {
      const images = await this.#backend.images.list(this.#ctx(namespace));
      if (images.some((i) => repos.some((r) => i.name.startsWith(r)))) return true;
    }
    return false;
  }
}
