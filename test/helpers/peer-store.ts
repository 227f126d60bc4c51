// A store with images written straight into it (no registry), and its read-only registry endpoint
// (src/server/registry) on a loopback port: what the peer-mirror tests read from.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Backend } from '../../src/api/backend.ts';
import type { Digest } from '../../src/core/digest.ts';
import { sha256 } from '../../src/core/digest.ts';
import { createLogger } from '../../src/core/log.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { writeBlob } from '../../src/metadata/write-blob.ts';
import { type RegistryEndpoint, serveRegistry } from '../../src/server/registry/endpoint.ts';

export interface StoredImage {
  manifest: Buffer;
  manifestDigest: Digest;
  config: Buffer;
  layer: Buffer;
  layerDigest: Digest;
}

export interface PeerStore {
  root: string;
  backend: Backend;
  endpoint: RegistryEndpoint;
  /** `127.0.0.1:PORT` of the endpoint. */
  host: string;
  /** Write a one-layer OCI image (random layer of `layerBytes`) and name it in `namespace`. */
  addImage(namespace: string, name: string, layerBytes: number): Promise<StoredImage>;
  close(): Promise<void>;
}

async function put(backend: Backend, namespace: string, bytes: Buffer, ref: string): Promise<Digest> {
  const digest = sha256(bytes);
  await writeBlob(backend.content, { namespace }, ref, Readable.from([bytes]), {
    digest,
    size: bytes.byteLength,
  });
  return digest;
}

export async function startPeerStore(namespaces: string[] = ['k8s.io', 'default']): Promise<PeerStore> {
  const root = await mkdtemp(join(tmpdir(), 'hoist-peer-'));
  const backend = await openEmbedded(root);
  const endpoint = await serveRegistry(
    { host: '127.0.0.1', port: 0 },
    { backend, namespaces, log: createLogger('error', () => undefined) },
  );
  return {
    root,
    backend,
    endpoint,
    host: `127.0.0.1:${endpoint.address.port}`,
    async addImage(namespace, name, layerBytes) {
      const layer = randomBytes(layerBytes);
      const layerDigest = await put(backend, namespace, layer, `layer-${name}`);
      const config = Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          rootfs: { type: 'layers', diff_ids: [layerDigest] },
        }),
      );
      const configDigest = await put(backend, namespace, config, `config-${name}`);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.byteLength },
          layers: [{ mediaType: MediaType.OciLayer, digest: layerDigest, size: layer.byteLength }],
        }),
      );
      const manifestDigest = await put(backend, namespace, manifest, `manifest-${name}`);
      await backend.images.create(
        { namespace },
        {
          name,
          target: { mediaType: MediaType.OciManifest, digest: manifestDigest, size: manifest.byteLength },
          labels: {},
        },
      );
      return { manifest, manifestDigest, config, layer, layerDigest };
    },
    async close() {
      await endpoint.close();
      await backend.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
