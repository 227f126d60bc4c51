// `hoist images`: one row per tag, deduplicated by target digest; `--all` shows every name.
// The grouping is what the data model already says (names → one target), so the default view cannot
// show the CRI's alias names as extra images.
import type { ContentStore } from '../api/content.ts';
import type { ImageRecord, ImageStore } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import type { Digest } from '../core/digest.ts';
import { invalidArgument } from '../core/errors.ts';
import { formatPlatform } from '../core/platform.ts';
import { familiarRepository } from '../core/reference.ts';
import { groupByTarget, type ImageGroup, type ImageName, isDangling } from './names.ts';
import { resolveImage } from './resolve.ts';
import { type ImageSummary, SummaryCache } from './summary.ts';

export interface ImageRow {
  repository: string;
  tag: string;
  /** The target digest (manifest or index): the image's ID in hoist, as in nerdctl. */
  id: Digest;
  /** The digest of the `repo@digest` name, or the target when none. */
  digest: Digest;
  name: string;
  kind: ImageName['kind'] | 'none';
  createdAt: Date;
  platform: string;
  /** The blobs' size (manifest, config, layers as declared): what the registry and the store hold. */
  size: number;
  /** The layers' uncompressed bytes (docker's SIZE); undefined when the image was never unpacked here. */
  unpackedSize?: number;
  labels: Record<string, string>;
}

export interface ListOptions {
  all?: boolean;
  filters?: string[];
}

type Filter = (g: ImageGroup, s: ImageSummary | undefined, row: ImageRow) => boolean;

function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

async function parseFilters(
  filters: string[],
  images: ImageStore,
  ctx: Context,
  summaries: SummaryCache,
): Promise<Filter[]> {
  const out: Filter[] = [];
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq < 0) throw invalidArgument(`invalid filter ${JSON.stringify(f)}: expected key=value`);
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    switch (key) {
      case 'reference': {
        const re = globToRegExp(value);
        out.push((_g, _s, row) => {
          if (row.repository === '<none>') return false;
          const withTag = row.tag === '<none>' ? row.repository : `${row.repository}:${row.tag}`;
          return re.test(row.repository) || re.test(withTag) || re.test(row.name);
        });
        break;
      }
      case 'dangling': {
        if (value !== 'true' && value !== 'false')
          throw invalidArgument(`invalid filter dangling=${value}: expected true or false`);
        const want = value === 'true';
        out.push((g) => isDangling(g) === want);
        break;
      }
      case 'label': {
        const [k, v] = value.includes('=')
          ? [value.slice(0, value.indexOf('=')), value.slice(value.indexOf('=') + 1)]
          : [value, undefined];
        out.push((_g, s, row) => {
          const cfgLabels = s?.primary?.imageConfig?.config?.Labels ?? {};
          const all = { ...cfgLabels, ...row.labels };
          return k in all && (v === undefined || all[k] === v);
        });
        break;
      }
      case 'before':
      case 'since': {
        const ref = await resolveImage(images, ctx, value);
        const s = await summaries.get(ctx, ref.group.names[0]!.record.target);
        const pivot = (s.primary?.created ?? ref.group.createdAt).getTime();
        out.push((g, sum) => {
          const t = (sum?.primary?.created ?? g.createdAt).getTime();
          return key === 'before' ? t < pivot : t > pivot;
        });
        break;
      }
      default:
        throw invalidArgument(
          `invalid filter ${JSON.stringify(key)}: supported are reference, dangling, label, before, since`,
        );
    }
  }
  return out;
}

/** A row before its content-derived columns, with the record it shows (no lookup by name later). */
type PartialRow = Omit<ImageRow, 'createdAt' | 'platform' | 'size' | 'unpackedSize' | 'labels'> & {
  record: ImageRecord;
};

function rowsFor(group: ImageGroup, all: boolean): PartialRow[] {
  const rowOf = (n: ImageName): PartialRow => {
    const repository = n.ref ? familiarRepository(n.ref) : '<none>';
    const tag = n.kind === 'tag' ? n.ref!.tag! : '<none>';
    const digest = (n.kind === 'digest' ? n.ref!.digest! : group.target) as Digest;
    return { id: group.target, repository, tag, digest, name: n.name, kind: n.kind, record: n.record };
  };
  if (all) return group.names.map(rowOf);
  const tagged = group.names.filter((n) => n.kind === 'tag');
  if (tagged.length > 0) return tagged.map(rowOf);
  // No tag: show the image once, with its repository when a digest name gives one.
  const withRepo = group.names.find((n) => n.kind === 'digest') ?? group.names[0]!;
  return [rowOf(withRepo)];
}

export async function listImages(
  images: ImageStore,
  content: ContentStore,
  ctx: Context,
  opts: ListOptions = {},
  summaries = new SummaryCache(content),
): Promise<ImageRow[]> {
  const filters = await parseFilters(opts.filters ?? [], images, ctx, summaries);
  const groups = groupByTarget(await images.list(ctx));
  const rows: ImageRow[] = [];
  for (const g of groups) {
    let s: ImageSummary | undefined;
    try {
      s = await summaries.get(ctx, g.names[0]!.record.target);
    } catch {
      s = undefined; // A target whose manifest is unreadable is still listed, with what the record says.
    }
    for (const { record: rec, ...partial } of rowsFor(g, opts.all === true)) {
      const row: ImageRow = {
        ...partial,
        createdAt: rec.createdAt,
        platform: s?.primary
          ? formatPlatform(s.primary.platform) +
            (s.platforms.length > 1 ? ` (+${s.platforms.length - 1})` : '')
          : '',
        size: s?.primary?.size ?? rec.target.size,
        labels: rec.labels,
      };
      if (s?.primary?.unpackedSize !== undefined) row.unpackedSize = s.primary.unpackedSize;
      if (filters.every((f) => f(g, s, row))) rows.push(row);
    }
  }
  rows.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.name < b.name ? -1 : 1));
  return rows;
}
