// From what an archive held (spool.ts) to the images it describes: index.json entries (OCI layout,
// `ctr images export`, Docker ≥ 25, hoist), manifest.json entries (every `docker save`, skopeo's
// docker-archive), or a legacy `repositories`. Every tree is checked against the archive (each manifest's
// config and layers must be in it, with the sizes the descriptors give) and labelled for GC; manifests
// Docker archives lack are written. Nothing here creates image names.
import type { ContentStore } from '../api/content.ts';
import type { Context } from '../core/context.ts';
import { type Descriptor, parseImageConfig, parseManifestOrIndex } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { isIndex, isManifest, MediaType } from '../core/mediatypes.ts';
import { applyRefLabels, indexRefLabels, manifestRefLabels } from '../images/gc-labels.ts';
import { ALL_PLATFORMS, MAX_MANIFEST_BYTES, readNode, selectManifests } from '../images/walk.ts';
import { dockerLayerMediaType, parseDockerManifestJson, synthesizeManifest } from './docker-manifest.ts';
import { legacyImages } from './legacy-v1.ts';
import { nameFromAnnotations, normalizeLoadedName } from './load-names.ts';
import type { ArchiveContents, SpooledBlob } from './spool.ts';
import { followLinks } from './tar-paths.ts';

export interface LoadCandidate {
  target: Descriptor;
  names: string[];
  /** Config digests of the image's manifests in the archive. */
  configs: Digest[];
}

export interface BuildOptions {
  baseName?: string;
  /** Write a small document (a manifest hoist makes, a config kept in memory) into the store. */
  writeDoc(bytes: Buffer): Promise<SpooledBlob>;
}

const BLOB_PATH = /^blobs\/([a-z0-9]+)\/([^/]+)$/;

function incomplete(lines: string[]): HoistError {
  return new HoistError(
    'HOIST_NOT_FOUND',
    `the archive is incomplete, ${lines.length} blob${lines.length === 1 ? ' is' : 's are'} missing:\n${lines.map((l) => `  ${l}`).join('\n')}`,
    { hint: 'the archive was truncated or written without all layers; nothing was loaded' },
  );
}

function isForeign(d: Descriptor): boolean {
  return (
    (d.urls?.length ?? 0) > 0 || d.mediaType.includes('nondistributable') || d.mediaType.includes('foreign')
  );
}

export class ArchiveImages {
  #content: ContentStore;
  #ctx: Context;
  #c: ArchiveContents;
  #opts: BuildOptions;
  #missing: string[] = [];
  #verified = new Map<string, Digest[]>();

  constructor(content: ContentStore, ctx: Context, contents: ArchiveContents, opts: BuildOptions) {
    this.#content = content;
    this.#ctx = ctx;
    this.#c = contents;
    this.#opts = opts;
  }

  /** The blob at an archive path (following in-archive links), storing an in-memory document if needed. */
  async blobAt(path: string, what: string): Promise<SpooledBlob> {
    const real = followLinks(path, this.#c.links);
    const blob = this.#c.blobs.get(real);
    if (blob) return blob;
    const doc = this.#c.docs.get(real);
    if (doc) {
      const stored = await this.#opts.writeDoc(doc);
      this.#c.blobs.set(real, stored);
      this.#c.digests.set(stored.digest, stored);
      return stored;
    }
    throw new HoistError('HOIST_NOT_FOUND', `the archive is incomplete: ${what} ${path} is not in it`, {
      hint: 'the archive was truncated or is corrupt; nothing was loaded',
    });
  }

  /** `blobs/<alg>/<hex>` entries that are links: the file they point to must have that digest. */
  async #checkBlobLinks(): Promise<void> {
    for (const path of this.#c.links.keys()) {
      const m = BLOB_PATH.exec(path);
      if (!m) continue;
      const blob = await this.blobAt(path, 'link target of');
      const named = `${m[1]}:${m[2]}`;
      if (blob.digest !== named)
        throw new HoistError(
          'HOIST_DIGEST_MISMATCH',
          `archive entry ${path} links to content with digest ${blob.digest}, not ${named}`,
          { hint: 'the archive is corrupt; nothing was loaded' },
        );
    }
  }

  #present(d: Descriptor, parent: string): boolean {
    const have = this.#c.digests.get(d.digest);
    if (!have) {
      if (!isForeign(d))
        this.#missing.push(`${d.digest} (${d.mediaType}, ${d.size} bytes), referenced by ${parent}`);
      return false;
    }
    if (have.size !== d.size)
      throw new HoistError(
        'HOIST_SIZE_MISMATCH',
        `${parent} gives ${d.digest} a size of ${d.size} bytes, but the archive holds ${have.size}`,
        { hint: 'the archive is corrupt; nothing was loaded' },
      );
    return true;
  }

  /** Check and label an index or manifest tree; returns the config digests under it. */
  async #verifyTree(desc: Descriptor, parent: string): Promise<Digest[]> {
    const known = this.#verified.get(desc.digest);
    if (known) return known;
    if (!this.#present(desc, parent)) return [];
    const node = await readNode(this.#content, this.#ctx, desc, `${desc.digest} in the archive`);
    const configs: Digest[] = [];
    const where = `${node.kind} ${desc.digest}`;
    if (node.kind === 'index') {
      const children = selectManifests(node.index!, ALL_PLATFORMS);
      // An export of some platforms keeps the whole index but only their manifests (ctr, hoist --platform).
      const present = children.filter((c) => this.#c.digests.has(c.digest));
      if (present.length === 0 && children.length > 0) for (const c of children) this.#present(c, where);
      for (const c of present) configs.push(...(await this.#verifyTree(c, where)));
      await applyRefLabels(this.#content, this.#ctx, desc.digest, indexRefLabels(present));
    } else {
      const m = node.manifest!;
      for (const d of [m.config, ...m.layers]) this.#present(d, where);
      configs.push(m.config.digest);
      await applyRefLabels(this.#content, this.#ctx, desc.digest, manifestRefLabels(m));
    }
    this.#verified.set(desc.digest, configs);
    return configs;
  }

  async #fromIndexJson(bytes: Buffer): Promise<LoadCandidate[]> {
    const parsed = parseManifestOrIndex(bytes, MediaType.OciIndex, 'index.json of the archive');
    if (parsed.kind !== 'index')
      throw new HoistError('HOIST_MALFORMED_MANIFEST', 'index.json of the archive is not an image index');
    const out: LoadCandidate[] = [];
    for (const d of parsed.index.manifests) {
      if (!isIndex(d.mediaType) && !isManifest(d.mediaType)) continue; // not an image (e.g. an artifact)
      const configs = await this.#verifyTree(d, 'index.json');
      const name = nameFromAnnotations(d.annotations, this.#opts.baseName);
      out.push({
        target: { mediaType: d.mediaType, digest: d.digest, size: d.size },
        names: name ? [name] : [],
        configs,
      });
    }
    return out;
  }

  /** A Docker schema 2 manifest for a config and layer files that came without one. */
  async #synthesize(configBlob: SpooledBlob, layerPaths: string[], where: string): Promise<LoadCandidate> {
    const configBytes = await this.#content.readBlob(this.#ctx, configBlob.digest, MAX_MANIFEST_BYTES);
    const config = parseImageConfig(configBytes, `${where} config`);
    const diffIds = config.rootfs?.diff_ids;
    if (diffIds && diffIds.length !== layerPaths.length)
      throw new HoistError(
        'HOIST_MALFORMED_MANIFEST',
        `${where}: the config lists ${diffIds.length} layers but the archive entry names ${layerPaths.length}`,
        { hint: 'the archive is corrupt; nothing was loaded' },
      );
    const layers: { digest: Digest; size: number; mediaType: string }[] = [];
    for (const [i, p] of layerPaths.entries()) {
      const blob = await this.blobAt(p, `layer`);
      const mediaType = dockerLayerMediaType(blob.head);
      // An uncompressed layer's digest is its diffID: check it here (compressed ones are checked on unpack).
      if (mediaType === MediaType.DockerLayer && diffIds && diffIds[i] !== blob.digest)
        throw new HoistError(
          'HOIST_DIGEST_MISMATCH',
          `${where}: layer ${p} has digest ${blob.digest}, but the config expects ${diffIds[i]}`,
          { hint: 'the archive is corrupt; nothing was loaded' },
        );
      layers.push({ digest: blob.digest, size: blob.size, mediaType });
    }
    const { manifest, bytes } = synthesizeManifest(configBlob, layers);
    const stored = await this.#opts.writeDoc(bytes);
    await applyRefLabels(this.#content, this.#ctx, stored.digest, manifestRefLabels(manifest));
    return {
      target: { mediaType: MediaType.DockerManifest, digest: stored.digest, size: stored.size },
      names: [],
      configs: [configBlob.digest],
    };
  }

  async build(): Promise<LoadCandidate[]> {
    const docs = this.#c.docs;
    await this.#checkBlobLinks();
    const fromIndex = docs.has('index.json') ? await this.#fromIndexJson(docs.get('index.json')!) : [];
    const candidates = [...fromIndex];
    const manifestJson = docs.get('manifest.json');
    if (manifestJson) {
      for (const [i, e] of parseDockerManifestJson(manifestJson).entries()) {
        const where = `manifest.json entry ${i}`;
        const names = e.repoTags.map((t) => normalizeLoadedName(t, `${where} RepoTags`));
        const configBlob = await this.blobAt(e.config, 'config');
        // Docker ≥ 25, containerd and hoist write both files: the OCI manifest is the image.
        const same = fromIndex.find((c) => c.configs.includes(configBlob.digest));
        if (same) {
          same.names.push(...names);
          continue;
        }
        const c = await this.#synthesize(configBlob, e.layers, where);
        c.names.push(...names);
        candidates.push(c);
      }
    } else if (!docs.has('index.json') && docs.has('repositories')) {
      const legacy = legacyImages(docs, (p) => {
        const blob = this.#c.blobs.get(followLinks(p, this.#c.links));
        if (!blob) throw incomplete([`${p} (layer), referenced by repositories`]);
        if (dockerLayerMediaType(blob.head) !== MediaType.DockerLayer)
          throw new HoistError('HOIST_UNSUPPORTED_MEDIA_TYPE', `legacy archive layer ${p} is compressed`, {
            hint: 'legacy (Docker < 1.10) archives hold uncompressed layer tars; this one is not supported',
          });
        return blob.digest;
      });
      for (const img of legacy) {
        const configBlob = await this.#opts.writeDoc(img.configBytes);
        const c = await this.#synthesize(configBlob, img.layers, 'repositories');
        c.names.push(...img.repoTags.map((t) => normalizeLoadedName(t, 'repositories')));
        candidates.push(c);
      }
    } else if (!docs.has('index.json')) {
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        'not an image archive: it has no index.json, manifest.json or repositories',
        { hint: 'give a tar made by `hoist save`, `docker save`, `ctr images export` or skopeo' },
      );
    }
    if (this.#missing.length > 0) throw incomplete(this.#missing);
    if (candidates.length === 0)
      throw new HoistError('HOIST_INVALID_ARGUMENT', 'the archive holds no images', {
        hint: 'its index.json lists no image manifests',
      });
    return mergeByTarget(candidates);
  }
}

function mergeByTarget(candidates: LoadCandidate[]): LoadCandidate[] {
  const byTarget = new Map<string, LoadCandidate>();
  for (const c of candidates) {
    const have = byTarget.get(c.target.digest);
    if (!have) {
      byTarget.set(c.target.digest, { ...c, names: [...new Set(c.names)] });
      continue;
    }
    have.names = [...new Set([...have.names, ...c.names])];
    have.configs = [...new Set([...have.configs, ...c.configs])];
  }
  return [...byTarget.values()];
}
