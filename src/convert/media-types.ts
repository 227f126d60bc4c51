// Target media types for a conversion: OCI or Docker schema 2 documents, and layer types by compression.
import { HoistError } from '../core/errors.ts';
import { type Compression, MediaType } from '../core/mediatypes.ts';

export type ImageFormat = 'oci' | 'docker';

export function formatOf(mediaType: string): ImageFormat {
  return mediaType.startsWith('application/vnd.docker.') ? 'docker' : 'oci';
}

const OCI_LAYER: Record<Compression, string> = {
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
  none: MediaType.OciLayer,
};
const DOCKER_LAYER: Record<Compression, string> = {
  gzip: MediaType.DockerLayerGzip,
  zstd: MediaType.DockerLayerZstd,
  none: MediaType.DockerLayer,
};

/** Non-distributable (foreign) layers keep that property in OCI; Docker has only the gzip form. */
export function layerMediaType(c: Compression, format: ImageFormat, source: string): string {
  if (format === 'oci' && source.includes('nondistributable')) {
    return {
      gzip: MediaType.OciLayerNondistributableGzip,
      zstd: MediaType.OciLayerNondistributableZstd,
      none: MediaType.OciLayerNondistributable,
    }[c];
  }
  if (source === MediaType.DockerForeignLayerGzip && format === 'docker') {
    if (c !== 'gzip')
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        'a Docker foreign layer can only be gzip; add --oci to convert it',
      );
    return source;
  }
  return (format === 'oci' ? OCI_LAYER : DOCKER_LAYER)[c];
}

export function manifestMediaType(format: ImageFormat): string {
  return format === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest;
}

export function indexMediaType(format: ImageFormat): string {
  return format === 'oci' ? MediaType.OciIndex : MediaType.DockerManifestList;
}

export function configMediaType(format: ImageFormat): string {
  return format === 'oci' ? MediaType.OciConfig : MediaType.DockerConfig;
}
