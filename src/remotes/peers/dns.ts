// Peers from DNS, the way a Kubernetes headless Service publishes the ready pods behind it: the name's A
// and AAAA records (one per ready pod, the port from the config), or with a port name its SRV records
// `_<port name>._tcp.<name>` (each naming a pod's host name and the port), whose targets are resolved in
// turn. The lookups go to the given servers, else the system's (node:dns's c-ares resolver, which does not
// apply resolv.conf's search list: give the fully qualified name).
import type { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { joinHostPort } from './address.ts';
import type { PeerSource } from './source.ts';

export interface DnsPeersOptions {
  /** `hoist-peers.kube-system.svc.cluster.local`. */
  name: string;
  /** The registry port on every address (A/AAAA lookups). */
  port?: number | undefined;
  /** Look up SRV records `_<portName>._tcp.<name>` instead, which carry the port. */
  portName?: string | undefined;
  /** `ip` or `ip:port` of DNS servers to ask instead of the system's. */
  servers?: readonly string[] | undefined;
  /** Per query attempt. */
  timeoutMs: number;
}

/** A and AAAA of a name: either may be missing (an IPv4-only Service has no AAAA), not both. */
async function addresses(resolver: Resolver, name: string): Promise<string[]> {
  if (isIP(name)) return [name];
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason;
  return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
}

export function dnsPeers(opts: DnsPeersOptions): PeerSource {
  const srvName = opts.portName ? `_${opts.portName}._tcp.${opts.name}` : undefined;
  return {
    description: `dns ${srvName ?? opts.name}`,
    async discover() {
      // A resolver per lookup: its servers are this source's, whatever else the process sets.
      // node:dns on first use: a static import would load it into every command's start-up (bundle).
      const { Resolver } = process.getBuiltinModule('node:dns/promises');
      const resolver = new Resolver({ timeout: opts.timeoutMs, tries: 2 });
      if (opts.servers && opts.servers.length > 0) resolver.setServers([...opts.servers]);
      if (srvName) {
        const records = await resolver.resolveSrv(srvName);
        const found = await Promise.all(
          records.map(async (r) => (await addresses(resolver, r.name)).map((ip) => joinHostPort(ip, r.port))),
        );
        return found.flat();
      }
      if (opts.port === undefined) throw new Error(`${opts.name}: no port to use with its addresses`);
      const port = opts.port;
      return (await addresses(resolver, opts.name)).map((ip) => joinHostPort(ip, port));
    },
  };
}
