// One image, many names. An image is identified by its target digest in a namespace; every record
// pointing at that target is one of its names. This file groups records into images and classifies
// names: `repo:tag` (tag), `repo@sha256:…` (digest alias), `sha256:<config>` (ID alias, as the CRI makes).

import type { ImageRecord } from '../api/metadata.ts';
import type { Digest } from '../core/digest.ts';
import {
  familiarRepository,
  type NameKind,
  nameKind,
  type Reference,
  tryParseReference,
} from '../core/reference.ts';

export interface ImageName {
  name: string;
  kind: NameKind;
  ref?: Reference;
  record: ImageRecord;
}

export interface ImageGroup {
  target: Digest;
  names: ImageName[];
  /** Earliest creation among the names: when the image arrived. */
  createdAt: Date;
}

export function classify(record: ImageRecord): ImageName {
  const kind = nameKind(record.name);
  const ref = tryParseReference(record.name);
  const n: ImageName = { name: record.name, kind, record };
  if (ref) n.ref = ref;
  return n;
}

/** Group records by target digest, keeping first-seen order of targets and sorted names within. */
export function groupByTarget(records: ImageRecord[]): ImageGroup[] {
  const groups = new Map<string, ImageGroup>();
  for (const r of records) {
    let g = groups.get(r.target.digest);
    if (!g) {
      g = { target: r.target.digest, names: [], createdAt: r.createdAt };
      groups.set(r.target.digest, g);
    }
    g.names.push(classify(r));
    if (r.createdAt < g.createdAt) g.createdAt = r.createdAt;
  }
  for (const g of groups.values())
    g.names.sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind) || cmp(a.name, b.name));
  return [...groups.values()];
}

function kindOrder(k: NameKind): number {
  return k === 'tag' ? 0 : k === 'digest' ? 1 : k === 'id' ? 3 : 2;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Repositories an image is named in (from tag and digest names; ID aliases have none). */
export function repositoriesOf(group: ImageGroup): string[] {
  const repos = new Set<string>();
  for (const n of group.names)
    if (n.ref && (n.kind === 'tag' || n.kind === 'digest')) repos.add(familiarRepository(n.ref));
  return [...repos].sort();
}

/** An image with no tag name is dangling (docker's `<none>:<none>` notion). */
export function isDangling(group: ImageGroup): boolean {
  return !group.names.some((n) => n.kind === 'tag');
}
