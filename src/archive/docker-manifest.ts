// Docker's archive index, `manifest.json`: `[{Config, RepoTags, Layers}]` with paths into the archive.
// Writers disagree on key case (containerify writes `config`/`repoTags`/`layers`; Go readers accept any
// case), so keys are matched case-insensitively. Also: turning one entry into a Docker schema 2 manifest
// when the archive carries no manifest of its own (legacy `docker save`, skopeo's docker-archive).
import type { Descriptor, Manifest } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { MediaType } from '../core/mediatypes.ts';
import { documentPath } from './tar-paths.ts';

export interface DockerManifestEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

function malformed(detail: string): HoistError {
  return new HoistError('HOIST_MALFORMED_MANIFEST', `malformed manifest.json in the archive: ${detail}`, {
    hint: 'the archive is corrupt or was not written by docker, skopeo, containerd or hoist; nothing was loaded',
  });
}

function field(o: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function parseDockerManifestJson(bytes: Buffer): DockerManifestEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw malformed(`not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(doc)) throw malformed('the document is not a list');
  return doc.map((e: unknown, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e))
      throw malformed(`entry ${i} is not an object`);
    const o = e as Record<string, unknown>;
    const config = field(o, 'Config');
    if (typeof config !== 'string' || config === '') throw malformed(`entry ${i} has no Config path`);
    const tags = field(o, 'RepoTags') ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
      throw malformed(`entry ${i}: RepoTags is not a list of strings`);
    const layers = field(o, 'Layers') ?? [];
    if (!Array.isArray(layers) || layers.some((l) => typeof l !== 'string' || l === ''))
      throw malformed(`entry ${i}: Layers is not a list of paths`);
    return {
      config: documentPath(config, `manifest.json entry ${i}`),
      repoTags: tags as string[],
      layers: (layers as string[]).map((l) => documentPath(l, `manifest.json entry ${i}`)),
    };
  });
}

/** The Docker layer media type for a layer file, from its first bytes. */
export function dockerLayerMediaType(head: Buffer): string {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return MediaType.DockerLayerGzip;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return MediaType.DockerLayerZstd;
  return MediaType.DockerLayer;
}

/**
 * A Docker schema 2 manifest for a config and its layers. Field order is Go's (containerd marshals the
 * same struct), so the same archive imported by containerd and by hoist gets the same manifest digest.
 */
export function synthesizeManifest(
  config: { digest: Digest; size: number },
  layers: { digest: Digest; size: number; mediaType: string }[],
): { manifest: Manifest; bytes: Buffer } {
  const configDesc: Descriptor = {
    mediaType: MediaType.DockerConfig,
    digest: config.digest,
    size: config.size,
  };
  const layerDescs: Descriptor[] = layers.map((l) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.size,
  }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifest,
    config: configDesc,
    layers: layerDescs,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, bytes };
}
