// The config's `[peers]` as a PeerDiscovery (src/remotes/peers): its sources, the registries peers mirror,
// and what counts as this node (left out of the list). One discovery per config object, so that a process
// looks peers up once per refresh interval whatever number of resolvers it makes; `hoist serve` makes its
// own, logging to the daemon's log and knowing the registry address its flag gave.
import { networkInterfaces } from 'node:os';
import {
  type HoistConfig,
  kubernetesService,
  parseDuration,
  parseTcpAddress,
  peersEnabled,
} from '../config/config.ts';
import type { Logger } from '../core/log.ts';
import { splitHostPort } from '../remotes/peers/address.ts';
import { PeerDiscovery } from '../remotes/peers/discovery.ts';
import { dnsPeers } from '../remotes/peers/dns.ts';
import { endpointSlicePeers } from '../remotes/peers/kubernetes.ts';
import { type PeerSource, staticPeers } from '../remotes/peers/source.ts';

export interface PeerDiscoveryChoice {
  /** This node's registry endpoint (default: the config's serve.registry_address). */
  registryAddress?: string | undefined;
  onWarning: (message: string) => void;
  onChange?: (peers: readonly string[]) => void;
}

/** A DNS or API lookup that takes longer than this is a failed one (the last good list is kept). */
const LOOKUP_TIMEOUT_MS = 5_000;

const WILDCARDS = new Set(['', '::', '0.0.0.0']);

function hostAddresses(external: boolean): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!external || !a.internal) out.add(a.address.toLowerCase());
  return out;
}

/**
 * This node, among the peers: its registry address (on a wildcard address, any of the host's addresses at
 * that port), and the host's own non-loopback addresses at the peers' port (a hostNetwork pod is listed
 * under its node's address).
 */
export function selfMatcher(registryAddress: string | undefined, peersPort: number | undefined) {
  const own = registryAddress === undefined ? undefined : parseTcpAddress(registryAddress);
  const all = hostAddresses(false);
  const external = hostAddresses(true);
  return (address: string): boolean => {
    const peer = splitHostPort(address);
    if (!peer) return false;
    const ip = peer.host.toLowerCase();
    if (
      own &&
      peer.port === own.port &&
      (ip === own.host.toLowerCase() || (WILDCARDS.has(own.host) && all.has(ip)))
    )
      return true;
    return peer.port === peersPort && external.has(ip);
  };
}

function sources(config: HoistConfig): PeerSource[] {
  const p = config.peers;
  const out: PeerSource[] = [];
  if (p.static.length > 0) out.push(staticPeers(p.static));
  if (p.dns !== undefined)
    out.push(
      dnsPeers({
        name: p.dns,
        port: p.port,
        portName: p.port_name,
        servers: p.dns_server === undefined ? undefined : [p.dns_server],
        timeoutMs: LOOKUP_TIMEOUT_MS / 2,
      }),
    );
  const service = p.kubernetes_service === undefined ? undefined : kubernetesService(p.kubernetes_service);
  if (service)
    out.push(
      endpointSlicePeers({
        namespace: service.namespace,
        service: service.name,
        portName: p.port_name,
        port: p.port,
        apiUrl: p.kubernetes_api,
        tokenFile: p.kubernetes_token_file,
        caFile: p.kubernetes_ca_file,
        nodeName: p.node_name,
        timeoutMs: LOOKUP_TIMEOUT_MS,
      }),
    );
  return out;
}

/** The discovery the config asks for; undefined when it names no peers. */
export function createPeerDiscovery(
  config: HoistConfig,
  choice: PeerDiscoveryChoice,
): PeerDiscovery | undefined {
  if (!peersEnabled(config.peers)) return undefined;
  const p = config.peers;
  return new PeerDiscovery({
    sources: sources(config),
    registries: p.registries,
    refreshMs: parseDuration(p.refresh),
    maxPerBlob: p.max_per_blob,
    isSelf: selfMatcher(choice.registryAddress ?? config.serve.registry_address, p.port),
    dialTimeoutMs: parseDuration(p.dial_timeout),
    onWarning: choice.onWarning,
    ...(choice.onChange ? { onChange: choice.onChange } : {}),
  });
}

const perConfig = new WeakMap<HoistConfig, PeerDiscovery | undefined>();

/**
 * The process's discovery for this config (the library's and CLI's pulls). Warnings go to the log the
 * first caller has (the CLI's: above the progress display, in --log-format), else to stderr.
 */
export function peersFor(config: HoistConfig, log?: Logger): PeerDiscovery | undefined {
  if (!perConfig.has(config)) {
    const onWarning = log
      ? (m: string) => log.warn(m)
      : (m: string) => process.stderr.write(`warning: ${m}\n`);
    perConfig.set(config, createPeerDiscovery(config, { onWarning }));
  }
  return perConfig.get(config);
}
