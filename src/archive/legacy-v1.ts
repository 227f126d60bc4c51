// The oldest `docker save` format (Docker < 1.10): no manifest.json, only `repositories`
// ({repo: {tag: <top layer id>}}) and a directory per layer with `json` (a v1 image: id, parent, config,
// created, …) and `layer.tar`. An image is the chain of parents below a tagged id. Its v2 config is made the
// way Docker upgraded such images: the top `json` without the v1 chain fields, plus `rootfs.diff_ids` (the
// digests of the uncompressed layer tars) and one history entry per layer.
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { documentPath } from './tar-paths.ts';

export interface LegacyImage {
  configBytes: Buffer;
  /** Archive paths of the layer tars, base first. */
  layers: string[];
  repoTags: string[];
}

function malformed(detail: string): HoistError {
  return new HoistError('HOIST_MALFORMED_MANIFEST', `malformed legacy docker archive: ${detail}`, {
    hint: 'the archive is corrupt or incomplete; nothing was loaded',
  });
}

function parseObject(bytes: Buffer | undefined, what: string): Record<string, unknown> {
  if (!bytes) throw malformed(`${what} is missing`);
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw malformed(`${what} is not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(`${what} is not an object`);
  return v as Record<string, unknown>;
}

const V1_ONLY_FIELDS = ['id', 'parent', 'Size', 'parent_id', 'layer_id', 'throwaway'];
const MAX_CHAIN = 1000;

/**
 * Images described by a legacy archive's `repositories`. `layerDigest` gives the digest of a layer tar
 * as stored (it must be uncompressed: its digest is the layer's diffID).
 */
export function legacyImages(
  docs: ReadonlyMap<string, Buffer>,
  layerDigest: (path: string) => Digest,
): LegacyImage[] {
  const repos = parseObject(docs.get('repositories'), 'repositories');
  const tagsByTop = new Map<string, string[]>();
  for (const [repo, tags] of Object.entries(repos)) {
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags))
      throw malformed(`repositories[${JSON.stringify(repo)}] is not an object`);
    for (const [tag, id] of Object.entries(tags as Record<string, unknown>)) {
      if (typeof id !== 'string' || !/^[a-f0-9]{64}$/.test(id))
        throw malformed(`repositories[${JSON.stringify(repo)}][${JSON.stringify(tag)}] is not a layer id`);
      const list = tagsByTop.get(id) ?? [];
      list.push(`${repo}:${tag}`);
      tagsByTop.set(id, list);
    }
  }
  const images: LegacyImage[] = [];
  for (const [top, repoTags] of tagsByTop) {
    const chain: Record<string, unknown>[] = [];
    const ids: string[] = [];
    const seen = new Set<string>();
    let id: string | undefined = top;
    while (id !== undefined) {
      if (seen.has(id) || chain.length >= MAX_CHAIN) throw malformed(`layer ${id} has a parent loop`);
      seen.add(id);
      const json = parseObject(docs.get(documentPath(`${id}/json`, 'repositories')), `${id}/json`);
      chain.push(json);
      ids.push(id);
      const parent = json.parent;
      if (
        parent !== undefined &&
        parent !== '' &&
        (typeof parent !== 'string' || !/^[a-f0-9]{64}$/.test(parent))
      )
        throw malformed(`${id}/json has an invalid parent`);
      id = typeof parent === 'string' && parent !== '' ? parent : undefined;
    }
    chain.reverse();
    ids.reverse();
    const layers = ids.map((i) => `${i}/layer.tar`);
    const config: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(chain[chain.length - 1]!))
      if (!V1_ONLY_FIELDS.includes(k)) config[k] = v;
    config.rootfs = { type: 'layers', diff_ids: layers.map((p) => layerDigest(p)) };
    config.history = chain.map((layer) => {
      const cc = layer.container_config as { Cmd?: unknown } | undefined;
      const h: Record<string, unknown> = {};
      if (typeof layer.created === 'string') h.created = layer.created;
      if (typeof layer.author === 'string' && layer.author) h.author = layer.author;
      if (Array.isArray(cc?.Cmd)) h.created_by = cc.Cmd.join(' ');
      if (typeof layer.comment === 'string' && layer.comment) h.comment = layer.comment;
      return h;
    });
    images.push({ configBytes: Buffer.from(JSON.stringify(config)), layers, repoTags });
  }
  return images;
}
