// A real registry for tests: /usr/bin/docker-registry (distribution 2.8) on a free loopback port with a
// temp storage dir, optional htpasswd (bcrypt) or token auth, and a counting HTTP proxy in front so tests
// can see every request (method, path, status, Range) and the blob bytes served. Tests talk to `host`
// (the proxy); `registryHost` is the registry itself.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type BlobHold,
  type CannedResponse,
  type CountingProxy,
  type RequestRecord,
  startCountingProxy,
} from './counting-proxy.ts';
import {
  startTokenIssuer,
  TOKEN_ISSUER,
  TOKEN_SERVICE,
  type TokenIssuer,
  type TokenRequestRecord,
} from './token-issuer.ts';

export type { BlobHold, CannedResponse, RequestRecord } from './counting-proxy.ts';

const run = promisify(execFile);

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
export const DEFAULT_USERS = { testuser: 'testpassword' };

export interface RegistryStats {
  requests: RequestRecord[];
  /** Total response body bytes of GET …/blobs/<digest> requests. */
  blobBytes: number;
  /** Token server requests (token auth only). */
  tokenRequests: TokenRequestRecord[];
}

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** Users for basic/token auth (default { testuser: 'testpassword' }). */
  users?: Record<string, string>;
  /** Token auth: may anonymous clients pull? (default false) */
  anonymousPull?: boolean;
  /**
   * Serve HTTPS with this certificate and key (PEM files); with `clientCa`, demand a client certificate
   * signed by it. The counting proxy speaks HTTP, so a TLS registry is reached directly (`host` is
   * `registryHost`) and `stats()` sees no requests.
   */
  tls?: { cert: string; key: string; clientCa?: string };
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` of the counting proxy: what tests use. */
  host: string;
  /** `127.0.0.1:PORT` of the registry process itself (no counting). */
  registryHost: string;
  storageDir: string;
  users: Record<string, string>;
  /** Token auth: the issuer (realm, refresh tokens). */
  tokenIssuer: TokenIssuer | undefined;
  stats(): RegistryStats;
  resetStats(): void;
  /** Where the registry stores a blob's bytes (for corruption tests). */
  blobDataPath(digest: string): string;
  /** Overwrite bytes of a stored blob in place (same length): the registry then serves corrupt data. */
  corruptBlob(digest: string, at?: number): Promise<void>;
  /**
   * Hold GET responses of blob `digest` after `afterBytes` body bytes until release(): an interruptible
   * download that tests wait on by event (`reached`), not by time.
   */
  holdBlob(digest: string, afterBytes: number): BlobHold;
  /**
   * Serve `response` for requests whose path matches (and method, if given) instead of the registry, e.g. a
   * manifest the registry refuses to store. Returns a function that removes it.
   */
  serve(path: RegExp, response: CannedResponse, method?: string): () => void;
  stop(): Promise<void>;
}

const live = new Set<{ child: ChildProcess; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const r of live) {
      r.child.stdin?.destroy(); // the wrapper then stops the registry
      rmSync(r.dir, { recursive: true, force: true });
    }
  });
}

/**
 * Run the registry under a small sh wrapper that kills it when our end of its stdin pipe closes: on
 * stop(), and also when the test process dies without running exit hooks (SIGINT, SIGKILL, a crash).
 */
function spawnRegistry(configFile: string): ChildProcess {
  const script = '"$0" serve "$1" </dev/null & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid"';
  return spawn('sh', ['-c', script, REGISTRY_BINARY, configFile], { stdio: ['pipe', 'ignore', 'pipe'] });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function tlsSection(tls: RegistryOptions['tls']): string {
  if (!tls) return '';
  const lines = ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`];
  if (tls.clientCa) lines.push('    clientcas:', `      - ${tls.clientCa}`);
  return lines.join('\n');
}

function registryConfig(dir: string, port: number, authSection: string, tls: RegistryOptions['tls']): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: hoist-test-secret',
    tlsSection(tls),
    authSection,
  ].join('\n');
}

/** A TLS registry (which may demand a client certificate) is up when it accepts a connection. */
function accepts(port: number): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(200);
    });
    socket.on('error', () => resolve(0));
  });
}

async function waitForRegistry(
  port: number,
  child: ChildProcess,
  stderr: () => string,
  tls: boolean,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr()}`);
    const status = tls
      ? await accepts(port)
      : await new Promise<number>((resolve) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/v2/', method: 'GET' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', () => resolve(0));
          req.end();
        });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on 127.0.0.1:${port}: ${stderr()}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? DEFAULT_USERS;
  const dir = await mkdtemp(join(tmpdir(), 'hoist-registry-'));
  await mkdir(join(dir, 'data'));
  let authSection = '';
  let tokenIssuer: TokenIssuer | undefined;
  if (auth === 'basic') {
    const lines: string[] = [];
    for (const [u, p] of Object.entries(users)) {
      const { stdout } = await run('htpasswd', ['-Bbn', u, p]);
      lines.push(stdout.trim());
    }
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    authSection = [
      'auth:',
      '  htpasswd:',
      '    realm: hoist-test',
      `    path: ${join(dir, 'htpasswd')}`,
    ].join('\n');
  } else if (auth === 'token') {
    tokenIssuer = await startTokenIssuer(dir, { users, anonymousPull: opts.anonymousPull ?? false });
    authSection = [
      'auth:',
      '  token:',
      `    realm: ${tokenIssuer.realm}`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${tokenIssuer.certFile}`,
    ].join('\n');
  }
  let child: ChildProcess | undefined;
  let port = 0;
  let stderr = '';
  for (let tries = 0; tries < 5; tries++) {
    port = await freePort();
    const configFile = join(dir, 'config.yml');
    writeFileSync(configFile, `${registryConfig(dir, port, authSection, opts.tls)}\n`);
    stderr = '';
    child = spawnRegistry(configFile);
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4000);
    });
    try {
      await waitForRegistry(port, child, () => stderr, opts.tls !== undefined);
      break;
    } catch (err) {
      await stopChild(child);
      child = undefined;
      if (!/address already in use/.test(stderr) || tries === 4) {
        await tokenIssuer?.close();
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const proc = child!;
  const entry = { child: proc, dir };
  live.add(entry);
  let requests: RequestRecord[] = [];
  const proxy: CountingProxy = await startCountingProxy(port, (r) => requests.push(r));
  const storageDir = join(dir, 'data');
  const blobDataPath = (digest: string) => {
    const hex = digest.slice(digest.indexOf(':') + 1);
    return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  };
  let stopped = false;
  return {
    host: opts.tls ? `127.0.0.1:${port}` : `127.0.0.1:${proxy.port}`,
    registryHost: `127.0.0.1:${port}`,
    storageDir,
    users,
    tokenIssuer,
    stats() {
      const blobBytes = requests
        .filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path))
        .reduce((n, r) => n + r.bytes, 0);
      return { requests: [...requests], blobBytes, tokenRequests: [...(tokenIssuer?.requests ?? [])] };
    },
    resetStats() {
      requests = [];
      if (tokenIssuer) tokenIssuer.requests.length = 0;
    },
    blobDataPath,
    async corruptBlob(digest: string, at?: number) {
      const file = blobDataPath(digest);
      const size = statSync(file).size;
      const pos = at ?? Math.floor(size / 2);
      const fh = await open(file, 'r+');
      try {
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, pos);
        b[0] = b[0]! ^ 0xff;
        await fh.write(b, 0, 1, pos);
      } finally {
        await fh.close();
      }
    },
    holdBlob: (digest: string, afterBytes: number): BlobHold => proxy.holdBlob(digest, afterBytes),
    serve: (path: RegExp, response: CannedResponse, method?: string) => proxy.serve(path, response, method),
    async stop() {
      if (stopped) return;
      stopped = true;
      proxy.server.closeAllConnections();
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      await tokenIssuer?.close();
      await stopChild(proc);
      live.delete(entry);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
