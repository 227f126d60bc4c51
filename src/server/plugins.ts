// The plugin list Introspection.Plugins answers (`ctr plugins ls`). Types and ids follow containerd's
// registry so tools that look for a plugin (`io.containerd.snapshotter.v1` / `overlayfs`) find it; each
// registered gRPC service adds its own `io.containerd.grpc.v1` entry (see server.ts).
import { hostPlatform, type Platform } from '../core/platform.ts';

export interface PluginInfo {
  type: string;
  id: string;
  requires?: string[];
  platforms?: Platform[];
  exports?: Record<string, string>;
  capabilities?: string[];
  /** Set when the plugin failed to start (listed with status `error`). */
  initError?: { code: number; message: string };
}

export const PluginType = {
  content: 'io.containerd.content.v1',
  metadata: 'io.containerd.metadata.v1',
  snapshotter: 'io.containerd.snapshotter.v1',
  differ: 'io.containerd.differ.v1',
  gc: 'io.containerd.gc.v1',
  lease: 'io.containerd.lease.v1',
  event: 'io.containerd.event.v1',
  service: 'io.containerd.service.v1',
  grpc: 'io.containerd.grpc.v1',
} as const;

/** The store's own plugins: what exists whatever services are served. */
export function storePlugins(root: string): PluginInfo[] {
  const host = [hostPlatform()];
  return [
    { type: PluginType.content, id: 'content', exports: { root: `${root}/content` } },
    {
      type: PluginType.snapshotter,
      id: 'native',
      platforms: host,
      exports: { root: `${root}/snapshots/native` },
    },
    {
      type: PluginType.snapshotter,
      id: 'overlayfs',
      platforms: host,
      exports: { root: `${root}/snapshots/overlayfs` },
    },
    {
      type: PluginType.metadata,
      id: 'sqlite',
      requires: [PluginType.content, PluginType.snapshotter],
      exports: { path: `${root}/metadata.db` },
    },
    { type: PluginType.differ, id: 'walking', platforms: host, requires: [PluginType.metadata] },
    { type: PluginType.event, id: 'exchange' },
    { type: PluginType.gc, id: 'scheduler', requires: [PluginType.metadata] },
    { type: PluginType.lease, id: 'manager', requires: [PluginType.metadata] },
    ...['content', 'images', 'leases', 'namespaces'].map((s) => ({
      type: PluginType.service,
      id: `${s}-service`,
      requires: [PluginType.metadata],
    })),
  ];
}
