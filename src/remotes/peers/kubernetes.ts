// Peers from a Kubernetes Service's EndpointSlices (discovery.k8s.io/v1), read from the API server as the
// pod's service account: GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices with the label
// selector kubernetes.io/service-name=<service>, over HTTPS verified against the service account's CA,
// with its token as a bearer token (re-read on every lookup: projected tokens are rotated). An endpoint
// whose conditions say it is not ready is left out, as kube-proxy leaves it out; a missing `ready` is
// "unknown", which the API documents consumers should treat as ready.
import { readFile } from 'node:fs/promises';
import { joinHostPort } from './address.ts';
import type { PeerSource } from './source.ts';

export interface EndpointSlicePeersOptions {
  namespace: string;
  service: string;
  /** The EndpointSlice port of this name; else a slice's only port; else `port`. */
  portName?: string | undefined;
  port?: number | undefined;
  /** `https://host:port` of the API server; default from KUBERNETES_SERVICE_HOST/PORT at lookup time. */
  apiUrl?: string | undefined;
  tokenFile: string;
  caFile: string;
  /** Endpoints on this node are this node (the downward API's spec.nodeName). */
  nodeName?: string | undefined;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** The parts of discovery.k8s.io/v1 EndpointSlice read here (fields may be null, as Go writes nil). */
interface EndpointSlice {
  addressType?: string;
  endpoints?:
    | { addresses?: string[] | null; conditions?: { ready?: boolean | null }; nodeName?: string }[]
    | null;
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
}

const MAX_LIST_BYTES = 16 << 20;

function portOf(slice: EndpointSlice, opts: EndpointSlicePeersOptions): number | undefined {
  const ports = (slice.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP' && p.port);
  if (opts.portName !== undefined) return ports.find((p) => p.name === opts.portName)?.port ?? undefined;
  if (ports.length === 1) return ports[0]!.port ?? undefined;
  return opts.port;
}

/** The ready endpoints' `ip:port` of an EndpointSliceList, other nodes' only. */
export function peersOfEndpointSlices(list: unknown, opts: EndpointSlicePeersOptions): string[] {
  const items = (list as { items?: EndpointSlice[] | null } | null)?.items;
  if (!Array.isArray(items)) throw new Error('the API server answered without an EndpointSlice list');
  const out: string[] = [];
  for (const slice of items) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const port = portOf(slice, opts);
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      if (opts.nodeName !== undefined && endpoint.nodeName === opts.nodeName) continue;
      for (const ip of endpoint.addresses ?? []) out.push(joinHostPort(ip, port));
    }
  }
  return out;
}

function apiBase(opts: EndpointSlicePeersOptions): string {
  if (opts.apiUrl) return opts.apiUrl.replace(/\/+$/, '');
  const env = opts.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host)
    throw new Error('not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST): set peers.kubernetes_api');
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function getJson(url: URL, token: string, ca: string, timeoutMs: number): Promise<unknown> {
  // Loaded on first use, not imported: the bundle hoists static imports, and every command would then
  // load Node's TLS stack at start-up (package.test's guard).
  const { request } = process.getBuiltinModule('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'GET', ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.byteLength;
          if (size > MAX_LIST_BYTES) req.destroy(new Error('EndpointSlice list larger than 16 MiB'));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            return reject(new Error(`${url.host}: ${res.statusCode} ${text.slice(0, 200).trim()}`));
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new Error(`${url.host}: the EndpointSlice list is not JSON`));
          }
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${url.host}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export function endpointSlicePeers(opts: EndpointSlicePeersOptions): PeerSource {
  const path = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(opts.namespace)}/endpointslices`;
  return {
    description: `kubernetes service ${opts.namespace}/${opts.service}`,
    async discover() {
      const url = new URL(`${apiBase(opts)}${path}`);
      url.searchParams.set('labelSelector', `kubernetes.io/service-name=${opts.service}`);
      const [token, ca] = await Promise.all([
        readFile(opts.tokenFile, 'utf8'),
        readFile(opts.caFile, 'utf8'),
      ]);
      return peersOfEndpointSlices(await getJson(url, token.trim(), ca, opts.timeoutMs), opts);
    },
  };
}
