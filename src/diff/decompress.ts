// The decompressor for a layer, chosen by its media type (never by sniffing bytes: the media type is
// what the manifest, and so the digest, vouches for).
import type { Transform } from 'node:stream';
import { zlib } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';
import { type Compression, MediaType } from '../core/mediatypes.ts';

const LAYER_COMPRESSION: ReadonlyMap<string, Compression> = new Map<string, Compression>([
  [MediaType.OciLayer, 'none'],
  [MediaType.OciLayerGzip, 'gzip'],
  [MediaType.OciLayerZstd, 'zstd'],
  [MediaType.OciLayerNondistributable, 'none'],
  [MediaType.OciLayerNondistributableGzip, 'gzip'],
  [MediaType.OciLayerNondistributableZstd, 'zstd'],
  [MediaType.DockerLayer, 'none'],
  [MediaType.DockerLayerGzip, 'gzip'],
  [MediaType.DockerLayerZstd, 'zstd'],
  [MediaType.DockerForeignLayerGzip, 'gzip'],
]);

/** The compression of a layer media type hoist can apply; throws for anything else. */
export function layerCompressionOf(mediaType: string): Compression {
  const c = LAYER_COMPRESSION.get(mediaType);
  if (c === undefined) {
    throw new HoistError(
      'HOIST_UNSUPPORTED_MEDIA_TYPE',
      `cannot apply a layer of media type ${JSON.stringify(mediaType)}: hoist applies tar layers compressed with gzip, zstd or nothing`,
      {
        hint: 'the image uses a layer format hoist does not know (e.g. encrypted or estargz-only); convert it first',
      },
    );
  }
  return c;
}

/** A fresh decompressing stream for the media type, or null when the layer is a plain tar. */
export function decompressorFor(mediaType: string, chunkSize = 64 * 1024): Transform | null {
  switch (layerCompressionOf(mediaType)) {
    case 'gzip':
      // Layers may be several gzip members concatenated (pigz, some builders); gunzip reads them all.
      return zlib().createGunzip({ chunkSize });
    case 'zstd':
      return zlib().createZstdDecompress({ chunkSize });
    default:
      return null;
  }
}
