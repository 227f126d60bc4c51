// `hoist copy SRC DST` (skopeo copy, crane copy) and `hoist manifest inspect`: between two registries the
// image goes straight across (src/images/registry-copy.ts); to or from an archive or OCI layout it passes
// through a scratch namespace of the store, so the archive code (load, save) and the registry code (pull,
// push) are the ones every other command uses. The scratch namespace is emptied and removed afterwards.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Descriptor } from '../core/descriptor.ts';
import { invalidArgument } from '../core/errors.ts';
import { parsePlatform } from '../core/platform.ts';
import { formatReference, parseReference, type Reference, tryParseReference } from '../core/reference.ts';
import type { Hoist } from './hoist.ts';
import type { CopyOptions, ManifestOptions } from './options.ts';

export interface CopyResult {
  /** What the destination now holds: the image's target, or the one manifest picked from its index. */
  target: Descriptor;
  /** Blobs the destination registry already had, mounted from another of its repositories, copied. */
  blobs?: { exists: number; mounted: number; copied: number };
}

export type Endpoint =
  | { kind: 'registry'; ref: Reference }
  | { kind: 'docker-archive' | 'oci-archive'; path: string; name?: string }
  | { kind: 'oci'; dir: string; name?: string };

/** The repository of images an archive or layout names by a tag only. */
const BASE_NAME = 'localhost/image';

const TRANSPORTS = ['docker://', 'docker-archive:', 'oci-archive:', 'oci:'] as const;

/**
 * skopeo's transport syntax: `docker://REF` (or a bare REF), `docker-archive:PATH[:REF]`,
 * `oci-archive:PATH[:TAG]`, `oci:DIR[:TAG]`; the path ends at its first colon, as in skopeo.
 */
export function parseEndpoint(text: string): Endpoint {
  const transport = TRANSPORTS.find((t) => text.startsWith(t));
  if (!transport || transport === 'docker://')
    return { kind: 'registry', ref: parseReference(transport ? text.slice(transport.length) : text) };
  const rest = text.slice(transport.length);
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const name = colon < 0 ? undefined : rest.slice(colon + 1);
  if (path === '') throw invalidArgument(`${text}: give a path after ${transport}`);
  if (name === '') throw invalidArgument(`${text}: nothing after the colon`);
  const named = name === undefined ? {} : { name };
  if (transport === 'oci:') return { kind: 'oci', dir: path, ...named };
  return { kind: transport === 'docker-archive:' ? 'docker-archive' : 'oci-archive', path, ...named };
}

/** A directory as a tar stream (an OCI layout read by the archive loader). */
async function* filesOf(dir: string, under = dir): AsyncGenerator<string> {
  for (const entry of await readdir(under, { withFileTypes: true })) {
    const path = join(under, entry.name);
    if (entry.isDirectory()) yield* filesOf(dir, path);
    else if (entry.isFile()) yield relative(dir, path).split(sep).join('/');
  }
}

/** An archive's or layout's bytes, opened first so that a missing one fails here, not on the stream. */
async function openSource(
  src: Endpoint & { kind: 'docker-archive' | 'oci-archive' | 'oci' },
): Promise<Readable> {
  if (src.kind !== 'oci') return (await open(src.path)).createReadStream();
  await stat(join(src.dir, 'index.json'));
  return packDirectory(src.dir);
}

function packDirectory(dir: string): Readable {
  const pack = tar.pack();
  (async () => {
    for await (const name of filesOf(dir)) {
      const size = (await stat(join(dir, name))).size;
      const entry = pack.entry({ name, size });
      await pipeline(createReadStream(join(dir, name)), entry);
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return Readable.from(pack);
}

/**
 * Unpack the saved archive's files into a directory (an OCI layout, with Docker's manifest.json too):
 * the stream to write the archive to, and the promise of its files being on disk.
 */
function extractTo(dir: string): { input: PassThrough; done: Promise<void> } {
  const extract = tar.extract();
  const input = new PassThrough();
  extract.on('entry', (header, stream, next) => {
    const path = join(dir, header.name);
    if (header.type !== 'file' || relative(dir, path).startsWith('..')) {
      stream.resume();
      stream.on('end', next);
      return;
    }
    mkdir(dirname(path), { recursive: true })
      .then(() => pipeline(stream, createWriteStream(path)))
      .then(() => next(), next);
  });
  return { input, done: pipeline(input, extract) };
}

/** The repository part a tag is added to when the destination gives only a tag. */
function withTag(name: string | undefined, tag: string): string {
  const ref = name ? tryParseReference(name) : undefined;
  return ref ? formatReference({ domain: ref.domain, path: ref.path, tag }) : `${BASE_NAME}:${tag}`;
}

/** The name the image gets in an archive or layout: the destination's, else the source's. */
function outputName(dst: Endpoint, sourceName: string | undefined): string | undefined {
  if (dst.kind === 'registry') return formatReference(dst.ref);
  if (dst.name === undefined) return sourceName;
  return dst.kind === 'docker-archive'
    ? formatReference(parseReference(dst.name))
    : withTag(sourceName, dst.name);
}

async function registryTools(hoist: Hoist, opts: CopyOptions | ManifestOptions) {
  const [{ resolverFor, downloadsOf }, rc, walk] = await Promise.all([
    import('./fetching.ts'),
    import('../images/registry-copy.ts'),
    import('../images/walk.ts'),
  ]);
  return {
    rc,
    resolver: resolverFor(hoist.config, opts, hoist.log),
    concurrency: downloadsOf(hoist.config, opts),
    platforms: opts.platform ? walk.onePlatform(parsePlatform(opts.platform)) : walk.ALL_PLATFORMS,
  };
}

/** The manifest or index a reference names at its registry (one platform's manifest with `platform`). */
export async function inspectManifest(hoist: Hoist, reference: string, opts: ManifestOptions) {
  const { rc, resolver, platforms } = await registryTools(hoist, opts);
  return rc.fetchDocument(resolver, parseReference(reference), platforms, opts.signal);
}

export async function copyImage(
  hoist: Hoist,
  srcText: string,
  dstText: string,
  opts: CopyOptions,
): Promise<CopyResult> {
  const src = parseEndpoint(srcText);
  const dst = parseEndpoint(dstText);
  if (src.kind === 'registry' && dst.kind === 'registry') {
    const { rc, resolver, concurrency, platforms } = await registryTools(hoist, opts);
    const r = await rc.copyBetweenRegistries(resolver, src.ref, dst.ref, {
      platforms,
      concurrency,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { target: r.descriptor, blobs: r.blobs };
  }

  const platform = opts.platform ? { platform: opts.platform } : { allPlatforms: true };
  const scratchName = `hoist-copy-${process.pid}-${randomBytes(4).toString('hex')}`;
  await hoist.createNamespace(scratchName, { 'hoist.io/purpose': 'copy' });
  const scratch = hoist.inNamespace(scratchName);
  const names: string[] = [];
  try {
    // 1. The source into the scratch namespace, under one name.
    let sourceName: string | undefined;
    if (src.kind === 'registry') {
      const pulled = await scratch.pull(formatReference(src.ref), { ...opts, ...platform, unpack: false });
      sourceName = pulled.name;
      names.push(pulled.name);
    } else {
      const input = await openSource(src);
      const loaded = await scratch.load(input, {
        unpack: false,
        // A layout's bare `org.opencontainers.image.ref.name` tag (skopeo's, most tools') becomes a name.
        baseName: BASE_NAME,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const all = loaded.images.flatMap((i) => i.names);
      names.push(...all);
      const wanted = src.name;
      const pick = loaded.images.filter(
        (i) =>
          wanted === undefined ||
          i.names.some((n) => n === wanted || n.endsWith(`:${wanted}`) || n === tryFormat(wanted)),
      );
      if (pick.length !== 1 || pick[0]!.names.length === 0)
        throw invalidArgument(
          `${srcText}: ${pick.length === 0 ? 'no image' : 'more than one image'} ${wanted ? `named ${wanted}` : 'in it'} (it has: ${all.join(', ') || 'unnamed images'})`,
        );
      sourceName = pick[0]!.names[0]!;
    }

    // 2. Out of it.
    const name = outputName(dst, sourceName);
    if (dst.kind === 'registry') {
      const pushed = await scratch.push(sourceName!, name, { ...opts, ...platform });
      return {
        target: pushed.target,
        blobs: { exists: pushed.existed, mounted: pushed.mounted, copied: pushed.pushed },
      };
    }
    if (name === undefined) throw invalidArgument(`${dstText}: give the image a name (e.g. ${dstText}:TAG)`);
    if (name !== sourceName) {
      await scratch.tag(sourceName!, name);
      names.push(name);
    }
    const saveOpts = { ...opts, ...(opts.platform ? { platform: opts.platform } : { allPlatforms: true }) };
    if (dst.kind === 'oci') {
      await mkdir(dst.dir, { recursive: true });
      const extract = extractTo(dst.dir);
      const [saved] = await Promise.all([scratch.save([name], extract.input, saveOpts), extract.done]);
      return { target: saved.images[0]!.target };
    }
    // Written whole or not at all: a temp file renamed into place.
    const temp = `${dst.path}.hoist-${randomBytes(4).toString('hex')}`;
    try {
      const saved = await scratch.save([name], createWriteStream(temp), saveOpts);
      await rename(temp, dst.path);
      return { target: saved.images[0]!.target };
    } finally {
      await rm(temp, { force: true });
    }
  } finally {
    await scratch.remove([...new Set(names)], { force: true }).catch(() => undefined);
    await hoist.collectGarbage();
    await hoist.removeNamespace(scratchName).catch(() => undefined);
  }
}

function tryFormat(name: string): string | undefined {
  const ref = tryParseReference(name);
  return ref ? formatReference(ref) : undefined;
}
