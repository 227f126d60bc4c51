// Small pieces shared by the metadata stores: namespace checks, implicit namespace creation, lease
// membership, label (de)serialisation.
import { type Context, isIdentifier } from '../core/context.ts';
import { failedPrecondition, type HoistError, invalidArgument, notFound } from '../core/errors.ts';
import { dateFromNs, nowNs, type PreciseDate } from '../core/time.ts';
import type { MetadataDb } from './db.ts';

/** containerd's NamespaceRequired plus identifier validation. */
export function namespaceOf(ctx: Context): string {
  const ns = ctx.namespace;
  if (!ns) throw failedPrecondition('namespace is required: failed precondition');
  if (!isIdentifier(ns)) throw invalidNamespace(ns);
  return ns;
}

export function invalidNamespace(ns: string): HoistError {
  return invalidArgument(
    `namespace ${JSON.stringify(ns)}: identifier must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)* and be at most 76 characters: invalid argument`,
  );
}

/** Namespaces are created on first write in them, as containerd does. Call inside a transaction. */
export function ensureNamespace(db: MetadataDb, ns: string, now: bigint = nowNs()): void {
  db.run('INSERT OR IGNORE INTO namespaces (name, labels, created_at) VALUES (?, ?, ?)', ns, '{}', now);
}

export function parseLabels(json: unknown): Record<string, string> {
  if (typeof json !== 'string' || json === '') return {};
  const v = JSON.parse(json) as unknown;
  return typeof v === 'object' && v !== null ? (v as Record<string, string>) : {};
}

/** Labels with empty values dropped (containerd never stores an empty label value). */
export function cleanLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (v !== '') out[k] = v;
  return out;
}

export function labelsJson(labels: Record<string, string> | undefined): string {
  return JSON.stringify(cleanLabels(labels));
}

/** Check the context's lease exists (containerd: `lease does not exist: not found`). In a transaction. */
export function requireContextLease(db: MetadataDb, ns: string, ctx: Context): string | undefined {
  if (!ctx.lease) return undefined;
  const row = db.get('SELECT 1 AS x FROM leases WHERE ns = ? AND id = ?', ns, ctx.lease);
  if (!row)
    throw notFound(
      `lease does not exist: not found`,
      `lease ${JSON.stringify(ctx.lease)} was deleted or expired`,
    );
  return ctx.lease;
}

export function addLeaseResource(db: MetadataDb, ns: string, lease: string, type: string, id: string): void {
  db.run(
    'INSERT OR IGNORE INTO lease_resources (ns, lease_id, type, id) VALUES (?, ?, ?, ?)',
    ns,
    lease,
    type,
    id,
  );
}

export function removeLeaseResource(
  db: MetadataDb,
  ns: string,
  lease: string,
  type: string,
  id: string,
): void {
  db.run(
    'DELETE FROM lease_resources WHERE ns = ? AND lease_id = ? AND type = ? AND id = ?',
    ns,
    lease,
    type,
    id,
  );
}

/**
 * A stored time (int64 nanoseconds, migration 3) as a Date that keeps its nanoseconds. Select it as
 * `CAST(col AS TEXT)` (see `nsColumn`): node:sqlite refuses integers beyond a JS number's exact range.
 */
export const date = (ns: unknown): PreciseDate => dateFromNs(typeof ns === 'bigint' ? ns : String(ns ?? 0));

/** `CAST(col AS TEXT) AS col`: a nanosecond time column read without losing digits. */
export const nsColumn = (col: string): string => `CAST(${col} AS TEXT) AS ${col}`;
