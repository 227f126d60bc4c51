// Which hosts serve a registry, in the order to try them: containerd's `certs.d/<host>/hosts.toml`
// (mirrors under `[host."<url>"]`, then the upstream `server`), `_default/hosts.toml` for registries
// without their own directory, docker.io → registry-1.docker.io, and the resolver's plain-HTTP and
// skip-verify options. Loaded synchronously (a small file, read once per registry per resolver) because
// Resolver.hostsFor is synchronous.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as tomlParse } from 'smol-toml';
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
  /**
   * A loopback registry with no scheme configured: tried over HTTPS (unverified, as docker treats
   * loopback as insecure) and switched to HTTP for good when that fails (transport.ts sendTo); false
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
  skip_verify?: unknown;
  header?: unknown;
  override_path?: unknown;
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
    const path = isAbsolute(f) ? f : join(dir, f);
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw configError(file, `cannot read CA file ${path}: ${(err as Error).message}`);
    }
  });
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
  return {
    host,
    scheme: url.protocol === 'http:' ? 'http' : 'https',
    path,
    capabilities,
    headers,
    tls,
    registry,
    mirror,
  };
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
  const dir = join(file, '..');
  const hosts: RegistryHost[] = [];
  const table = doc.host;
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null) throw configError(file, 'host must be a table');
    for (const [key, entry] of Object.entries(table)) {
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
