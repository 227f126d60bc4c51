// A blob this node's endpoint lacks, found at a peer: the peers the blob ranks first (the discovery's
// rendezvous order and cap) are asked with HEAD at once, and the best-ranked one that has it is where the
// endpoint redirects the request (307). A plain containerd that lists only its node-local hoist as a
// mirror then still gets the layer from a peer, not the registry. The redirect and the probes carry
// `redirected=1`: a peer never redirects such a request again, so a blob nobody has ends in one 404.
import type { Agent } from 'node:http';
import type { PeerDiscovery } from '../../remotes/peers/discovery.ts';

/** The query parameter marking a request a peer redirected or probed (never redirected again). */
export const REDIRECTED = 'redirected';

export interface BlobLocator {
  /** A peer's URL for the blob, or undefined when no peer asked has it. */
  locate(digest: string, name: string, ns: string | undefined): Promise<string | undefined>;
  close(): void;
}

/** How long a peer may take to answer the HEAD: a redirect is worth little if finding it is slow. */
const PROBE_TIMEOUT_MS = 2_000;

function blobUrl(peer: string, name: string, digest: string, ns: string | undefined): string {
  const url = new URL(`http://${peer}/v2/${name}/blobs/${digest}`);
  if (ns !== undefined) url.searchParams.set('ns', ns);
  url.searchParams.set(REDIRECTED, '1');
  return url.toString();
}

function has(url: string, agent: Agent, timeoutMs: number): Promise<boolean> {
  const { request } = process.getBuiltinModule('node:http');
  return new Promise((resolve) => {
    const req = request(url, { method: 'HEAD', agent, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export function peerBlobLocator(discovery: PeerDiscovery): BlobLocator {
  // node:http on first use, not imported: the bundle hoists static imports into every command's start-up.
  const { Agent } = process.getBuiltinModule('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const timeoutMs = Math.min(PROBE_TIMEOUT_MS, discovery.dialTimeoutMs ?? PROBE_TIMEOUT_MS);
  return {
    async locate(digest, name, ns) {
      // Without ?ns= the request names no registry: only a discovery for every registry applies.
      const peers = await discovery.rankedFor(ns ?? '*', digest);
      const urls = peers.map((p) => blobUrl(p, name, digest, ns));
      const found = await Promise.all(urls.map((u) => has(u, agent, timeoutMs)));
      return urls[found.indexOf(true)];
    },
    close: () => agent.destroy(),
  };
}
