// The Backend over a containerd API endpoint (`--address` / HOIST_ADDRESS): a real containerd (e.g.
// /run/containerd/containerd.sock) or `hoist serve`. Listing, inspecting, tagging and removing work on
// the daemon's own records, so hoist's one-row-per-image view applies to a node's CRI images as they are.
// Garbage collection belongs to the daemon: image deletes ask for `sync`, so it has run when rmi returns.
// Unpack goes as ctr's does (Snapshots.Prepare, Diff.Apply on the daemon, Commit); disk usage and prune
// go to hoist serve's maintenance service (a containerd has none: refused with a clear error).
import type { Backend } from '../../api/backend.ts';
import { Version } from '../../api/gen/containerd/services/version/v1/version_pb.ts';
import { GrpcChannel } from './channel.ts';
import { GrpcMaintenance } from './maintenance.ts';
import { GrpcSnapshotter, remoteApply, remoteDiff } from './snapshots.ts';
import { GrpcContentStore, GrpcImageStore, GrpcLeaseManager, GrpcNamespaceStore } from './stores.ts';

export async function openGrpc(address: string): Promise<Backend> {
  const ch = new GrpcChannel(address);
  const maintenance = new GrpcMaintenance(ch);
  return {
    content: new GrpcContentStore(ch),
    images: new GrpcImageStore(ch),
    leases: new GrpcLeaseManager(ch),
    namespaces: new GrpcNamespaceStore(ch),
    snapshotters: new Map([
      ['overlayfs', new GrpcSnapshotter(ch, 'overlayfs')],
      ['native', new GrpcSnapshotter(ch, 'native')],
    ]),
    diff: {
      apply: (ctx, layer, mounts) => remoteApply(ch, ctx, layer, mounts),
      compare: (ctx, lower, upper, opts) => remoteDiff(ch, ctx, lower, upper, opts),
    },
    // hoist serve collects on request (prune) and reports; a containerd collected during the
    // synchronous deletes and has nothing to report.
    collectGarbage: () => maintenance.collectGarbage(),
    maintenance,
    address,
    serverVersion: async () => {
      // Version takes no namespace; the header is sent anyway, as every call through the channel does.
      const r = await ch.unary(Version, Version.method.version, { namespace: 'default' }, {});
      return { version: r.version, revision: r.revision };
    },
    close: () => ch.close(),
  };
}
