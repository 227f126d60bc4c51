// `hoist load`: read an image archive (Docker's in every format it has written, OCI layout tars, skopeo's
// docker-archive and oci-archive, `ctr images export`; plain, gzip or zstd) into the store. Everything is
// written under one lease and image names are created only once every blob is verified and every tree is
// complete; on any error the lease goes, its content is collected, and no name was touched.
import type { Readable } from 'node:stream';
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { type Digest, sha256 } from '../core/digest.ts';
import { invalidArgument } from '../core/errors.ts';
import { parseDockerRef, parseReference } from '../core/reference.ts';
import { CRI_NAMESPACE, criLabels, criNames } from '../images/cri-names.ts';
import { upsertImage } from '../images/pull.ts';
import { holdLease } from '../leases/keeper.ts';
import { writeBlob } from '../metadata/write-blob.ts';
import { ArchiveImages, type LoadCandidate } from './build.ts';
import { type ArchiveCompression, decompressArchive } from './decompress.ts';
import { idName } from './load-names.ts';
import { type SpooledBlob, spoolArchive } from './spool.ts';

export interface LoadedImage {
  target: Descriptor;
  /** Image records created or moved for it (empty when an existing record already names the target). */
  names: string[];
  configs: Digest[];
  /** The archive gave it no name: it is kept under its ID and listed as `<none>`. */
  nameless: boolean;
}

export interface LoadResult {
  images: LoadedImage[];
  compression: ArchiveCompression;
  /** Blobs the archive carried (including ones the store already had). */
  blobs: number;
  bytes: number;
}

export interface LoadOptions {
  /** Called for each image once all names exist (the CLI unpacks here); its errors propagate. */
  unpack?: (image: LoadedImage) => Promise<void>;
  /** ctr's `--base-name`: a bare `org.opencontainers.image.ref.name` tag becomes `<base>:<tag>`. */
  baseName?: string;
  /** How long the load's data outlives a crashed hoist (default 1 hour). */
  leaseExpiryMs?: number;
  /** Create the CRI's names (default: when the namespace is k8s.io). */
  criNames?: boolean;
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

function checkBaseName(base: string): void {
  const ref = parseReference(base);
  if (ref.tag !== undefined || ref.digest !== undefined)
    throw invalidArgument(
      `invalid base name ${JSON.stringify(base)}: give a repository without tag or digest`,
    );
}

async function createNames(
  backend: Backend,
  ctx: Context,
  candidates: LoadCandidate[],
  opts: LoadOptions,
): Promise<LoadedImage[]> {
  const useCri = opts.criNames ?? ctx.namespace === CRI_NAMESPACE;
  const labels = useCri ? criLabels(false) : {};
  const out: LoadedImage[] = [];
  for (const c of candidates) {
    const config = c.configs.length === 1 ? c.configs[0] : undefined;
    let names: string[];
    if (c.names.length > 0) {
      names = useCri
        ? c.names.flatMap((n) => criNames(parseDockerRef(n), c.target, config).reverse())
        : c.names;
    } else {
      const existing = await backend.images.listByTarget(ctx, c.target.digest);
      // In k8s.io the ID name is `sha256:<config>`, as the CRI makes it; elsewhere the target, hoist's ID.
      names = existing.length > 0 ? [] : [useCri && config ? config : idName(c.target.digest)];
    }
    names = [...new Set(names)];
    for (const name of names) await upsertImage(backend, ctx, { name, target: c.target, labels });
    out.push({ target: c.target, names, configs: c.configs, nameless: c.names.length === 0 });
  }
  return out;
}

export async function loadArchive(
  backend: Backend,
  ctx: Context,
  input: Readable,
  opts: LoadOptions = {},
): Promise<LoadResult> {
  if (opts.baseName) checkBaseName(opts.baseName);
  const lease = await holdLease(backend.leases, ctx, {
    purpose: 'load',
    expiryMs: opts.leaseExpiryMs ?? 3600_000,
  });
  const lctx: Context = { ...ctx, lease: lease.id };
  const refPrefix = `load-${lease.id}`;
  const refs: string[] = [];
  let docs = 0;
  const writeDoc = async (bytes: Buffer): Promise<SpooledBlob> => {
    const ref = `${refPrefix}-doc-${docs++}`;
    refs.push(ref);
    const r = await writeBlob(backend.content, lctx, ref, once(bytes), {
      digest: sha256(bytes),
      size: bytes.length,
    });
    return { digest: r.digest, size: r.size, head: bytes.subarray(0, 8) };
  };
  let result: LoadResult;
  try {
    const { stream, compression } = await decompressArchive(input);
    const contents = await spoolArchive(backend.content, lctx, stream, {
      refPrefix,
      onRef: (r) => refs.push(r),
    });
    const candidates = await new ArchiveImages(backend.content, lctx, contents, {
      ...(opts.baseName ? { baseName: opts.baseName } : {}),
      writeDoc,
    }).build();
    const images = await createNames(backend, ctx, candidates, opts);
    let bytes = 0;
    for (const b of contents.digests.values()) bytes += b.size;
    result = { images, compression, blobs: contents.digests.size, bytes };
  } catch (err) {
    input.destroy();
    for (const ref of refs) await backend.content.abort(lctx, ref).catch(() => undefined);
    await lease.release().catch(() => undefined);
    // Give the disk back now rather than at the next prune: a failed 10 GB load should not linger.
    await backend.collectGarbage().catch(() => undefined);
    throw err;
  }
  await lease.release();
  if (opts.unpack) for (const image of result.images) await opts.unpack(image);
  return result;
}
