// `hoist save`: images out as one tar that docker, containerd and skopeo all read (save-documents.ts says
// how). First every image must be whole: missing blobs are fetched through `ensure` (the caller's
// re-fetch from the image's distribution sources) or the save fails naming each one, before a single byte
// is written. Then blobs stream from the content store into the tar one at a time (no temporary copies;
// memory stays bounded whatever the layer size). Entries are in sorted path order with fixed headers
// (mtime 0, uid/gid 0, modes 0755/0644, no user names), so the same images give byte-identical archives.
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { HoistError, invalidArgument } from '../core/errors.ts';
import { isIndex } from '../core/mediatypes.ts';
import { formatPlatform } from '../core/platform.ts';
import { checkContent } from '../images/missing.ts';
import { resolveImage } from '../images/resolve.ts';
import type { PlatformSelector } from '../images/walk.ts';
import { holdLease } from '../leases/keeper.ts';
import { blobPath, dockerDocuments, indexJson, OCI_LAYOUT, type SaveEntry } from './save-documents.ts';

export interface SaveOptions {
  platforms: PlatformSelector;
  /** Do not call `ensure`: fail on missing content instead of fetching it. */
  noFetch?: boolean;
  /**
   * Make the image whole (fetch missing blobs); throws naming what it could not get. `ctx` carries the
   * save's lease, so what it fetches stays until the archive is written.
   */
  ensure?: (target: Descriptor, ctx: Context) => Promise<void>;
}

export interface SaveResult {
  images: { target: Descriptor; names: string[] }[];
  blobs: number;
  bytes: number;
}

const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };

interface FileEntry {
  path: string;
  size: number;
  data?: Buffer;
  blob?: Descriptor;
}

function platformText(sel: PlatformSelector): string {
  return sel.kind === 'all' ? 'any platform' : formatPlatform(sel.platform);
}

/** Resolve names to images, merging names of the same image; names given as IDs carry every name. */
async function resolveEntries(backend: Backend, ctx: Context, inputs: string[]) {
  const byTarget = new Map<string, { target: Descriptor; names: string[]; input: string }>();
  for (const input of inputs) {
    const r = await resolveImage(backend.images, ctx, input);
    const rec = r.group.names[0]!.record;
    const names = r.name
      ? [r.name]
      : r.group.names.filter((n) => n.kind === 'tag' || n.kind === 'digest').map((n) => n.name);
    const have = byTarget.get(r.group.target);
    if (have) {
      for (const n of names) if (!have.names.includes(n)) have.names.push(n);
      continue;
    }
    const target: Descriptor = {
      mediaType: rec.target.mediaType,
      digest: rec.target.digest,
      size: rec.target.size,
    };
    byTarget.set(r.group.target, { target, names, input });
  }
  return [...byTarget.values()];
}

/** Everything the archive will hold, checked complete. */
export async function planSave(
  backend: Backend,
  ctx: Context,
  inputs: string[],
  opts: SaveOptions,
): Promise<{ entries: SaveEntry[]; blobs: Descriptor[] }> {
  if (inputs.length === 0) throw invalidArgument('save needs at least one image name or ID');
  const resolved = await resolveEntries(backend, ctx, inputs);
  const entries: SaveEntry[] = [];
  const blobs = new Map<string, Descriptor>();
  const missing: string[] = [];
  const sources = new Set<string>();
  for (const r of resolved) {
    if (opts.ensure && !opts.noFetch) await opts.ensure(r.target, ctx);
    const presence = await checkContent(backend.content, ctx, r.target, opts.platforms);
    for (const [host, repos] of presence.sources) for (const repo of repos) sources.add(`${host}/${repo}`);
    for (const d of presence.missing)
      missing.push(`${d.digest}  ${d.mediaType}  ${d.size} bytes  (${r.input})`);
    if (presence.missing.length === 0 && presence.walk.manifests.length === 0)
      throw new HoistError(
        'HOIST_NOT_FOUND',
        `${r.input}: no manifest for ${platformText(opts.platforms)} in the image${isIndex(r.target.mediaType) ? '' : ' (it is not an image manifest)'}`,
        { hint: 'choose one with --platform, or save every platform with --all-platforms' },
      );
    for (const d of presence.required) if (!blobs.has(d.digest)) blobs.set(d.digest, d);
    entries.push({ target: r.target, names: r.names, manifests: presence.walk.manifests });
  }
  if (missing.length > 0) {
    const from = [...sources].sort();
    throw new HoistError(
      'HOIST_NOT_FOUND',
      `cannot save: ${missing.length} blob${missing.length === 1 ? ' is' : 's are'} missing from the store:\n${missing.map((m) => `  ${m}`).join('\n')}\n` +
        (from.length > 0
          ? `  distribution sources: ${from.join(', ')}`
          : '  no distribution source is recorded for them'),
      {
        hint: opts.noFetch
          ? 'run without --no-fetch to fetch them from their sources'
          : from.length > 0
            ? 'the sources could not provide them; check the registry is reachable, then try again'
            : 'pull the image again to make it complete',
      },
    );
  }
  return { entries, blobs: [...blobs.values()] };
}

function waitDrain(sink: tar.Pack | ReturnType<tar.Pack['entry']>): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      sink.off('drain', onDrain);
      sink.off('error', onError);
      sink.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (err: unknown) => done(err);
    const onClose = () => done(new Error('archive output closed'));
    sink.on('drain', onDrain);
    sink.on('error', onError);
    sink.on('close', onClose);
  });
}

async function writeFile(pack: tar.Pack, backend: Backend, ctx: Context, f: FileEntry): Promise<void> {
  const header = { ...FIXED, name: f.path, size: f.size, mode: 0o644, type: 'file' as const };
  let finished!: Promise<void>;
  let sink!: ReturnType<tar.Pack['entry']>;
  if (f.data) {
    finished = new Promise<void>((resolve, reject) => {
      sink = pack.entry(header, f.data!, (err) => (err ? reject(err) : resolve()));
    });
    return finished;
  }
  const reader = await backend.content.reader(ctx, f.blob!.digest);
  finished = new Promise<void>((resolve, reject) => {
    sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  finished.catch(() => undefined);
  try {
    for await (const chunk of reader) {
      ctx.signal?.throwIfAborted();
      if (!sink.write(chunk)) await waitDrain(sink);
    }
    sink.end(undefined);
  } catch (err) {
    reader.destroy();
    sink.destroy(err as Error);
    throw err;
  }
  await finished;
}

/** Write the archive of `inputs` to `out` (which it ends). Nothing is written if an image is incomplete. */
export async function saveImages(
  backend: Backend,
  ctx: Context,
  inputs: string[],
  out: Writable,
  opts: SaveOptions,
): Promise<SaveResult> {
  // A lease keeps what `ensure` fetches (e.g. re-fetched discarded layers) until the archive is written.
  const lease =
    opts.ensure && !opts.noFetch
      ? await holdLease(backend.leases, ctx, { purpose: 'save', expiryMs: 3600_000 })
      : undefined;
  try {
    return await writeArchive(backend, lease ? { ...ctx, lease: lease.id } : ctx, inputs, out, opts);
  } finally {
    await lease?.release();
  }
}

async function writeArchive(
  backend: Backend,
  ctx: Context,
  inputs: string[],
  out: Writable,
  opts: SaveOptions,
): Promise<SaveResult> {
  const plan = await planSave(backend, ctx, inputs, opts);
  const files: FileEntry[] = plan.blobs.map((d) => ({ path: blobPath(d), size: d.size, blob: d }));
  const add = (path: string, data: Buffer) => files.push({ path, size: data.length, data });
  add('oci-layout', OCI_LAYOUT);
  add('index.json', indexJson(plan.entries));
  const docker = dockerDocuments(plan.entries);
  if (docker) {
    add('manifest.json', docker.manifestJson);
    add('repositories', docker.repositories);
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const pack = tar.pack();
  const piping = pipeline(pack, out);
  piping.catch(() => undefined);
  let bytes = 0;
  try {
    const dirs = new Set<string>();
    for (const f of files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = `${parts.slice(0, i).join('/')}/`;
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        await new Promise<void>((resolve, reject) => {
          pack.entry({ ...FIXED, name: dir, mode: 0o755, type: 'directory' }, (err) =>
            err ? reject(err) : resolve(),
          );
        });
      }
      ctx.signal?.throwIfAborted();
      await writeFile(pack, backend, ctx, f);
      bytes += f.size;
    }
    pack.finalize();
    await piping;
  } catch (err) {
    pack.destroy(err as Error);
    await piping.catch(() => undefined);
    throw err;
  }
  return {
    images: plan.entries.map((e) => ({ target: e.target, names: e.names })),
    blobs: plan.blobs.length,
    bytes,
  };
}
