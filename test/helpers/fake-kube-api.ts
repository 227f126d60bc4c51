// The one call of a Kubernetes API server that peer discovery makes, offline: GET
// /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=kubernetes.io/service-name=<svc>
// over HTTPS (a certificate for 127.0.0.1 from a test CA), answering an EndpointSliceList as the
// discovery.k8s.io/v1 API documents it, and 401 with a Status object to a request without the bearer token.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa } from './tls-certs.ts';

/** One endpoint of a slice, as the API writes it. */
export interface SliceEndpoint {
  addresses: string[];
  conditions: { ready?: boolean; serving?: boolean; terminating?: boolean };
  nodeName?: string;
}

export interface KubeApiRequest {
  path: string;
  authorization: string | undefined;
  status: number;
}

export interface FakeKubeApi {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  caFile: string;
  tokenFile: string;
  token: string;
  requests: KubeApiRequest[];
  /** The slices of a service (`<ns>/<name>`): what the list answers for it. */
  setSlices(service: string, slices: { endpoints: SliceEndpoint[]; port: number; portName: string }[]): void;
  close(): Promise<void>;
}

export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-kube-api-'));
  const ca = await makeCa(dir, 'kube-ca');
  const cert = await ca.issue('kube-apiserver', { ip: ['127.0.0.1'], dns: ['kubernetes.default.svc'] });
  const token = `eyJhbGciOiJSUzI1NiJ9.test-${Date.now()}`;
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${token}\n`);
  const services = new Map<string, unknown[]>();
  const requests: KubeApiRequest[] = [];
  const server: Server = createServer(
    { cert: await readFile(cert.cert), key: await readFile(cert.key) },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://kube');
      const record: KubeApiRequest = {
        path: req.url ?? '/',
        authorization: req.headers.authorization,
        status: 0,
      };
      requests.push(record);
      const send = (status: number, body: unknown) => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${token}`)
        return send(401, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'Unauthorized',
          reason: 'Unauthorized',
          code: 401,
        });
      const m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/.exec(url.pathname);
      const selector = /^kubernetes\.io\/service-name=(.+)$/.exec(
        url.searchParams.get('labelSelector') ?? '',
      );
      if (req.method !== 'GET' || !m || !selector)
        return send(404, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
        });
      send(200, {
        kind: 'EndpointSliceList',
        apiVersion: 'discovery.k8s.io/v1',
        metadata: { resourceVersion: '4711' },
        items: services.get(`${m[1]}/${selector[1]}`) ?? [],
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile: ca.cert,
    tokenFile,
    token,
    requests,
    setSlices(service, slices) {
      const [namespace, name] = service.split('/');
      services.set(
        service,
        slices.map((s, i) => ({
          kind: 'EndpointSlice',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: {
            name: `${name}-${i}`,
            namespace,
            labels: {
              'kubernetes.io/service-name': name,
              'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
            },
          },
          addressType: 'IPv4',
          endpoints: s.endpoints,
          ports: [{ name: s.portName, protocol: 'TCP', port: s.port }],
        })),
      );
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
