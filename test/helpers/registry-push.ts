// Pushing test images to a plain-HTTP test registry: skopeo for OCI layouts, and direct uploads through
// the registry's HTTP API for what skopeo will not push (Docker media types in a layout, raw or
// inconsistent documents for corrupt-data tests).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BuiltBlob } from './image-builder.ts';

const run = promisify(execFile);

export interface PushOptions {
  creds?: { username: string; password: string };
  /** Convert to Docker schema 2 on the way (skopeo --format v2s2). */
  format?: 'oci' | 'v2s2';
  /** Push every platform of an index (skopeo --all). */
  all?: boolean;
  /** Tag in the layout, if different from the destination tag. */
  srcTag?: string;
}

/**
 * Push a tag of a layout to a plain-HTTP test registry: `skopeo copy oci:<dir>:<tag>
 * docker://<host>/<repo>:<tag>`. skopeo's OCI layout reader ignores index.json entries with Docker media
 * types, so those (format 'docker' images and manifest lists) are uploaded over HTTP directly (no auth or
 * Basic auth only).
 */
export async function pushLayout(
  layoutDir: string,
  ref: string,
  registryHost: string,
  opts: PushOptions = {},
): Promise<void> {
  const colon = ref.lastIndexOf(':');
  if (colon < 0) throw new Error(`pushLayout: ref ${ref} needs a tag (repo:tag)`);
  const tag = ref.slice(colon + 1);
  const srcTag = opts.srcTag ?? tag;
  const top = await layoutDescriptor(layoutDir, srcTag);
  if (top.mediaType.startsWith('application/vnd.docker.')) {
    await pushDockerTree(layoutDir, top, ref.slice(0, colon), tag, registryHost, opts);
    return;
  }
  const args = ['copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false'];
  if (opts.creds) args.push('--dest-creds', `${opts.creds.username}:${opts.creds.password}`);
  if (opts.all) args.push('--all');
  if (opts.format === 'v2s2') args.push('--format', 'v2s2');
  args.push(`oci:${layoutDir}:${srcTag}`, `docker://${registryHost}/${ref}`);
  try {
    await run('skopeo', args, { maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function layoutDescriptor(layoutDir: string, tag: string): Promise<BuiltBlob> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: (BuiltBlob & { annotations?: Record<string, string> })[];
  };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!d) throw new Error(`pushLayout: no tag ${tag} in ${layoutDir}/index.json`);
  return d;
}

async function pushDockerTree(
  layoutDir: string,
  top: BuiltBlob,
  repo: string,
  tag: string,
  registryHost: string,
  opts: PushOptions,
): Promise<void> {
  const blobPath = (digest: string) => join(layoutDir, 'blobs', 'sha256', digest.slice(7));
  const pushManifestTree = async (desc: BuiltBlob, reference: string) => {
    const bytes = await readFile(blobPath(desc.digest));
    const doc = JSON.parse(bytes.toString('utf8')) as {
      manifests?: BuiltBlob[];
      config?: BuiltBlob;
      layers?: BuiltBlob[];
    };
    for (const child of doc.manifests ?? []) await pushManifestTree(child, child.digest);
    for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])])
      await pushBlobFile(registryHost, repo, blobPath(blob.digest), blob.digest, blob.size, opts);
    await pushManifest(registryHost, repo, reference, bytes, desc.mediaType, opts);
  };
  await pushManifestTree(top, tag);
}

/** Upload a blob from a file, streamed (POST to start, then one PUT with the body). */
export async function pushBlobFile(
  registryHost: string,
  repo: string,
  file: string,
  digest: string,
  size: number,
  opts: { creds?: { username: string; password: string } } = {},
): Promise<void> {
  const start = await fetch(`http://${registryHost}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: basicHeader(opts.creds),
  });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) throw new Error(`blob upload start: HTTP ${start.status}`);
  const url = new URL(location, `http://${registryHost}`);
  url.searchParams.set('digest', digest);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'PUT',
        headers: {
          ...basicHeader(opts.creds),
          'content-type': 'application/octet-stream',
          'content-length': String(size),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    createReadStream(file).on('error', reject).pipe(req);
  });
  if (status !== 201) throw new Error(`blob upload ${digest}: HTTP ${status}`);
}

function basicHeader(creds?: { username: string; password: string }): Record<string, string> {
  return creds
    ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` }
    : {};
}

/** Upload a blob with the monolithic POST + PUT flow (no auth or Basic only). Returns its digest. */
export async function pushBlob(
  registryHost: string,
  repo: string,
  data: Buffer,
  opts: { creds?: { username: string; password: string } } = {},
): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const start = await fetch(`http://${registryHost}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: basicHeader(opts.creds),
  });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) throw new Error(`blob upload start: HTTP ${start.status}`);
  const url = new URL(location, `http://${registryHost}`);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...basicHeader(opts.creds), 'content-type': 'application/octet-stream' },
    body: data,
  });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}: ${text}`);
  return digest;
}

/** PUT a manifest document as-is (any bytes the registry accepts). Returns its digest. */
export async function pushManifest(
  registryHost: string,
  repo: string,
  reference: string,
  body: Buffer | string,
  mediaType: string,
  opts: { creds?: { username: string; password: string } } = {},
): Promise<string> {
  const bytes = Buffer.from(body);
  const res = await fetch(`http://${registryHost}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { ...basicHeader(opts.creds), 'content-type': mediaType },
    body: bytes,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`manifest upload: HTTP ${res.status}: ${text}`);
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
