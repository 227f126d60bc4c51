// What is in a store and its housekeeping, in one namespace: images and their names, snapshots, leases,
// namespaces, disk usage, prune and the consistency check. `Hoist` (hoist.ts) adds what moves images in
// and out (pull, push, save, load) and what transforms them. `backend` is the ports themselves
// (content, images, leases, namespaces, snapshotters, diff, maintenance) for what the methods do not cover.
import type { Backend } from '../api/backend.ts';
import type { ConsistencyOptions, LeaseUsage } from '../api/maintenance.ts';
import type { Lease } from '../api/metadata.ts';
import type { Snapshotter } from '../api/snapshots.ts';
import type { Context } from '../core/context.ts';
import { isHoistError } from '../core/errors.ts';
import type { PlatformOptions } from './options.ts';

export abstract class StoreView {
  readonly namespace: string;
  /** The store's ports: what every method here is written over. */
  readonly backend: Backend;

  protected constructor(backend: Backend, namespace: string) {
    this.backend = backend;
    this.namespace = namespace;
  }

  protected ctx(opts: { signal?: AbortSignal | undefined } = {}): Context {
    return opts.signal ? { namespace: this.namespace, signal: opts.signal } : { namespace: this.namespace };
  }

  abstract snapshotter(name?: string): Promise<Snapshotter>;

  /** One row per tag (as `hoist images`), or every name with `all`; filters as `--filter`. */
  async images(opts: { all?: boolean; filters?: string[] } = {}) {
    const { listImages } = await import('../images/list.ts');
    return listImages(this.backend.images, this.backend.content, this.ctx(), opts);
  }

  /** An image as docker's `image inspect` shows it (by name, ID or unique ID prefix). */
  async inspect(name: string): Promise<Record<string, unknown>> {
    const { inspectImage } = await import('../images/inspect.ts');
    return inspectImage(this.backend, this.ctx(), name);
  }

  /**
   * The image's build steps, newest first, as `docker history` lists them: each step of its config's
   * history with the layer it made (sizes are the layers' as the manifest declares them).
   */
  async history(name: string) {
    const { imageHistory } = await import('../images/history.ts');
    return imageHistory(this.backend, this.ctx(), name);
  }

  /** The daemon's socket when working through one (`--address`, or a live `hoist serve`); else undefined. */
  get address(): string | undefined {
    return this.backend.address;
  }

  /** The daemon's version (containerd's Version service) when working through one; else undefined. */
  async serverVersion(): Promise<{ version: string; revision: string } | undefined> {
    return this.backend.serverVersion();
  }

  /** Give the image `source` names another name. */
  async tag(source: string, target: string): Promise<void> {
    const { tagImage } = await import('../images/tag.ts');
    await tagImage(this.backend.images, this.ctx(), source, target);
  }

  /**
   * Remove names (a name removes that name; an image ID every name of the image), then collect garbage
   * (`async: true` leaves that to the next collection).
   */
  async remove(references: string[], opts: { force?: boolean; async?: boolean } = {}) {
    const { removeImages } = await import('../images/remove.ts');
    return removeImages(this.backend, this.ctx(), references, opts);
  }

  /** Remove dangling images (no tag), or with `all` every image that is not pinned; then collect. */
  async pruneImages(opts: { all?: boolean } = {}) {
    const { pruneImages } = await import('../images/prune.ts');
    const images = await pruneImages(this.backend, this.ctx(), { all: opts.all === true });
    return { images, gc: await this.backend.collectGarbage() };
  }

  /** Is each image whole and unpacked (every image when no name is given)? */
  async checkImages(names: string[] = [], opts: PlatformOptions = {}) {
    const [{ checkImages }, { ALL_PLATFORMS, onePlatform }, { hostPlatform, parsePlatform }] =
      await Promise.all([
        import('../images/check.ts'),
        import('../images/walk.ts'),
        import('../core/platform.ts'),
      ]);
    const sel = opts.allPlatforms
      ? ALL_PLATFORMS
      : onePlatform(opts.platform ? parsePlatform(opts.platform) : hostPlatform());
    return checkImages(this.backend, this.ctx(), names, sel);
  }

  async snapshots(opts: { snapshotter?: string; filters?: string[] } = {}) {
    return (await this.snapshotter(opts.snapshotter)).list(this.ctx(), opts.filters ?? []);
  }

  async snapshotInfo(key: string, opts: { snapshotter?: string } = {}) {
    return (await this.snapshotter(opts.snapshotter)).stat(this.ctx(), key);
  }

  async snapshotUsage(key: string, opts: { snapshotter?: string } = {}) {
    return (await this.snapshotter(opts.snapshotter)).usage(this.ctx(), key);
  }

  /** Remove a snapshot (one with children cannot be removed). */
  async removeSnapshot(key: string, opts: { snapshotter?: string } = {}): Promise<void> {
    await (await this.snapshotter(opts.snapshotter)).remove(this.ctx(), key);
  }

  /**
   * The namespace's leases with what they hold and what GC will do with them. A containerd has no usage
   * service: its leases come without bytes, owner or state (`usage: false`).
   */
  async leases(): Promise<LeaseUsage[]> {
    try {
      const u = await this.backend.maintenance.usage();
      return u.leases.filter((l) => l.namespace === this.namespace);
    } catch (err) {
      if (!(isHoistError(err) && err.code === 'HOIST_NOT_IMPLEMENTED')) throw err;
    }
    // A containerd has no usage service: its leases without the bytes they hold, the state from labels.
    const [{ Labels }, { leaseExpiry, leaseState }, { isOwnerAlive }] = await Promise.all([
      import('../core/labels.ts'),
      import('../gc/graph.ts'),
      import('../leases/owner.ts'),
    ]);
    const now = Date.now();
    return (await this.backend.leases.list(this.ctx())).map((l) => {
      const owner = l.labels[Labels.leaseOwner];
      const state = leaseState(l.labels, now, isOwnerAlive);
      return {
        ...l,
        namespace: this.namespace,
        resources: 0,
        bytes: 0,
        owner,
        ownerAlive: owner ? isOwnerAlive(owner) : undefined,
        expires: leaseExpiry(l.labels),
        alive: state !== 'expired',
        state,
      };
    });
  }

  /** A lease (content added under it is kept until it is removed or expires; `expiresInMs` 0 = never). */
  async createLease(opts: { id?: string; expiresInMs?: number } = {}): Promise<Lease> {
    const { Labels } = await import('../core/labels.ts');
    const labels: Record<string, string> = {};
    if (opts.expiresInMs)
      labels[Labels.gcExpire] = new Date(Date.now() + opts.expiresInMs)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z');
    return this.backend.leases.create(this.ctx(), opts.id ? { id: opts.id, labels } : { labels });
  }

  /** Remove a lease; its data goes with the next garbage collection unless something else holds it. */
  async removeLease(id: string): Promise<void> {
    await this.backend.leases.delete(this.ctx(), id);
  }

  namespaces() {
    return this.backend.namespaces.list();
  }

  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.backend.namespaces.create(name, labels);
  }

  /** Remove an empty namespace. */
  async removeNamespace(name: string): Promise<void> {
    await this.backend.namespaces.delete(name);
  }

  /** Where the disk goes: images in this namespace, content, shared and reclaimable bytes, snapshots, leases. */
  async diskUsage() {
    const usage = await this.backend.maintenance.usage();
    const records = await this.backend.images.list(this.ctx());
    return {
      namespace: this.namespace,
      images: new Set(records.map((i) => i.target.digest)).size,
      names: records.length,
      ...usage,
    };
  }

  /**
   * Reclaim: expired and abandoned leases, dangling images (with `all` every unpinned one), then what
   * nothing references any more (content, snapshots, partial pulls).
   */
  async prune(opts: { all?: boolean } = {}) {
    const { pruneImages } = await import('../images/prune.ts');
    const leases = await this.backend.maintenance.pruneLeases();
    const images = await pruneImages(this.backend, this.ctx(), { all: opts.all === true });
    return { leases, images, gc: await this.backend.collectGarbage() };
  }

  /** Is the store consistent: records against the disk, every image complete or fetchable. */
  checkStore(opts: ConsistencyOptions = {}) {
    return this.backend.maintenance.check(opts);
  }

  /** Reclaim what no image, lease or snapshot references. */
  collectGarbage() {
    return this.backend.collectGarbage();
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}
