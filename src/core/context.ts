// The per-call context every store operation takes, like containerd's ctx: which namespace, which lease
// new content joins, and a signal to cancel. Passed explicitly; there is no ambient state.

export interface Context {
  namespace: string;
  /** Lease that new content, ingests and snapshots are added to (containerd's `containerd-lease`). */
  lease?: string;
  signal?: AbortSignal;
}

export const DEFAULT_NAMESPACE = 'default';

/** containerd's identifier rule (namespaces, lease ids, snapshotter names). */
const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

export function isIdentifier(value: string): boolean {
  return value.length > 0 && value.length <= 76 && IDENTIFIER.test(value);
}

export function withLease(ctx: Context, lease: string | undefined): Context {
  const out: Context = { ...ctx };
  if (lease === undefined) delete out.lease;
  else out.lease = lease;
  return out;
}
