// LeaseManager: containerd's leases (a lease keeps its resources alive while it is live; see src/gc).
import { randomBytes } from 'node:crypto';
import type { Lease, LeaseManager, LeaseResource } from '../api/metadata.ts';
import { type Context, isIdentifier } from '../core/context.ts';
import { parseDigest } from '../core/digest.ts';
import { alreadyExists, HoistError, invalidArgument, notFound } from '../core/errors.ts';
import { nowNs } from '../core/time.ts';
import { date, ensureNamespace, labelsJson, namespaceOf, nsColumn, parseLabels } from './common.ts';
import type { MetadataDb } from './db.ts';
import { compileFilters, mapField } from './filters.ts';

/** containerd's random lease id: `<nanoseconds of the current second>-<3 random bytes, base64url>`. */
export function randomLeaseId(): string {
  for (;;) {
    const nanos = Number(process.hrtime.bigint() % 1_000_000_000n);
    const id = `${nanos}-${randomBytes(3).toString('base64url')}`;
    // base64url may yield `-`/`_` next to each other or at the end; keep ids valid identifiers.
    if (isIdentifier(id)) return id;
  }
}

const leaseNotFound = (id: string) => notFound(`lease ${JSON.stringify(id)}: not found`);

interface LeaseRow {
  id: string;
  labels: string;
  created_at: string;
}

const toLease = (r: LeaseRow): Lease => ({
  id: r.id,
  createdAt: date(r.created_at),
  labels: parseLabels(r.labels),
});

function validateResource(r: LeaseResource): void {
  if (!r.id) throw invalidArgument('resource id must not be empty: invalid argument');
  if (r.type === 'content') {
    try {
      parseDigest(r.id);
    } catch {
      throw invalidArgument(`invalid content resource id ${JSON.stringify(r.id)}: invalid argument`);
    }
    return;
  }
  if (r.type === 'ingests') return;
  if (r.type.startsWith('snapshots/') && isIdentifier(r.type.slice('snapshots/'.length))) return;
  throw new HoistError('HOIST_NOT_IMPLEMENTED', `resource type ${r.type} not supported yet: not implemented`);
}

export class SqliteLeaseManager implements LeaseManager {
  #db: MetadataDb;

  constructor(db: MetadataDb) {
    this.#db = db;
  }

  #row(ns: string, id: string): LeaseRow | undefined {
    return this.#db.get<LeaseRow>(
      `SELECT id, labels, ${nsColumn('created_at')} FROM leases WHERE ns = ? AND id = ?`,
      ns,
      id,
    );
  }

  async create(ctx: Context, opts: { id?: string; labels?: Record<string, string> } = {}): Promise<Lease> {
    const ns = namespaceOf(ctx);
    const id = opts.id ?? randomLeaseId();
    // Lease ids travel in headers and appear in paths: same rule as other identifiers, but allow longer ids.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/.test(id))
      throw invalidArgument(`lease id ${JSON.stringify(id)} is not a valid identifier: invalid argument`);
    const now = nowNs();
    return this.#db.transaction(() => {
      ensureNamespace(this.#db, ns, now);
      if (this.#row(ns, id)) throw alreadyExists(`lease ${JSON.stringify(id)}: already exists`);
      // containerd does not validate lease labels; neither do we (beyond dropping empty values).
      this.#db.run(
        'INSERT INTO leases (ns, id, labels, created_at) VALUES (?, ?, ?, ?)',
        ns,
        id,
        labelsJson(opts.labels),
        now,
      );
      return toLease(this.#row(ns, id)!);
    });
  }

  async delete(ctx: Context, id: string): Promise<void> {
    const ns = namespaceOf(ctx);
    await this.#db.transaction(() => {
      const { changes } = this.#db.run('DELETE FROM leases WHERE ns = ? AND id = ?', ns, id);
      if (changes === 0) throw leaseNotFound(id);
    });
  }

  async list(ctx: Context, filters?: string[]): Promise<Lease[]> {
    const ns = namespaceOf(ctx);
    const filter = compileFilters(filters);
    return this.#db
      .all<LeaseRow>(
        `SELECT id, labels, ${nsColumn('created_at')} FROM leases WHERE ns = ? ORDER BY leases.created_at, id`,
        ns,
      )
      .map(toLease)
      .filter((l) =>
        filter.match((path) => {
          if (path.length === 1 && path[0] === 'id') return l.id;
          if (path[0] === 'labels') return mapField(l.labels, path.slice(1));
          return undefined;
        }),
      );
  }

  async setLabels(ctx: Context, id: string, labels: Record<string, string>): Promise<Lease> {
    const ns = namespaceOf(ctx);
    return this.#db.transaction(() => {
      const row = this.#row(ns, id);
      if (!row) throw leaseNotFound(id);
      const merged = { ...parseLabels(row.labels), ...labels };
      this.#db.run('UPDATE leases SET labels = ? WHERE ns = ? AND id = ?', labelsJson(merged), ns, id);
      return toLease(this.#row(ns, id)!);
    });
  }

  async addResource(ctx: Context, id: string, resource: LeaseResource): Promise<void> {
    const ns = namespaceOf(ctx);
    validateResource(resource);
    await this.#db.transaction(() => {
      if (!this.#row(ns, id)) throw leaseNotFound(id);
      this.#db.run(
        'INSERT OR IGNORE INTO lease_resources (ns, lease_id, type, id) VALUES (?, ?, ?, ?)',
        ns,
        id,
        resource.type,
        resource.id,
      );
    });
  }

  async deleteResource(ctx: Context, id: string, resource: LeaseResource): Promise<void> {
    const ns = namespaceOf(ctx);
    validateResource(resource);
    await this.#db.transaction(() => {
      if (!this.#row(ns, id)) throw leaseNotFound(id);
      this.#db.run(
        'DELETE FROM lease_resources WHERE ns = ? AND lease_id = ? AND type = ? AND id = ?',
        ns,
        id,
        resource.type,
        resource.id,
      );
    });
  }

  async listResources(ctx: Context, id: string): Promise<LeaseResource[]> {
    const ns = namespaceOf(ctx);
    if (!this.#row(ns, id)) throw leaseNotFound(id);
    return this.#db
      .all<LeaseResource>(
        'SELECT id, type FROM lease_resources WHERE ns = ? AND lease_id = ? ORDER BY type, id',
        ns,
        id,
      )
      .map((r) => ({ id: r.id, type: r.type }));
  }
}
