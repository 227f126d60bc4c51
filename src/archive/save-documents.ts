// The small documents of a saved archive. One archive serves every reader:
//  - `oci-layout` + `index.json` (OCI image layout): containerd's import, skopeo's oci-archive:, Docker ≥ 25.
//    Each name is an index.json entry with `io.containerd.image.name` (the full name) and
//    `org.opencontainers.image.ref.name` (its tag), as containerd's exporter writes them.
//  - `manifest.json` (`[{Config, RepoTags, Layers}]` with paths to blobs/) and `repositories`: every
//    `docker load`, and skopeo's docker-archive:. Docker's format has one manifest per image, so an index
//    contributes the manifest that best fits this host (the first selected one otherwise).
// Documents are built from plain objects with fixed key order and no timestamps: same images, same bytes.
import type { Descriptor } from '../core/descriptor.ts';
import { digestHex } from '../core/digest.ts';
import { isConfig, isLayer, MediaType } from '../core/mediatypes.ts';
import { hostPlatform, platformRank } from '../core/platform.ts';
import { familiarRepository, familiarString, parseReference, type Reference } from '../core/reference.ts';
import type { PlatformManifest } from '../images/walk.ts';
import { IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION } from './load-names.ts';

export interface SaveEntry {
  target: Descriptor;
  /** Full record names to carry (tags and digest names); empty: saved without a name. */
  names: string[];
  /** The selected manifests of the image, as walked. */
  manifests: PlatformManifest[];
}

export function blobPath(d: Descriptor): string {
  return `blobs/${d.digest.slice(0, d.digest.indexOf(':'))}/${digestHex(d.digest)}`;
}

export const OCI_LAYOUT = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

function tagRef(name: string): Reference | undefined {
  try {
    const ref = parseReference(name);
    return ref.tag !== undefined && ref.digest === undefined ? ref : undefined;
  } catch {
    return undefined;
  }
}

export function indexJson(entries: SaveEntry[]): Buffer {
  const manifests: Record<string, unknown>[] = [];
  for (const e of entries) {
    const base = { mediaType: e.target.mediaType, digest: e.target.digest, size: e.target.size };
    if (e.names.length === 0) manifests.push(base);
    for (const name of e.names) {
      const annotations: Record<string, string> = { [IMAGE_NAME_ANNOTATION]: name };
      const tag = tagRef(name)?.tag;
      if (tag !== undefined) annotations[REF_NAME_ANNOTATION] = tag;
      manifests.push({ ...base, annotations });
    }
  }
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}

/** The manifest Docker's manifest.json describes for an image, if any can be (image configs and layers). */
export function dockerManifestFor(entry: SaveEntry): PlatformManifest | undefined {
  const usable = entry.manifests.filter(
    (m) => isConfig(m.manifest.config.mediaType) && m.manifest.layers.every((l) => isLayer(l.mediaType)),
  );
  const host = hostPlatform();
  let best: PlatformManifest | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const m of usable) {
    const rank = m.desc.platform ? platformRank(host, m.desc.platform) : Number.POSITIVE_INFINITY;
    if (best === undefined || rank < bestRank) {
      best = m;
      bestRank = rank;
    }
  }
  return best;
}

interface DockerEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** manifest.json and repositories, or undefined when no image can be described Docker's way. */
export function dockerDocuments(
  entries: SaveEntry[],
): { manifestJson: Buffer; repositories: Buffer } | undefined {
  const byConfig = new Map<string, DockerEntry>();
  const repositories: Record<string, Record<string, string>> = {};
  for (const e of entries) {
    const m = dockerManifestFor(e);
    if (!m) continue;
    const config = m.manifest.config;
    let entry = byConfig.get(config.digest);
    if (!entry) {
      entry = { Config: blobPath(config), RepoTags: [], Layers: m.manifest.layers.map(blobPath) };
      byConfig.set(config.digest, entry);
    }
    for (const name of e.names) {
      const ref = tagRef(name);
      if (!ref) continue;
      const familiar = familiarString(ref);
      if (!entry.RepoTags.includes(familiar)) entry.RepoTags.push(familiar);
      const repo = familiarRepository(ref);
      repositories[repo] ??= {};
      repositories[repo][ref.tag!] = digestHex(config.digest);
    }
  }
  if (byConfig.size === 0) return undefined;
  return {
    manifestJson: Buffer.from(JSON.stringify([...byConfig.values()])),
    repositories: Buffer.from(JSON.stringify(repositories)),
  };
}
