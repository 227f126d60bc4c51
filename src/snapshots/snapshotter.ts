// A snapshotter over the metadata database and a directory per snapshot: containerd's metadata
// snapshotter and its storage in one, with the on-disk differences left to a SnapshotDriver.
//
// Write safety (several processes may share the store): a new snapshot's directory is built under a
// staging name first (a copy may take long and must not hold the write lock), then one transaction
// re-checks everything, inserts the row and renames the directory to its backend id. Removal deletes the
// row, and the files after the commit (AUTOINCREMENT: an id is never reused once its deletion commits).
// Whatever a crash leaves behind has no row, and cleanup() (or GC) removes it.
import { join } from 'node:path';
import type {
  ApplyTarget,
  CleanupResult,
  CommitOptions,
  DirectorySnapshotter,
  LayerDirs,
  Mount,
  SnapshotInfo,
  SnapshotOptions,
  SnapshotUsage,
} from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../core/errors.ts';
import { validateLabels } from '../core/labels.ts';
import { nowNs } from '../core/time.ts';
import {
  addLeaseResource,
  cleanLabels,
  ensureNamespace,
  namespaceOf,
  removeLeaseResource,
  requireContextLease,
} from '../metadata/common.ts';
import type { MetadataDb } from '../metadata/db.ts';
import { compileFilters, mapField } from '../metadata/filters.ts';
import {
  cacheSnapshotUsage,
  type SnapshotRecord,
  SnapshotRecords,
  toSnapshotInfo,
} from '../metadata/snapshots.ts';
import type { SnapshotDriver } from './driver.ts';
import { removeTree, SnapshotStorage } from './storage.ts';
import { diskUsage } from './usage.ts';

export interface LocalSnapshotterDeps {
  db: MetadataDb;
  /** `<store root>/snapshots`; this snapshotter lives in `<snapshotsDir>/<driver.name>`. */
  snapshotsDir: string;
  driver: SnapshotDriver;
  /** This process's identity: staging directories carry it so cleanup can tell live from dead. */
  owner: string;
  isOwnerAlive: (owner: string) => boolean;
}

const doesNotExist = (key: string) => notFound(`snapshot ${key} does not exist: not found`);

function requireName(name: string, what: 'key' | 'name'): void {
  if (!name) throw invalidArgument(`snapshot ${what} must not be empty: invalid argument`);
}

function snapshotLabels(opts: SnapshotOptions | undefined): Record<string, string> {
  const labels = cleanLabels(opts?.labels);
  validateLabels(labels, 'info.Labels');
  return labels;
}

/** Fields list filters can match (containerd adaptSnapshot). */
function snapshotField(info: SnapshotInfo, path: readonly string[]): string | undefined {
  const [head, ...rest] = path;
  if (head === 'labels') return mapField(info.labels, rest);
  if (rest.length > 0) return undefined;
  if (head === 'kind') return info.kind;
  if (head === 'name') return info.name;
  if (head === 'parent') return info.parent ?? '';
  return undefined;
}

export class LocalSnapshotter implements DirectorySnapshotter {
  readonly name: 'native' | 'overlayfs';
  readonly rebase: boolean;
  readonly storage: SnapshotStorage;
  #db: MetadataDb;
  #records: SnapshotRecords;
  #driver: SnapshotDriver;
  #owner: string;
  #isOwnerAlive: (owner: string) => boolean;
  #leaseType: string;

  constructor(deps: LocalSnapshotterDeps) {
    this.name = deps.driver.name;
    this.rebase = deps.driver.rebase;
    this.#db = deps.db;
    this.#driver = deps.driver;
    this.#owner = deps.owner;
    this.#isOwnerAlive = deps.isOwnerAlive;
    this.#records = new SnapshotRecords(deps.db, this.name);
    this.storage = new SnapshotStorage(deps.snapshotsDir, this.name);
    this.#leaseType = `snapshots/${this.name}`;
  }

  prepare(ctx: Context, key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.#create(ctx, 'active', key, parent, opts);
  }

  view(ctx: Context, key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]> {
    return this.#create(ctx, 'view', key, parent, opts);
  }

  #requireParent(ns: string, parent: string): SnapshotRecord {
    const rec = this.#records.get(ns, parent);
    if (!rec) throw notFound(`parent snapshot ${parent} does not exist: not found`);
    if (rec.kind !== 'committed')
      throw invalidArgument(`parent ${JSON.stringify(parent)} is not committed snapshot: invalid argument`);
    return rec;
  }

  /** containerd adds the key to the context's lease even when it already exists, then says so. */
  async #exists(ctx: Context, ns: string, key: string): Promise<never> {
    await this.#db.transaction(() => {
      const lease = requireContextLease(this.#db, ns, ctx);
      if (lease) addLeaseResource(this.#db, ns, lease, this.#leaseType, key);
    });
    throw alreadyExists(`snapshot ${JSON.stringify(key)}: already exists`);
  }

  async #create(
    ctx: Context,
    kind: 'active' | 'view',
    key: string,
    parent: string | undefined,
    opts: SnapshotOptions | undefined,
  ): Promise<Mount[]> {
    const ns = namespaceOf(ctx);
    requireName(key, 'key');
    const labels = snapshotLabels(opts);
    const wantParent = parent === '' ? undefined : parent;
    // Checked before the (possibly long) copy, and again under the write lock.
    if (this.#records.get(ns, key)) return this.#exists(ctx, ns, key);
    const parentRec = wantParent === undefined ? undefined : this.#requireParent(ns, wantParent);
    const staging = await this.storage.stage(this.#owner);
    const aside: string[] = [];
    try {
      const parentFs = parentRec ? this.storage.fs(parentRec.backendId) : undefined;
      await this.#driver.populate(join(staging, 'fs'), parentFs, {
        signal: ctx.signal,
        replacesFiles: opts?.replacesFiles === true,
      });
      const created = await this.#db.transaction(async () => {
        const now = nowNs();
        ensureNamespace(this.#db, ns, now);
        const lease = requireContextLease(this.#db, ns, ctx);
        if (this.#records.get(ns, key)) {
          if (lease) addLeaseResource(this.#db, ns, lease, this.#leaseType, key);
          return undefined;
        }
        if (
          wantParent !== undefined &&
          this.#requireParent(ns, wantParent).backendId !== parentRec?.backendId
        )
          throw failedPrecondition(
            `parent snapshot ${wantParent} was replaced while ${key} was being prepared: failed precondition`,
            'try again',
          );
        const id = this.#records.insert(ns, { key, kind, parent: wantParent, labels }, now);
        const moved = await this.storage.publish(staging, id);
        if (moved) aside.push(moved);
        if (lease) addLeaseResource(this.#db, ns, lease, this.#leaseType, key);
        return this.#mountsOf(ns, this.#records.get(ns, key)!);
      });
      if (!created) throw alreadyExists(`snapshot ${JSON.stringify(key)}: already exists`);
      return created;
    } catch (err) {
      // Gone already when the transaction renamed it; then a failed commit leaves an orphan for cleanup.
      await removeTree(staging).catch(() => undefined);
      throw err;
    } finally {
      for (const p of aside) await removeTree(p).catch(() => undefined);
    }
  }

  #mountsOf(ns: string, rec: SnapshotRecord): Mount[] {
    const parents = this.#records.parentIds(ns, rec.key).map((id) => this.storage.fs(id));
    return this.#driver.mounts(
      { kind: rec.kind, fs: this.storage.fs(rec.backendId), work: this.storage.work(rec.backendId) },
      parents,
    );
  }

  #get(ctx: Context, key: string): SnapshotRecord {
    const rec = this.#records.get(namespaceOf(ctx), key);
    if (!rec) throw doesNotExist(key);
    return rec;
  }

  async mounts(ctx: Context, key: string): Promise<Mount[]> {
    const rec = this.#get(ctx, key);
    if (rec.kind === 'committed')
      throw failedPrecondition(`requested snapshot ${key} not active or view: failed precondition`);
    return this.#mountsOf(rec.namespace, rec);
  }

  async dirs(ctx: Context, key: string): Promise<LayerDirs> {
    const rec = this.#get(ctx, key);
    return {
      dir: this.storage.fs(rec.backendId),
      parents: this.#records.parentIds(rec.namespace, rec.key).map((id) => this.storage.fs(id)),
      layered: this.#driver.name === 'overlayfs',
    };
  }

  async applyTarget(ctx: Context, key: string): Promise<ApplyTarget> {
    const rec = this.#get(ctx, key);
    if (rec.kind !== 'active')
      throw failedPrecondition(`snapshot ${JSON.stringify(key)} is not active: failed precondition`);
    const whiteouts = this.#driver.whiteouts(rec.parent !== undefined);
    // A native child is a full copy of its parent; only overlay layers need to see their lowers.
    const parents =
      whiteouts === 'overlay'
        ? this.#records.parentIds(rec.namespace, rec.key).map((id) => this.storage.fs(id))
        : [];
    return { dir: this.storage.fs(rec.backendId), whiteouts, parents };
  }

  async commit(ctx: Context, name: string, key: string, opts?: CommitOptions): Promise<void> {
    const ns = namespaceOf(ctx);
    requireName(name, 'name');
    const labels = snapshotLabels(opts);
    const parent = opts?.parent === '' ? undefined : opts?.parent;
    if (parent !== undefined && !this.rebase)
      throw invalidArgument(
        `snapshotter ${this.name} cannot rebase a snapshot onto a parent: invalid argument`,
      );
    const committed = await this.#db.transaction(() => {
      const lease = requireContextLease(this.#db, ns, ctx);
      if (lease) addLeaseResource(this.#db, ns, lease, this.#leaseType, name);
      if (this.#records.get(ns, name)) return false;
      const rec = this.#records.get(ns, key);
      if (!rec) throw doesNotExist(key);
      if (rec.kind !== 'active')
        throw failedPrecondition(`snapshot ${JSON.stringify(key)} is not active: failed precondition`);
      if (parent !== undefined) {
        if (rec.parent !== undefined)
          throw failedPrecondition(
            `snapshot ${JSON.stringify(key)} already has parent ${JSON.stringify(rec.parent)}: failed precondition`,
          );
        this.#requireParent(ns, parent);
      }
      this.#records.commit(ns, key, name, labels, nowNs(), parent);
      if (lease) removeLeaseResource(this.#db, ns, lease, this.#leaseType, key);
      return true;
    });
    if (!committed) throw alreadyExists(`snapshot ${JSON.stringify(name)}: already exists`);
  }

  async remove(ctx: Context, key: string): Promise<void> {
    const ns = namespaceOf(ctx);
    const id = await this.#db.transaction(() => {
      const rec = this.#records.get(ns, key);
      if (!rec) throw doesNotExist(key);
      if (this.#records.hasChildren(ns, key))
        throw failedPrecondition(
          'cannot remove snapshot with child: failed precondition',
          `remove the snapshots built on ${key} first (hoist snapshot tree shows them)`,
        );
      this.#records.delete(ns, key);
      if (ctx.lease) removeLeaseResource(this.#db, ns, ctx.lease, this.#leaseType, key);
      return rec.backendId;
    });
    // The record is gone and its id is never reused: a failure here only leaves a directory for cleanup().
    await removeTree(this.storage.dir(id)).catch(() => undefined);
  }

  async stat(ctx: Context, key: string): Promise<SnapshotInfo> {
    return toSnapshotInfo(this.#get(ctx, key));
  }

  async update(
    ctx: Context,
    info: Pick<SnapshotInfo, 'name' | 'labels'>,
    fieldpaths: string[] = [],
  ): Promise<SnapshotInfo> {
    const ns = namespaceOf(ctx);
    if (!info.name) throw invalidArgument('snapshot name must not be empty: invalid argument');
    return this.#db.transaction(() => {
      const rec = this.#records.get(ns, info.name);
      if (!rec) throw doesNotExist(info.name);
      let labels: Record<string, string> = { ...rec.labels };
      if (fieldpaths.length === 0) labels = { ...(info.labels ?? {}) };
      for (const path of fieldpaths) {
        if (path.startsWith('labels.')) {
          const k = path.slice('labels.'.length);
          const v = info.labels?.[k];
          if (v === undefined || v === '') delete labels[k];
          else labels[k] = v;
        } else if (path === 'labels') labels = { ...(info.labels ?? {}) };
        else
          throw invalidArgument(
            `cannot update ${JSON.stringify(path)} field on snapshot ${JSON.stringify(info.name)}: invalid argument`,
          );
      }
      labels = cleanLabels(labels);
      validateLabels(labels, 'info.Labels');
      this.#records.setLabels(ns, info.name, labels, nowNs());
      return toSnapshotInfo(this.#records.get(ns, info.name)!);
    });
  }

  async list(ctx: Context, filters?: string[]): Promise<SnapshotInfo[]> {
    const ns = namespaceOf(ctx);
    const filter = compileFilters(filters);
    const out: SnapshotInfo[] = [];
    for (const rec of this.#records.list(ns)) {
      const info = toSnapshotInfo(rec);
      if (filter.match((path) => snapshotField(info, path))) out.push(info);
    }
    return out;
  }

  async usage(ctx: Context, key: string): Promise<SnapshotUsage> {
    const rec = this.#get(ctx, key);
    if (rec.kind === 'committed' && rec.usage) return rec.usage;
    let usage: SnapshotUsage;
    try {
      usage = await diskUsage(this.storage.fs(rec.backendId), ctx.signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw doesNotExist(key);
      throw err;
    }
    if (rec.kind === 'committed') await cacheSnapshotUsage(this.#db, rec.backendId, usage);
    return usage;
  }

  async cleanup(_ctx: Context): Promise<CleanupResult> {
    const doomed = await this.#db.transaction(() =>
      this.storage.collectOrphans(this.#db, this.#isOwnerAlive),
    );
    for (const p of doomed) await removeTree(p);
    return { removed: doomed.length };
  }
}
