// `hoist serve`: containerd's gRPC API on a unix socket, over the embedded store. One process owns the
// socket; the store itself stays usable by the embedded CLI (SQLite transactions keep both consistent).
//
// Extension points: a service module (services/*.ts, built with defineService) is added to
// `coreServices` below or passed in `extraServices`; it gets ServerDeps (backend, events, gc, log) and
// its plugins appear in Introspection. Snapshots, Diff and the CRI plug in this way.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Backend } from '../api/backend.ts';
import { serviceDefinition } from '../api/service-definition.ts';
import { parseTcpAddress } from '../config/config.ts';
import type { Logger } from '../core/log.ts';
import { openEmbedded } from '../embedded/backend.ts';
import type { PeerDiscovery } from '../remotes/peers/discovery.ts';
import { removeDaemonMarker, writeDaemonMarker } from './daemon-marker.ts';
import { EventBus } from './events.ts';
import { GcScheduler } from './gc-scheduler.ts';
import { type Listener, listen } from './h2-listener.ts';
import { type MetricsEndpoint, serveMetrics } from './metrics-http.ts';
import { type PluginInfo, PluginType, storePlugins } from './plugins.ts';
import { type RegistryEndpoint, serveRegistry } from './registry/endpoint.ts';
import { peerBlobLocator } from './registry/peer-redirect.ts';
import { CallTracker, type RpcEnv } from './rpc.ts';
import { ServerMetrics } from './server-metrics.ts';
import type { RegisteredService, ServerDeps } from './service.ts';
import { contentService } from './services/content.ts';
import { diffService } from './services/diff.ts';
import { eventsService } from './services/events.ts';
import { healthService } from './services/health.ts';
import { imagesService } from './services/images.ts';
import { introspectionService } from './services/introspection.ts';
import { leasesService } from './services/leases.ts';
import { maintenanceService } from './services/maintenance.ts';
import { namespacesService } from './services/namespaces.ts';
import { snapshotsService } from './services/snapshots.ts';
import { versionService } from './services/version.ts';
import { prepareSocket, resolveGroup, secureSocket, socketPath } from './socket.ts';
import { boundPath } from './systemd.ts';

/** How long a stop waits for cancelled handlers to clean up before closing the store anyway. */
const HANDLER_UNWIND_MS = 5000;

/** Go clients (ctr, kubelet) accept up to 16 MiB per message; so does containerd. */
export const MAX_MESSAGE_BYTES = 16 << 20;

export interface ServeOptions {
  root: string;
  /** Socket path or `unix://` address. */
  address: string;
  /** Group (name or gid) given access to the socket. */
  group?: string;
  /** Permission bits of the socket (default 0660). */
  socketMode?: number;
  /**
   * A listening socket to serve on instead of binding `address` (systemd socket activation: systemd.ts).
   * Its file, group and mode are systemd's: the server neither sets them nor removes the file on stop.
   */
  listenFd?: number;
  /** `host:port` for the Prometheus endpoint (none by default). */
  metricsAddress?: string;
  /** `host:port` for the read-only OCI Distribution endpoint peers pull from (none by default). */
  registryAddress?: string;
  /** The namespaces that endpoint serves (default k8s.io, then default). */
  registryNamespaces?: readonly string[];
  /**
   * The peers ([peers]) the daemon's pulls use: counted in the metrics, and the registry endpoint
   * redirects a request for a blob it lacks to one that has it.
   */
  peers?: PeerDiscovery | undefined;
  /** How old the store usage behind the size metrics may get (default server-metrics.ts USAGE_REFRESH_MS). */
  metricsUsageRefreshMs?: number;
  log: Logger;
  /** Periodic GC interval in ms (0: none). */
  gcIntervalMs: number;
  /** Delay between a deletion and the collection it triggers. */
  gcDelayMs?: number;
  /** How long a graceful stop waits for calls in flight before cancelling them. */
  shutdownTimeoutMs?: number;
  /** A backend to serve instead of opening the embedded store at `root` (closed on stop either way). */
  backend?: Backend;
  /**
   * Serve containerd's API over the backend (default). false: only Version, Health and `extraServices`,
   * and no daemon marker, for a backend that is another daemon's store (hoist's CRI in front of
   * containerd): containerd clients talk to that daemon, and the CLI must not take this socket for it.
   */
  storeApi?: boolean;
  /** More services (snapshots, diff, CRI…). */
  extraServices?: (deps: ServerDeps) => RegisteredService[];
}

export interface RunningServer {
  /** The socket path. */
  readonly path: string;
  readonly events: EventBus;
  /** Where the metrics endpoint listens, when there is one. */
  readonly metricsAddress: { host: string; port: number } | undefined;
  /** Where the registry (peer mirror) endpoint listens, when there is one. */
  readonly registryAddress: { host: string; port: number } | undefined;
  /** Stop accepting, let calls in flight finish (cancel them after the timeout, or at once with force), close the store. */
  stop(opts?: { force?: boolean }): Promise<void>;
}

function coreServices(
  deps: ServerDeps,
  stopping: AbortSignal,
  served: () => readonly string[],
): RegisteredService[] {
  return [
    versionService(),
    introspectionService(deps),
    namespacesService(deps),
    contentService(deps),
    imagesService(deps),
    leasesService(deps),
    snapshotsService(deps),
    diffService(deps),
    eventsService(deps, stopping),
    maintenanceService(deps),
    healthService(served, stopping),
  ];
}

/**
 * containerd's remote ReaderAt (`ctr content get`, `ctr images export`) opens one Read stream per 32 KiB
 * and cancels it (RST_STREAM) once its buffer is full. Node's HTTP/2 server treats more than 1000 resets
 * in a burst (then 33/s) as a rapid-reset attack and closes the connection, so a large blob fails
 * halfway with "transport is closing". The socket only admits the owner and its group, so raise the
 * limit. grpc-js exposes no option for it: set it on the options it passes to http2.createServer.
 */
function relaxStreamResetLimit(server: Server, log: Logger): void {
  const options = (server as unknown as { commonServerOptions?: Record<string, unknown> })
    .commonServerOptions;
  if (!options) {
    log.warn('cannot raise the HTTP/2 stream reset limit: large content reads may be cut off');
    return;
  }
  options.streamResetBurst = 1_000_000;
  options.streamResetRate = 100_000;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const { log } = opts;
  const handed = opts.listenFd;
  // A handed socket is reported (logs, the daemon marker) by the path it is bound to.
  const path =
    handed === undefined ? socketPath(opts.address) : ((await boundPath(handed)) ?? socketPath(opts.address));
  const gid = opts.group === undefined || handed !== undefined ? undefined : await resolveGroup(opts.group);
  if (handed === undefined) {
    const { replacedStale } = await prepareSocket(path);
    if (replacedStale) log.warn('removed stale socket', { path });
  } else log.info('serving the socket systemd passed', { fd: handed, path });

  const backend = opts.backend ?? (await openEmbedded(opts.root));
  const events = new EventBus();
  const metrics = new ServerMetrics({
    backend,
    log,
    callsInFlight: () => env.calls.size,
    registryEndpoint: opts.registryAddress !== undefined,
    ...(opts.peers ? { peers: opts.peers } : {}),
    ...(opts.metricsUsageRefreshMs === undefined ? {} : { usageRefreshMs: opts.metricsUsageRefreshMs }),
  });
  const gc = new GcScheduler({
    backend,
    log,
    intervalMs: opts.gcIntervalMs,
    onRun: (run) => metrics.gcRan(run),
    ...(opts.gcDelayMs === undefined ? {} : { delayMs: opts.gcDelayMs }),
  });
  const stopping = new AbortController();
  const env: RpcEnv = {
    log,
    stopping: stopping.signal,
    calls: new CallTracker(),
    onCallEnded: metrics.callEnded,
  };

  let services: RegisteredService[] = [];
  const deps: ServerDeps = {
    backend,
    events,
    log,
    root: opts.root,
    gc,
    telemetry: metrics,
    plugins: () => {
      const out: PluginInfo[] = storePlugins(opts.root);
      for (const s of services) {
        out.push(...(s.plugins ?? []));
        out.push({ type: PluginType.grpc, id: s.id });
      }
      return out;
    },
  };
  const served = () => services.map((s) => s.service.typeName);
  services = [
    ...(opts.storeApi === false
      ? [versionService(), healthService(served, stopping.signal)]
      : coreServices(deps, stopping.signal, served)),
    ...(opts.extraServices?.(deps) ?? []),
  ];

  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  relaxStreamResetLimit(server, log);
  for (const s of services) server.addService(serviceDefinition(s.service), s.implementation(env));

  // hoist accepts on the socket itself and gives grpc-js each connection, so that a client whose
  // `:authority` Node's HTTP/2 server would refuse (one that dials the socket path) still gets answers.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  let listener: Listener | undefined;
  let endpoint: MetricsEndpoint | undefined;
  let registry: RegistryEndpoint | undefined;
  const locator = opts.registryAddress && opts.peers ? peerBlobLocator(opts.peers) : undefined;
  try {
    // Nobody but the owner may connect before the permissions below are in place.
    const umask = process.umask(0o177);
    try {
      listener = await listen(handed === undefined ? path : { fd: handed }, injector, log);
    } finally {
      process.umask(umask);
    }
    if (handed === undefined) await secureSocket(path, gid, opts.socketMode);
    endpoint = opts.metricsAddress
      ? await serveMetrics(parseTcpAddress(opts.metricsAddress), () => metrics.scrape(), log)
      : undefined;
    registry = opts.registryAddress
      ? await serveRegistry(parseTcpAddress(opts.registryAddress), {
          backend,
          namespaces: opts.registryNamespaces ?? ['k8s.io', 'default'],
          log,
          observe: metrics.registryServed,
          locator,
        })
      : undefined;
  } catch (err) {
    await endpoint?.close();
    listener?.close();
    server.forceShutdown();
    await backend.close();
    throw err;
  }
  gc.start();
  // Tell CLI processes on the same store that a daemon owns it, so they go through it (session.ts).
  if (opts.storeApi !== false) await writeDaemonMarker(opts.root, path);
  log.info('serving', {
    address: path,
    root: opts.root,
    services: services.map((s) => s.service.typeName),
    metrics: endpoint && `${endpoint.address.host}:${endpoint.address.port}`,
    registry: registry && `${registry.address.host}:${registry.address.port}`,
  });

  let stopped: Promise<void> | undefined;
  let forceNow: (() => void) | undefined;
  const stop = async (force: boolean) => {
    stopping.abort();
    // No new connections; those still being read go to grpc-js, whose shutdown closes them with the rest.
    listener.close();
    await new Promise<void>((resolve) => {
      forceNow = () => {
        env.calls.abortAll();
        server.forceShutdown();
        resolve();
      };
      if (force) return forceNow();
      const timer = setTimeout(() => {
        log.warn('calls still running after the shutdown timeout: cancelling them', {
          calls: env.calls.size,
        });
        forceNow?.();
      }, opts.shutdownTimeoutMs ?? 10_000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Cancelled handlers close their writers (keeping ingests resumable) before the store closes.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([env.calls.idle(), new Promise((r) => (timer = setTimeout(r, HANDLER_UNWIND_MS)))]);
    clearTimeout(timer);
    await endpoint?.close();
    await registry?.close();
    locator?.close();
    await gc.stop();
    if (opts.storeApi !== false) await removeDaemonMarker(opts.root, path);
    await backend.close();
    log.info('stopped', { address: path });
  };
  return {
    path,
    events,
    metricsAddress: endpoint?.address,
    registryAddress: registry?.address,
    stop(o) {
      if (o?.force && stopped) {
        // A second, forced request while a graceful stop waits: cut it short.
        forceNow?.();
        return stopped;
      }
      stopped ??= stop(o?.force ?? false);
      return stopped;
    },
  };
}
