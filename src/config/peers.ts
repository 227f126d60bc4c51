// The `[peers]` table: where a node finds the other nodes whose registry endpoints it pulls through
// (docs/peer-mirror.md). A fixed list, a DNS name (a headless Service's), a Kubernetes Service's
// EndpointSlices, or any mix; which registries they mirror; how often to look again; how many a blob
// tries. Types are checked by config.ts's schema; what needs more (addresses, ports, the service's
// namespace, what goes with what) is checked here.
import { parseDuration } from '../core/duration.ts';
import { parseTcpAddress } from './serve.ts';

export interface PeersConfig {
  /** `host:port` of peers' registry endpoints. */
  static: string[];
  /** A name whose A/AAAA (or, with port_name, SRV) records are the peers: a headless Service's. */
  dns?: string;
  /** `ip` or `ip:port` of the DNS server to ask instead of the system's. */
  dns_server?: string;
  /** The registry port of the peers found by DNS A/AAAA records (or EndpointSlices without a named port). */
  port?: number;
  /** The Service's port name: DNS asks SRV `_<port_name>._tcp.<dns>`; EndpointSlices take that port. */
  port_name?: string;
  /** `<namespace>/<name>` of the Service whose EndpointSlices list the peers. */
  kubernetes_service?: string;
  /** `https://host:port` of the API server (default: the pod's KUBERNETES_SERVICE_HOST/PORT). */
  kubernetes_api?: string;
  kubernetes_token_file: string;
  kubernetes_ca_file: string;
  /** This node's name (downward API spec.nodeName): its own endpoint is left out of the slices. */
  node_name?: string;
  /** The registries whose pulls go through peers; `*` for all. */
  registries: string[];
  /** How old the peer list may get before it is looked up again. */
  refresh: string;
  /** Peers a pull asks for one blob before the registry. */
  max_per_blob: number;
  /** Connect deadline for a peer. */
  dial_timeout: string;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function peersDefaults(): PeersConfig {
  return {
    static: [],
    kubernetes_token_file: `${SERVICE_ACCOUNT_DIR}/token`,
    kubernetes_ca_file: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
    registries: ['*'],
    refresh: '30s',
    max_per_blob: 3,
    dial_timeout: '2s',
  };
}

/** Is any source of peers configured? */
export function peersEnabled(peers: PeersConfig): boolean {
  return peers.static.length > 0 || peers.dns !== undefined || peers.kubernetes_service !== undefined;
}

/** `<namespace>/<name>` split. */
export function kubernetesService(value: string): { namespace: string; name: string } | undefined {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.exec(value);
  return m ? { namespace: m[1]!, name: m[3]! } : undefined;
}

/** What is wrong with a `[peers]` table whose keys have the right types; undefined when nothing is. */
export function peersProblem(peers: PeersConfig): string | undefined {
  for (const address of peers.static) {
    let port = 0;
    try {
      // `:5050` listens on every interface; a peer needs a host to be reached at.
      if (!address.startsWith(':')) port = parseTcpAddress(address).port;
    } catch {}
    if (!(port >= 1))
      return `peers.static: ${JSON.stringify(address)} is not host:port (e.g. "10.0.0.2:5050")`;
  }
  if (peers.port !== undefined && peers.port > 65_535) return 'peers.port must be a port number (1-65535)';
  if (peers.dns !== undefined && peers.port === undefined && peers.port_name === undefined)
    return 'peers.dns needs peers.port (the registry port of every address) or peers.port_name (SRV records)';
  if (peers.dns_server !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+)(:\d{1,5})?$/.test(peers.dns_server))
    return 'peers.dns_server must be an IP address, with a port if not 53 ("10.96.0.10" or "127.0.0.1:5353")';
  if (peers.kubernetes_service !== undefined && !kubernetesService(peers.kubernetes_service))
    return 'peers.kubernetes_service must be "<namespace>/<service>", such as "kube-system/hoist-peers"';
  if (peers.kubernetes_api !== undefined && !/^https:\/\/[^/\s]+\/?$/.test(peers.kubernetes_api))
    return 'peers.kubernetes_api must be an https:// URL of the API server, such as "https://10.96.0.1:443"';
  for (const key of ['refresh', 'dial_timeout'] as const)
    if (parseDuration(peers[key]) <= 0) return `peers.${key} must be longer than 0`;
  return undefined;
}
