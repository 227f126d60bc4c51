// A containerd's image file system as its CRI plugin reports it in ImageFsInfo: the snapshotter's
// directory (which containerd exports through Introspection as the plugin's `root`) and the sum of the
// usage of every snapshot of that snapshotter in the CRI's namespace. hoist's CRI in front of a containerd
// answers the kubelet with these numbers, so its image garbage collection sees the same disk.
import { Introspection } from '../../api/gen/containerd/services/introspection/v1/introspection_pb.ts';
import type { Snapshotter, SnapshotUsage } from '../../api/snapshots.ts';
import type { Context } from '../../core/context.ts';
import { HoistError } from '../../core/errors.ts';
import { GrpcChannel } from './channel.ts';

/** Where a containerd's snapshotter keeps its data (e.g. /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs). */
export async function snapshotterRoot(address: string, snapshotter: string): Promise<string> {
  const ch = new GrpcChannel(address);
  try {
    const r = await ch.unary(
      Introspection,
      Introspection.method.plugins,
      { namespace: 'default' },
      {
        filters: [`type==io.containerd.snapshotter.v1,id==${snapshotter}`],
      },
    );
    const plugin = r.plugins[0];
    const root = plugin?.exports.root;
    if (!plugin || plugin.initErr || !root)
      throw new HoistError(
        'HOIST_NOT_FOUND',
        `the containerd at ${address} has no working snapshotter "${snapshotter}"${plugin?.initErr ? ` (${plugin.initErr.message})` : ''}`,
        {
          hint: 'set `snapshotter` in hoist’s config to the one containerd’s CRI uses (containerd config: snapshotter)',
        },
      );
    return root;
  } finally {
    ch.close();
  }
}

/**
 * The usage of all snapshots of `snapshotter` in the context's namespace. A committed snapshot never
 * changes, so its usage is asked once and kept; active ones (containers' writable layers) every time, as
 * containerd's CRI does in its periodic snapshot sync.
 */
export class SnapshotUsageTotal {
  readonly #sn: Snapshotter;
  readonly #committed = new Map<string, SnapshotUsage>();

  constructor(sn: Snapshotter) {
    this.#sn = sn;
  }

  async total(ctx: Context): Promise<SnapshotUsage> {
    const infos = await this.#sn.list(ctx);
    const seen = new Set<string>();
    let size = 0;
    let inodes = 0;
    for (const info of infos) {
      const committed = info.kind === 'committed';
      let u = committed ? this.#committed.get(info.name) : undefined;
      if (!u) {
        // Removed between the list and this call: it no longer uses anything.
        u = await this.#sn.usage(ctx, info.name).catch(() => ({ size: 0, inodes: 0 }));
        if (committed) this.#committed.set(info.name, u);
      }
      if (committed) seen.add(info.name);
      size += u.size;
      inodes += u.inodes;
    }
    for (const name of this.#committed.keys()) if (!seen.has(name)) this.#committed.delete(name);
    return { size, inodes };
  }
}
