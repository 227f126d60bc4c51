// `hoist image inspect`: everything known about one image, docker-like JSON with every name.
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import { formatPlatform } from '../core/platform.ts';
import { familiarRepository, familiarString } from '../core/reference.ts';
import { resolveImage } from './resolve.ts';
import { summarize } from './summary.ts';

export async function inspectImage(
  backend: Backend,
  ctx: Context,
  input: string,
): Promise<Record<string, unknown>> {
  const { group } = await resolveImage(backend.images, ctx, input);
  const target = group.names[0]!.record.target;
  const s = await summarize(backend.content, ctx, target);
  const p = s.primary;
  const cfg = p?.imageConfig;
  return {
    Id: group.target,
    RepoTags: group.names.filter((n) => n.kind === 'tag').map((n) => familiarString(n.ref!)),
    // docker's `repo@digest` for each repository the image is named in (by tag or by digest), the
    // digest the image's manifest or index has there, once each.
    RepoDigests: [
      ...new Set(
        group.names
          .filter((n) => n.kind === 'tag' || n.kind === 'digest')
          .map((n) => `${familiarRepository(n.ref!)}@${n.ref!.digest ?? group.target}`),
      ),
    ],
    Names: group.names.map((n) => n.name),
    Target: target,
    ConfigDigest: p?.config.digest,
    Created: p?.created?.toISOString() ?? cfg?.created,
    Os: cfg?.os,
    Architecture: cfg?.architecture,
    Variant: cfg?.variant,
    // docker's Size: the unpacked layers' bytes (null when not unpacked here); BlobSize: the blobs'.
    Size: p?.unpackedSize ?? null,
    BlobSize: p?.size,
    Platforms: s.platforms.map((x) => ({
      Platform: formatPlatform(x.platform),
      Manifest: x.manifest.digest,
      Config: x.config.digest,
      Size: x.unpackedSize ?? null,
      BlobSize: x.size,
      Layers: x.layers.map((l) => ({ MediaType: l.mediaType, Digest: l.digest, Size: l.size })),
    })),
    Config: cfg?.config,
    RootFS: cfg?.rootfs,
    Labels: Object.fromEntries(group.names.map((n) => [n.name, n.record.labels])),
    CreatedAt: group.createdAt.toISOString(),
  };
}
