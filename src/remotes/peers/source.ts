// A place peers are found: a fixed list, a DNS name, a Kubernetes Service's EndpointSlices. Each answers
// with `host:port` addresses of peers' registry endpoints, or throws (the discovery keeps that source's
// last good answer).
import { joinHostPort, splitHostPort } from './address.ts';

export interface PeerSource {
  /** For log lines: `dns hoist-peers.kube-system.svc.cluster.local`. */
  readonly description: string;
  discover(): Promise<string[]>;
}

/** The config's `static` list, as written (validated as `host:port` when the config was loaded). */
export function staticPeers(addresses: readonly string[]): PeerSource {
  const list = addresses.map((a) => {
    const parsed = splitHostPort(a);
    return parsed ? joinHostPort(parsed.host, parsed.port) : a;
  });
  return { description: 'static list', discover: async () => list };
}
