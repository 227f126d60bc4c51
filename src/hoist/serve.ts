// `serve`: the daemon as a library call — containerd's gRPC API and the CRI ImageService over the embedded
// store at the config's root, on a unix socket, until `stop()`. The CRI's pulls take the config's
// registry settings, as `hoist pull` does, and like containerd's CRI talk plain HTTP to loopback registries
// and use the credentials a request carries before Docker's config.json. Given a containerd socket, it
// serves only the CRI image service, over that containerd's store (docs/kubernetes-node.md).
import { type HoistConfig, loadConfig, parseDuration, registryTimeouts } from '../config/config.ts';
import type { Context } from '../core/context.ts';
import { invalidArgument } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { RunningServer } from '../server/server.ts';
import { createPeerDiscovery } from './peers.ts';

export interface ServeOptions {
  /** The store directory (default: the config's `root`). */
  root?: string;
  /** A config file to read instead of the default one, or the settings themselves. */
  config?: string | HoistConfig;
  // Each option below defaults to its key in the config's [serve] table, then to hoist's default.
  /** The socket path (default /run/hoist/hoist.sock as root, else $XDG_RUNTIME_DIR/hoist/hoist.sock). */
  address?: string;
  /** Group (name or gid) allowed to use the socket. */
  group?: string;
  /** Permission bits of the socket (default 0660). */
  socketMode?: number;
  /** A listening socket to serve instead of binding `address` (systemd socket activation). */
  listenFd?: number;
  /** Where the daemon logs (default: info and above to stderr, one JSON object a line). */
  log?: Logger;
  /** How long a graceful stop waits for calls in flight (default 10 s). */
  shutdownTimeoutMs?: number;
  /** `host:port` to serve Prometheus metrics on (default: none). */
  metricsAddress?: string;
  /** `host:port` of the read-only registry endpoint peers use as a mirror (default: none). */
  registryAddress?: string;
  /**
   * A containerd socket (default: the config's `containerd_address`): serve only the CRI image service,
   * on that containerd's store in `k8s.io`, for a kubelet whose runtime is that containerd.
   */
  containerd?: string;
}

export async function serve(opts: ServeOptions = {}): Promise<RunningServer> {
  const config =
    typeof opts.config === 'object'
      ? opts.config
      : loadConfig({ path: opts.config, env: process.env, isRoot: process.getuid?.() === 0 });
  // Loaded on use: the gRPC stack (grpc-js, protobuf) is ~130 modules no other call needs.
  const [
    { startServer },
    { criImageService },
    { createResolver, dockerCredentials },
    { createLogger },
    socket,
  ] = await Promise.all([
    import('../server/server.ts'),
    import('../server/services/cri-images.ts'),
    import('../remotes/index.ts'),
    import('../core/log.ts'),
    import('../server/socket.ts'),
  ]);
  const containerd = opts.containerd ?? config.containerd_address;
  const front = containerd ? await containerdStore(containerd, config.snapshotter) : undefined;
  const settings = config.serve;
  const group = opts.group ?? settings.group;
  const metricsAddress = opts.metricsAddress ?? settings.metrics_address;
  const registryAddress = opts.registryAddress ?? settings.registry_address;
  const log = opts.log ?? createLogger(settings.log_level, undefined, {}, settings.log_format);
  // One discovery for the daemon's life: every CRI pull uses the list it keeps fresh.
  const peers = createPeerDiscovery(config, {
    registryAddress,
    onWarning: (message) => log.warn(message),
    onChange: (found) => log.info('peers', { peers: found }),
  });
  return startServer({
    root: opts.root ?? config.root,
    ...(front ? { backend: front.backend, storeApi: false } : {}),
    address: opts.address ?? settings.address ?? socket.defaultAddress(),
    ...(group === undefined ? {} : { group }),
    socketMode: opts.socketMode ?? settings.socket_mode,
    ...(opts.listenFd === undefined ? {} : { listenFd: opts.listenFd }),
    ...(metricsAddress === undefined ? {} : { metricsAddress }),
    ...(registryAddress === undefined
      ? {}
      : { registryAddress, registryNamespaces: settings.registry_namespaces }),
    ...(peers ? { peers } : {}),
    log,
    gcIntervalMs: parseDuration(config.gc.schedule),
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? parseDuration(settings.shutdown_timeout),
    extraServices: (deps) => [
      criImageService(deps, {
        resolver: async (domain, auth) => {
          const fromDockerConfig = dockerCredentials();
          const host = domain.replace(/:\d+$/, '');
          const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
          const plain = config.registry.plain_http;
          return createResolver({
            plainHttp: loopback ? [...plain, domain] : plain,
            insecureSkipVerify: config.registry.insecure_skip_verify,
            hostsDir: config.registry.config_path,
            credentials: async (h) => (auth && h === auth.host ? auth.creds : fromDockerConfig(h)),
            concurrency: config.max_concurrent_downloads,
            timeouts: registryTimeouts(config),
            ...(peers ? { peers } : {}),
          });
        },
        ...(front ? { imageFs: front.imageFs } : {}),
        snapshotter: config.snapshotter,
        discardLayers: config.discard_unpacked_layers,
        leaseExpiryMs: parseDuration(config.pull_lease_expiry),
      }),
    ],
  });
}

/**
 * A containerd's store as hoist serve's backend: pulls write its content, its Diff service unpacks into
 * its snapshotter, and the records are the ones its own CRI reads (it sees them through its event stream).
 */
async function containerdStore(address: string, snapshotter: string) {
  const [{ openGrpc }, { snapshotterRoot, SnapshotUsageTotal }] = await Promise.all([
    import('../client/grpc/backend.ts'),
    import('../client/grpc/image-fs.ts'),
  ]);
  // Asked first: a wrong socket or snapshotter fails the start, not the kubelet's first call.
  const mountpoint = await snapshotterRoot(address, snapshotter);
  const backend = await openGrpc(address);
  const sn = backend.snapshotters.get(snapshotter);
  if (!sn) {
    await backend.close();
    throw invalidArgument(
      `snapshotter "${snapshotter}" cannot be used through a containerd socket: use ${[...backend.snapshotters.keys()].join(' or ')}`,
    );
  }
  const usage = new SnapshotUsageTotal(sn);
  return {
    backend,
    imageFs: async (ctx: Context) => {
      const u = await usage.total(ctx);
      return { mountpoint, bytes: u.size, inodes: u.inodes };
    },
  };
}
