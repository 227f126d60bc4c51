// A lease held by a running operation (pull, convert, …): it records its owner process and is renewed
// while the owner lives, so a crash leaves data that expires `expiryMs` after the last renewal and that
// `prune` can reclaim at once (the owner is provably dead), while a running pull is never touched.

import type { Lease, LeaseManager } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import { Labels } from '../core/labels.ts';
import { currentOwner, isOwnerAlive } from './owner.ts';

export interface HeldLease {
  readonly id: string;
  /** Stop renewing and delete the lease (its resources become collectable). */
  release(): Promise<void>;
  /** Stop renewing but keep the lease (an interrupted operation keeps its data for resume). */
  keep(): Promise<void>;
}

export interface LeaseOptions {
  purpose: string;
  ref?: string;
  expiryMs: number;
  /** Renewal interval; default a third of the expiry, at most a minute. */
  renewMs?: number;
}

function expiryLabel(expiryMs: number): string {
  // RFC 3339 with second precision, as containerd's WithExpiration writes it.
  return new Date(Date.now() + expiryMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function holdLease(leases: LeaseManager, ctx: Context, opts: LeaseOptions): Promise<HeldLease> {
  const labels = (): Record<string, string> => {
    const l: Record<string, string> = {
      [Labels.leaseOwner]: currentOwner(),
      [Labels.leasePurpose]: opts.purpose,
      [Labels.gcExpire]: expiryLabel(opts.expiryMs),
    };
    if (opts.ref) l[Labels.leaseRef] = opts.ref;
    return l;
  };
  const lease: Lease = await leases.create(ctx, { labels: labels() });
  const every = opts.renewMs ?? Math.max(1000, Math.min(60_000, Math.floor(opts.expiryMs / 3)));
  let renewing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = leases.setLabels(ctx, lease.id, labels()).catch(() => undefined);
  }, every);
  timer.unref();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    await renewing;
  };
  return {
    id: lease.id,
    async release() {
      await stop();
      await leases.delete(ctx, lease.id);
    },
    async keep() {
      await stop();
      // Renew once more so the expiry counts from the moment the operation stopped.
      await leases.setLabels(ctx, lease.id, labels()).catch(() => undefined);
    },
  };
}

/**
 * After an operation succeeded, drop the leases earlier interrupted runs of it left (same purpose and ref,
 * owner process gone) once none of their ingests is still unfinished. Their committed content is now held
 * by the operation's result (or was not part of it); `system prune` would drop them at once anyway, as
 * their owner is dead, but until then they would linger in `lease ls` and `system df`. A lease that still
 * holds a partial ingest (of another platform, say) is kept for a later resume.
 */
export async function dropSupersededLeases(
  leases: LeaseManager,
  ctx: Context,
  opts: { purpose: string; ref: string; keep: string; ingestExists: (ref: string) => Promise<boolean> },
): Promise<string[]> {
  const dropped: string[] = [];
  for (const lease of await leases.list(ctx)) {
    const owner = lease.labels[Labels.leaseOwner];
    if (lease.id === opts.keep || owner === undefined || isOwnerAlive(owner)) continue;
    if (lease.labels[Labels.leasePurpose] !== opts.purpose || lease.labels[Labels.leaseRef] !== opts.ref)
      continue;
    let unfinished = false;
    for (const r of await leases.listResources(ctx, lease.id))
      if (r.type === 'ingests' && (await opts.ingestExists(r.id))) unfinished = true;
    if (unfinished) continue;
    await leases.delete(ctx, lease.id).catch(() => undefined);
    dropped.push(lease.id);
  }
  return dropped;
}
