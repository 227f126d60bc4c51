// OCI and Docker media types, and the small questions hoist asks of them.
import { HoistError } from './errors.ts';

export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What hoist sends in Accept when resolving a reference. */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
  '*/*;q=0.1',
].join(', ');

export type Compression = 'gzip' | 'zstd' | 'none';

export function isIndex(mt: string): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

export function isManifest(mt: string): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

export function isConfig(mt: string): boolean {
  return mt === MediaType.OciConfig || mt === MediaType.DockerConfig;
}

export function isLayer(mt: string): boolean {
  return (
    mt.startsWith('application/vnd.oci.image.layer.') ||
    mt.startsWith('application/vnd.docker.image.rootfs.') ||
    mt === 'application/vnd.in-toto+json'
  );
}

export function isSchema1(mt: string): boolean {
  return mt === MediaType.DockerSchema1Manifest || mt === MediaType.DockerSchema1SignedManifest;
}

/** Compression of a layer, from its media type. */
export function layerCompression(mt: string): Compression {
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip')) return 'gzip';
  if (mt.endsWith('+zstd') || mt.endsWith('.tar.zstd')) return 'zstd';
  return 'none';
}

export function refuseSchema1(mt: string, ref: string): never {
  throw new HoistError(
    'HOIST_UNSUPPORTED_MEDIA_TYPE',
    `${ref}: Docker image manifest schema 1 (${mt}) is not supported; it was deprecated in 2015 and removed from Docker`,
    { hint: 'rebuild and push the image with a current tool (it will use schema 2 or OCI)' },
  );
}

/** Key prefix containerd uses for ingest refs of each kind of object (remotes.MakeRefKey). */
export function refKeyPrefix(mt: string): string {
  if (isManifest(mt)) return 'manifest-';
  if (isIndex(mt)) return 'index-';
  if (isConfig(mt)) return 'config-';
  if (isLayer(mt)) return 'layer-';
  return 'unknown-';
}
