// NamespaceStore. Namespaces also spring into existence on the first write in them (like containerd);
// delete refuses one that still holds images, blobs or snapshots — leases and ingests go with it.

import type { Namespace, NamespaceStore } from '../api/metadata.ts';
import { isIdentifier } from '../core/context.ts';
import { alreadyExists, failedPrecondition, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { nowNs } from '../core/time.ts';
import { invalidNamespace, labelsJson, parseLabels } from './common.ts';
import type { MetadataDb } from './db.ts';

/**
 * What else lives in a namespace (snapshotters register one): returns phrases such as
 * `snapshots on "overlayfs" snapshotter` for each kind still present. Called inside the transaction.
 */
export type NamespaceUsageCheck = (ns: string) => string[];

const nsNotFound = (name: string) => notFound(`namespace ${JSON.stringify(name)}: not found`);

export class SqliteNamespaceStore implements NamespaceStore {
  #db: MetadataDb;
  #checks: NamespaceUsageCheck[] = [];

  constructor(db: MetadataDb) {
    this.#db = db;
  }

  /** Register another kind of object that keeps a namespace from being deleted (e.g. snapshots). */
  addUsageCheck(check: NamespaceUsageCheck): void {
    this.#checks.push(check);
  }

  #get(name: string): Namespace | undefined {
    const row = this.#db.get<{ name: string; labels: string }>(
      'SELECT name, labels FROM namespaces WHERE name = ?',
      name,
    );
    return row ? { name: row.name, labels: parseLabels(row.labels) } : undefined;
  }

  async list(): Promise<Namespace[]> {
    return this.#db
      .all<{ name: string; labels: string }>('SELECT name, labels FROM namespaces ORDER BY name')
      .map((r) => ({ name: r.name, labels: parseLabels(r.labels) }));
  }

  async get(name: string): Promise<Namespace> {
    const ns = this.#get(name);
    if (!ns) throw nsNotFound(name);
    return ns;
  }

  async create(name: string, labels: Record<string, string> = {}): Promise<Namespace> {
    if (!isIdentifier(name)) throw invalidNamespace(name);
    validateLabels(labels, 'namespace.Labels');
    return this.#db.transaction(() => {
      if (this.#get(name)) throw alreadyExists(`namespace ${JSON.stringify(name)}: already exists`);
      this.#db.run(
        'INSERT INTO namespaces (name, labels, created_at) VALUES (?, ?, ?)',
        name,
        labelsJson(labels),
        nowNs(),
      );
      return this.#get(name)!;
    });
  }

  /** Set one label; an empty value removes it. */
  async setLabel(name: string, key: string, value: string): Promise<Namespace> {
    validateLabels({ [key]: value }, 'namespace.Labels');
    return this.#db.transaction(() => {
      const ns = this.#get(name);
      if (!ns) throw nsNotFound(name);
      const labels = { ...ns.labels, [key]: value };
      this.#db.run('UPDATE namespaces SET labels = ? WHERE name = ?', labelsJson(labels), name);
      return this.#get(name)!;
    });
  }

  async delete(name: string): Promise<void> {
    await this.#db.transaction(() => {
      if (!this.#get(name)) throw nsNotFound(name);
      const still: string[] = [];
      if (this.#db.get('SELECT 1 AS x FROM images WHERE ns = ? LIMIT 1', name)) still.push('images');
      if (this.#db.get('SELECT 1 AS x FROM content WHERE ns = ? LIMIT 1', name)) still.push('blobs');
      for (const check of this.#checks) still.push(...check(name));
      if (still.length > 0)
        throw failedPrecondition(
          `namespace ${JSON.stringify(name)} must be empty, but it still has ${still.join(', ')}: failed precondition`,
          `remove them first (hoist -n ${name} rmi …), then delete the namespace`,
        );
      // Leases, their resources and ingest records do not block deletion; they go with the namespace.
      this.#db.run('DELETE FROM lease_resources WHERE ns = ?', name);
      this.#db.run('DELETE FROM namespaces WHERE name = ?', name);
    });
  }
}
