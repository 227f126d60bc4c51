// The request metadata containerd clients send, turned into the store's Context: `containerd-namespace`
// (every namespaced call; missing → containerd's `namespace is required`), `containerd-lease` (new
// content joins that lease), and a signal aborted when the client cancels or the server is forced down.
import type { Metadata } from '@grpc/grpc-js';
import type { Context } from '../core/context.ts';
import { failedPrecondition } from '../core/errors.ts';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

// containerd's Go clients prepend a header each time a context is given a namespace (or lease) again,
// so one call can carry several values, latest first, and containerd takes the first. Node's HTTP/2
// joins repeated header fields into one value with ", "; names and lease IDs are identifiers (no commas
// or spaces), so the part before the first comma is the value containerd would use.
function first(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  if (v === undefined) return undefined;
  const s = (typeof v === 'string' ? v : v.toString('utf8')).split(',')[0]!.trim();
  return s === '' ? undefined : s;
}

export interface CallContext {
  /** The namespace header, if sent (Version, Introspection and Namespaces do not need one). */
  readonly namespace: string | undefined;
  readonly lease: string | undefined;
  readonly signal: AbortSignal;
  /** The store Context for a namespaced call; throws containerd's error when there is no namespace. */
  store(): Context;
}

export function callContext(md: Metadata, signal: AbortSignal): CallContext {
  const namespace = first(md, NAMESPACE_HEADER);
  const lease = first(md, LEASE_HEADER);
  return {
    namespace,
    lease,
    signal,
    store() {
      // Same code and text as containerd's namespaces.NamespaceRequired; identifier validation of the
      // name happens in the store (src/metadata/common.ts namespaceOf) with containerd's message too.
      if (namespace === undefined) throw failedPrecondition('namespace is required: failed precondition');
      const ctx: Context = { namespace, signal };
      if (lease !== undefined) ctx.lease = lease;
      return ctx;
    },
  };
}
