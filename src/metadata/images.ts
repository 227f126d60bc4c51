// ImageStore: containerd's image records (name → target descriptor), validation and messages included.

import type { ImageRecord, ImageStore } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { type Digest, isDigest, parseDigest } from '../core/digest.ts';
import { alreadyExists, invalidArgument, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { nowNs } from '../core/time.ts';
import {
  cleanLabels,
  date,
  ensureNamespace,
  labelsJson,
  namespaceOf,
  nsColumn,
  parseLabels,
} from './common.ts';
import type { MetadataDb } from './db.ts';
import { compileFilters, mapField } from './filters.ts';

interface ImageRow {
  name: string;
  target_digest: string;
  target_media_type: string;
  target_size: number;
  target_annotations: string;
  labels: string;
  created_at: string;
  updated_at: string;
}

const COLUMNS = `name, target_digest, target_media_type, target_size, target_annotations, labels, ${nsColumn('created_at')}, ${nsColumn('updated_at')}`;

function toRecord(r: ImageRow): ImageRecord {
  const target: Descriptor = {
    mediaType: r.target_media_type,
    digest: r.target_digest as Digest,
    size: Number(r.target_size),
  };
  const annotations = parseLabels(r.target_annotations);
  if (Object.keys(annotations).length > 0) target.annotations = annotations;
  return {
    name: r.name,
    target,
    labels: parseLabels(r.labels),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

const imageNotFound = (name: string) => notFound(`image ${JSON.stringify(name)}: not found`);

/** containerd's validateImage. */
function validateImage(image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>): void {
  if (!image.name) throw invalidArgument('image name must not be empty: invalid argument');
  validateLabels(image.labels ?? {}, 'image.Labels');
  const t = image.target;
  if (!t || !isDigest(t.digest))
    throw invalidArgument(`target.Digest ${JSON.stringify(t?.digest ?? '')} invalid: invalid argument`);
  if (!(t.size > 0)) throw invalidArgument('target.Size must be greater than zero: invalid argument');
  if (!t.mediaType) throw invalidArgument('target.MediaType must be set: invalid argument');
}

/** Image fields matched by list filters (containerd adaptImage). */
function imageField(r: ImageRecord, path: readonly string[]): string | undefined {
  const [head, ...rest] = path;
  switch (head) {
    case 'name':
      return rest.length === 0 ? r.name : undefined;
    case 'target':
      if (rest.length !== 1) return undefined;
      if (rest[0] === 'digest') return r.target.digest;
      if (rest[0] === 'mediatype') return r.target.mediaType;
      return undefined;
    case 'labels':
      return mapField(r.labels, rest);
    case 'annotations':
      return mapField(r.target.annotations, rest);
    default:
      return undefined;
  }
}

export class SqliteImageStore implements ImageStore {
  #db: MetadataDb;
  /**
   * Each namespace's decoded records, valid while the database's change stamp holds. A daemon answers
   * `ctr images ls` and CRI ListImages over thousands of names; decoding every row (labels JSON, dates)
   * per call was most of their cost. Records are frozen: callers share them.
   */
  #listed = new Map<string, { stamp: string; records: readonly ImageRecord[] }>();

  constructor(db: MetadataDb) {
    this.#db = db;
  }

  #row(ns: string, name: string): ImageRow | undefined {
    return this.#db.get<ImageRow>(`SELECT ${COLUMNS} FROM images WHERE ns = ? AND name = ?`, ns, name);
  }

  async get(ctx: Context, name: string): Promise<ImageRecord> {
    const row = this.#row(namespaceOf(ctx), name);
    if (!row) throw imageNotFound(name);
    return toRecord(row);
  }

  async list(ctx: Context, filters?: string[]): Promise<ImageRecord[]> {
    const ns = namespaceOf(ctx);
    const filter = compileFilters(filters);
    const all = this.#all(ns);
    return filters?.length ? all.filter((r) => filter.match((path) => imageField(r, path))) : [...all];
  }

  /** Changes whenever the namespace's records may have changed (undefined: cannot tell). */
  version(_ctx: Context): string | undefined {
    return this.#db.changeStamp();
  }

  #all(ns: string): readonly ImageRecord[] {
    const stamp = this.#db.changeStamp();
    const cached = this.#listed.get(ns);
    if (stamp !== undefined && cached?.stamp === stamp) return cached.records;
    const records = this.#db
      .all<ImageRow>(`SELECT ${COLUMNS} FROM images WHERE ns = ? ORDER BY name`, ns)
      .map((row) => freezeRecord(toRecord(row)));
    if (stamp === undefined) this.#listed.delete(ns);
    else this.#listed.set(ns, { stamp, records });
    return records;
  }

  async listByTarget(ctx: Context, target: Digest): Promise<ImageRecord[]> {
    const ns = namespaceOf(ctx);
    return this.#db
      .all<ImageRow>(
        `SELECT ${COLUMNS} FROM images WHERE ns = ? AND target_digest = ? ORDER BY name`,
        ns,
        parseDigest(target),
      )
      .map(toRecord);
  }

  async create(ctx: Context, image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>): Promise<ImageRecord> {
    const ns = namespaceOf(ctx);
    validateImage(image);
    const now = nowNs();
    return this.#db.transaction(() => {
      ensureNamespace(this.#db, ns, now);
      if (this.#row(ns, image.name))
        throw alreadyExists(`image ${JSON.stringify(image.name)}: already exists`);
      this.#write(ns, image, now, now, 'insert');
      return toRecord(this.#row(ns, image.name)!);
    });
  }

  #write(
    ns: string,
    image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>,
    createdAt: bigint,
    updatedAt: bigint,
    mode: 'insert' | 'update',
  ): void {
    const t = image.target;
    const values = [
      t.digest,
      t.mediaType,
      t.size,
      labelsJson(t.annotations),
      labelsJson(image.labels),
      updatedAt,
    ] as const;
    if (mode === 'insert')
      this.#db.run(
        `INSERT INTO images (target_digest, target_media_type, target_size, target_annotations, labels, updated_at,
           created_at, ns, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ...values,
        createdAt,
        ns,
        image.name,
      );
    else
      this.#db.run(
        `UPDATE images SET target_digest = ?, target_media_type = ?, target_size = ?, target_annotations = ?,
           labels = ?, updated_at = ? WHERE ns = ? AND name = ?`,
        ...values,
        ns,
        image.name,
      );
  }

  async update(
    ctx: Context,
    image: Omit<ImageRecord, 'createdAt' | 'updatedAt'>,
    fieldpaths: string[] = [],
  ): Promise<ImageRecord> {
    const ns = namespaceOf(ctx);
    if (!image.name) throw invalidArgument('image name must not be empty: invalid argument');
    return this.#db.transaction(() => {
      const row = this.#row(ns, image.name);
      if (!row) throw imageNotFound(image.name);
      const current = toRecord(row);
      let updated: Omit<ImageRecord, 'createdAt' | 'updatedAt'>;
      if (fieldpaths.length === 0) {
        updated = { name: image.name, target: image.target, labels: cleanLabels(image.labels) };
      } else {
        // `labels` replaces the whole map; `labels.<k>` paths then apply on top of it.
        const labels = fieldpaths.includes('labels') ? cleanLabels(image.labels) : { ...current.labels };
        let target: Descriptor = { ...current.target };
        for (const path of fieldpaths) {
          if (path === 'labels') continue;
          if (path.startsWith('labels.')) {
            const k = path.slice('labels.'.length);
            const v = image.labels?.[k];
            if (v === undefined || v === '') delete labels[k];
            else labels[k] = v;
          } else if (path === 'target') target = { ...image.target };
          else if (path === 'annotations') target.annotations = { ...(image.target?.annotations ?? {}) };
          else if (path.startsWith('annotations.')) {
            const k = path.slice('annotations.'.length);
            const ann = { ...(target.annotations ?? {}) };
            const v = image.target?.annotations?.[k];
            if (v === undefined || v === '') delete ann[k];
            else ann[k] = v;
            target.annotations = ann;
          } else
            throw invalidArgument(
              `cannot update ${JSON.stringify(path)} field on image ${JSON.stringify(image.name)}: invalid argument`,
            );
        }
        updated = { name: image.name, target, labels };
      }
      validateImage(updated);
      this.#write(ns, updated, BigInt(row.created_at), nowNs(), 'update');
      return toRecord(this.#row(ns, image.name)!);
    });
  }

  async delete(ctx: Context, name: string, opts?: { target?: Digest }): Promise<void> {
    const ns = namespaceOf(ctx);
    await this.#db.transaction(() => {
      const row = this.#row(ns, name);
      if (!row) throw imageNotFound(name);
      if (opts?.target !== undefined && row.target_digest !== opts.target)
        throw notFound(
          `image ${JSON.stringify(name)} has target ${row.target_digest}, not ${opts.target}: not found`,
        );
      this.#db.run('DELETE FROM images WHERE ns = ? AND name = ?', ns, name);
    });
  }
}

function freezeRecord(r: ImageRecord): ImageRecord {
  Object.freeze(r.labels);
  if (r.target.annotations) Object.freeze(r.target.annotations);
  Object.freeze(r.target);
  return Object.freeze(r);
}
