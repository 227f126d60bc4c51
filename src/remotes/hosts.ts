// Which hosts serve a registry, in the order to try them: containerd's `certs.d/<host>/hosts.toml`
// (mirrors under `[host."<url>"]`, then the upstream `server`), `_default/hosts.toml` for registries
// without their own directory, docker.io → registry-1.docker.io, and the resolver's plain-HTTP and
// skip-verify options. Loaded synchronously (a small file, read once per registry per resolver) because
// Resolver.hostsFor is synchronous.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as tomlParse } from 'smol-toml';
import { parseDuration } from '../core/duration.ts';
import { HoistError } from '../core/errors.ts';
import type { TlsSettings } from './http.ts';

export type HostCapability = 'pull' | 'resolve' | 'push';

export interface RegistryHost {
  /** `host[:port]` as used in URLs and error messages. */
  host: string;
  scheme: 'http' | 'https';
  /** API path prefix, normally `/v2` (hosts.toml `override_path` keeps a custom one). */
  path: string;
  capabilities: HostCapability[];
  /** Extra request headers (hosts.toml `header`). */
  headers: Record<string, string>;
  tls: TlsSettings;
  /** The registry the reference names (`docker.io`); mirrors are asked with `?ns=<registry>`. */
  registry: string;
  mirror: boolean;
  /** hosts.toml `dial_timeout`: the connect deadline for this host (else the config's connect_timeout). */
  dialTimeoutMs?: number;
  /** hosts.toml `proxy`: this host's proxy, over HTTPS_PROXY/HTTP_PROXY/NO_PROXY. */
  proxy?: URL;
  /**
   * A loopback registry with no scheme configured: tried over HTTPS (unverified, as docker treats
   * loopback as insecure) and switched to HTTP for good when that fails (send-to.ts); false
   * once switched.
   */
  httpFallback?: boolean;
}

export interface HostsOptions {
  hostsDir?: string | undefined;
  plainHttp?: boolean | string[] | undefined;
  insecureSkipVerify?: boolean | string[] | undefined;
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const ALL_CAPABILITIES: HostCapability[] = ['pull', 'resolve', 'push'];
const MIRROR_CAPABILITIES: HostCapability[] = ['pull', 'resolve'];

/** 127.0.0.0/8, ::1 and localhost, with or without a port. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** Does a `host[:port]` list (or `true`) select this host? A list entry without a port matches any port. */
export function hostMatches(setting: boolean | string[] | undefined, host: string): boolean {
  if (setting === undefined || setting === false) return false;
  if (setting === true) return true;
  const bare = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return setting.some((h) => h === host || h === bare);
}

function configError(file: string, detail: string): HoistError {
  return new HoistError('HOIST_CONFIG', `${file}: ${detail}`, {
    hint: 'fix the file; see containerd docs/hosts.md for the format',
  });
}

interface HostEntry {
  capabilities?: unknown;
  ca?: unknown;
  client?: unknown;
  skip_verify?: unknown;
  header?: unknown;
  override_path?: unknown;
  dial_timeout?: unknown;
  proxy?: unknown;
}

/** Every key containerd's hosts.toml has (docs/hosts.md); `server` and `host` only at the top. */
const HOST_KEYS = [
  'capabilities',
  'ca',
  'client',
  'skip_verify',
  'header',
  'override_path',
  'dial_timeout',
  'proxy',
];
const TOP_KEYS = ['server', 'host', ...HOST_KEYS];

function checkKeys(file: string, table: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(table)) {
    if (!known.includes(key))
      throw configError(file, `unknown key ${JSON.stringify(key)}${where} (known: ${known.join(', ')})`);
  }
}

function readPem(file: string, dir: string, path: string, what: string): string {
  const full = isAbsolute(path) ? path : join(dir, path);
  try {
    return readFileSync(full, 'utf8');
  } catch (err) {
    throw configError(file, `cannot read ${what} ${full}: ${(err as Error).message}`);
  }
}

/**
 * `client`: a path (certificate and key in one PEM file), a list of such paths, or a list of
 * [certificate, key] pairs where an empty key means the key is in the certificate's file.
 */
function clientPairs(file: string, dir: string, client: unknown): { cert: string[]; key: string[] } {
  const bad = () =>
    configError(
      file,
      'client must be a path, an array of paths, or an array of [certificate, key] path pairs',
    );
  const entries = typeof client === 'string' ? [client] : Array.isArray(client) ? client : undefined;
  if (!entries) throw bad();
  const cert: string[] = [];
  const key: string[] = [];
  for (const entry of entries) {
    const [c, k] = typeof entry === 'string' ? [entry, ''] : Array.isArray(entry) ? entry : [];
    if (
      typeof c !== 'string' ||
      c === '' ||
      typeof k !== 'string' ||
      (Array.isArray(entry) && entry.length !== 2)
    )
      throw bad();
    const pem = readPem(file, dir, c, 'client certificate');
    cert.push(pem);
    key.push(k === '' ? pem : readPem(file, dir, k, 'client key'));
  }
  return { cert, key };
}

function parseUrl(raw: string, file: string, plain: boolean): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${plain ? 'http' : 'https'}://${raw}`;
  try {
    const u = new URL(withScheme);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme must be http or https');
    return u;
  } catch (err) {
    throw configError(file, `invalid host URL ${JSON.stringify(raw)}: ${(err as Error).message}`);
  }
}

function buildHost(
  url: URL,
  entry: HostEntry,
  ctx: { file: string; dir: string; registry: string; mirror: boolean; opts: HostsOptions },
): RegistryHost {
  const { file, dir, registry, mirror, opts } = ctx;
  let capabilities = mirror ? MIRROR_CAPABILITIES : ALL_CAPABILITIES;
  if (entry.capabilities !== undefined) {
    if (!Array.isArray(entry.capabilities))
      throw configError(file, 'capabilities must be an array of "pull", "resolve", "push"');
    capabilities = entry.capabilities.map((c) => {
      if (c !== 'pull' && c !== 'resolve' && c !== 'push')
        throw configError(file, `unknown capability ${JSON.stringify(c)} (use pull, resolve, push)`);
      return c;
    });
  }
  const caFiles = entry.ca === undefined ? [] : Array.isArray(entry.ca) ? entry.ca : [entry.ca];
  const ca = caFiles.map((f) => {
    if (typeof f !== 'string') throw configError(file, 'ca must be a path or an array of paths');
    return readPem(file, dir, f, 'CA file');
  });
  if (entry.skip_verify !== undefined && typeof entry.skip_verify !== 'boolean')
    throw configError(file, 'skip_verify must be true or false');
  if (entry.override_path !== undefined && typeof entry.override_path !== 'boolean')
    throw configError(file, 'override_path must be true or false');
  const headers: Record<string, string> = {};
  if (entry.header !== undefined) {
    if (typeof entry.header !== 'object' || entry.header === null)
      throw configError(file, 'header must be a table');
    for (const [k, v] of Object.entries(entry.header)) {
      if (typeof v === 'string') headers[k] = v;
      else if (Array.isArray(v)) headers[k] = v.map(String).join(', ');
      else throw configError(file, `header ${k} must be a string or an array of strings`);
    }
  }
  let path = url.pathname.replace(/\/+$/, '');
  if (entry.override_path !== true && !path.endsWith('/v2')) path += '/v2';
  const host = url.host;
  const tls: TlsSettings = {
    skipVerify: entry.skip_verify === true || hostMatches(opts.insecureSkipVerify, host),
  };
  if (ca.length > 0) tls.ca = ca;
  if (entry.client !== undefined) Object.assign(tls, clientPairs(file, dir, entry.client));
  const result: RegistryHost = {
    host,
    scheme: url.protocol === 'http:' ? 'http' : 'https',
    path,
    capabilities,
    headers,
    tls,
    registry,
    mirror,
  };
  if (entry.dial_timeout !== undefined) {
    let ms = Number.NaN;
    try {
      if (typeof entry.dial_timeout === 'string') ms = parseDuration(entry.dial_timeout);
    } catch {}
    if (!(ms > 0)) throw configError(file, 'dial_timeout must be a duration longer than 0, such as "1s"');
    result.dialTimeoutMs = ms;
  }
  if (entry.proxy !== undefined) {
    let proxy: URL | undefined;
    try {
      if (typeof entry.proxy === 'string') proxy = new URL(entry.proxy);
    } catch {}
    if (proxy?.protocol !== 'http:' || proxy.hostname === '')
      throw configError(
        file,
        `proxy must be an http:// URL such as "http://proxy:3128" (socks5 and https proxies are not supported)`,
      );
    result.proxy = proxy;
  }
  return result;
}

function parseTomlSync(text: string, file: string): Record<string, unknown> {
  try {
    return tomlParse(text) as Record<string, unknown>;
  } catch (err) {
    throw configError(file, `invalid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The hosts.toml for a registry: `<dir>/<registry>/hosts.toml`, else `<dir>/_default/hosts.toml`. */
export function findHostsFile(hostsDir: string, registry: string): string | undefined {
  for (const name of [registry, '_default']) {
    const file = join(hostsDir, name, 'hosts.toml');
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** The hosts to try for a registry, mirrors first, then the upstream. */
export function configureHosts(registry: string, opts: HostsOptions = {}): RegistryHost[] {
  const upstreamDefault = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
  const file = opts.hostsDir ? findHostsFile(opts.hostsDir, registry) : undefined;
  if (file === undefined) {
    const plain = hostMatches(opts.plainHttp, registry) || hostMatches(opts.plainHttp, upstreamDefault);
    const url = parseUrl(upstreamDefault, '(default)', plain);
    const host = buildHost(url, {}, { file: '(default)', dir: '', registry, mirror: false, opts });
    // docker and containerd's default for a registry on this machine, which is usually plain HTTP.
    if (!plain && isLoopback(host.host)) {
      host.httpFallback = true;
      host.tls = { ...host.tls, skipVerify: true };
    }
    return [host];
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(file, `cannot read: ${(err as Error).message}`);
  }
  const doc = parseTomlSync(text, file);
  checkKeys(file, doc, TOP_KEYS, '');
  const dir = join(file, '..');
  const hosts: RegistryHost[] = [];
  const table = doc.host;
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null) throw configError(file, 'host must be a table');
    for (const [key, entry] of Object.entries(table)) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw configError(file, `host.${JSON.stringify(key)} must be a table`);
      checkKeys(file, entry as Record<string, unknown>, HOST_KEYS, ` in [host.${JSON.stringify(key)}]`);
      const plain = hostMatches(opts.plainHttp, key.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? key);
      const url = parseUrl(key, file, plain);
      hosts.push(buildHost(url, entry as HostEntry, { file, dir, registry, mirror: true, opts }));
    }
  }
  const server = doc.server;
  if (server !== undefined && typeof server !== 'string') throw configError(file, 'server must be a URL');
  const upstream = server ?? upstreamDefault;
  const plain = hostMatches(opts.plainHttp, registry) || hostMatches(opts.plainHttp, upstream);
  const url = parseUrl(upstream, file, plain);
  const mirror = server !== undefined && url.host !== registry && registry !== DOCKER_HUB;
  hosts.push(buildHost(url, doc as HostEntry, { file, dir, registry, mirror, opts }));
  return hosts;
}
