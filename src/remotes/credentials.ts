// Docker's credential file (`~/.docker/config.json`, or `$DOCKER_CONFIG/config.json`): `auths` entries
// (base64 `auth`, username/password, identitytoken), `credHelpers` per host and the `credsStore` default,
// both through `docker-credential-<name> get|store|erase`. `login` checks credentials against the
// registry before writing anything; the file is rewritten atomically with mode 0600, keeping other keys.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { childProcess } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { verifyCredentials } from './auth.ts';
import { configureHosts, type HostsOptions } from './hosts.ts';
import { DEFAULT_USER_AGENT } from './http.ts';
import type { RegistryTimeouts } from './timeouts.ts';
import type { Credentials, CredentialsProvider } from './types.ts';

/** The key docker uses for Docker Hub in `auths` and with credential helpers. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_NAMES = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

export interface DockerConfigOptions {
  /** Path of config.json; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  configPath?: string | undefined;
  /** Environment to read DOCKER_CONFIG / HOME / PATH from (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  [k: string]: unknown;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

export function dockerConfigPath(opts: DockerConfigOptions = {}): string {
  if (opts.configPath) return opts.configPath;
  const env = opts.env ?? process.env;
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

/** `docker.io` and its aliases → Docker Hub's key; anything else → `host[:port]`. */
export function credentialKey(host: string): string {
  return DOCKER_HUB_NAMES.has(host) ? DOCKER_HUB_AUTH_KEY : host;
}

/** Reduce an `auths` key (`https://host/v1/`, `host`, `http://host:5000`) to `host[:port]`. */
function keyHost(key: string): string {
  if (key === DOCKER_HUB_AUTH_KEY) return 'docker.io';
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? key;
  return DOCKER_HUB_NAMES.has(host) ? 'docker.io' : host;
}

async function readConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new HoistError('HOIST_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return {};
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as DockerConfigFile;
  } catch (err) {
    throw new HoistError('HOIST_CONFIG', `${path}: invalid JSON: ${(err as Error).message}`, {
      hint: 'fix or remove the file, then run hoist login again',
    });
  }
}

function entryCredentials(entry: AuthEntry, key: string, path: string): Credentials | undefined {
  const creds: Credentials = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new HoistError('HOIST_CONFIG', `${path}: auths["${key}"].auth is not base64 of user:password`);
    creds.username = decoded.slice(0, colon);
    creds.password = decoded.slice(colon + 1);
  } else if (entry.username !== undefined && entry.password !== undefined) {
    creds.username = entry.username;
    creds.password = entry.password;
  }
  if (entry.identitytoken) creds.identityToken = entry.identitytoken;
  if (entry.registrytoken) creds.registryToken = entry.registrytoken;
  return Object.keys(creds).length > 0 ? creds : undefined;
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin; stdout, or undefined if "not found". */
async function runHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const program = `docker-credential-${helper}`;
  return await new Promise((resolve, reject) => {
    const child = childProcess().spawn(program, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      errText += d.toString('utf8');
    });
    child.on('error', (err) =>
      reject(
        new HoistError('HOIST_CONFIG', `credential helper ${program} cannot run: ${err.message}`, {
          hint: `install ${program} or remove "${helper}" from the docker config`,
        }),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else if (/not found/i.test(out + errText)) resolve(undefined);
      else {
        const msg = (errText || out).trim().split('\n')[0] ?? '';
        reject(new HoistError('HOIST_CONFIG', `credential helper ${program} ${action} failed: ${msg}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

async function helperGet(
  helper: string,
  server: string,
  env: NodeJS.ProcessEnv,
): Promise<Credentials | undefined> {
  const out = await runHelper(helper, 'get', server, env);
  if (out === undefined || out.trim() === '') return undefined;
  let doc: { Username?: string; Secret?: string };
  try {
    doc = JSON.parse(out);
  } catch {
    throw new HoistError(
      'HOIST_CONFIG',
      `credential helper docker-credential-${helper} printed invalid JSON`,
    );
  }
  if (!doc.Secret) return undefined;
  // docker's convention: the username `<token>` marks an identity token.
  if (doc.Username === '<token>') return { identityToken: doc.Secret };
  return { username: doc.Username ?? '', password: doc.Secret };
}

function helperFor(config: DockerConfigFile, host: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  for (const [key, helper] of Object.entries(helpers)) {
    if (keyHost(key) === keyHost(host)) return helper;
  }
  return config.credsStore || undefined;
}

/** Credentials for a registry host from the docker config (helpers first, then `auths`). */
export async function lookupCredentials(
  host: string,
  opts: DockerConfigOptions = {},
): Promise<Credentials | undefined> {
  const path = dockerConfigPath(opts);
  const config = await readConfig(path);
  const helper = helperFor(config, host);
  if (helper) {
    const creds = await helperGet(helper, credentialKey(host), opts.env ?? process.env);
    if (creds) return creds;
  }
  const wanted = keyHost(host);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (keyHost(key) !== wanted || typeof entry !== 'object' || entry === null) continue;
    const creds = entryCredentials(entry, key, path);
    if (creds) return creds;
  }
  return undefined;
}

/** A CredentialsProvider reading the docker config on each call (so `hoist login` takes effect at once). */
export function dockerCredentials(opts: DockerConfigOptions = {}): CredentialsProvider {
  return (host) => lookupCredentials(host, opts);
}

async function writeConfig(path: string, config: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(tmp, path).catch(async (err) => {
    await rm(tmp, { force: true });
    throw err;
  });
}

export interface LoginOptions extends DockerConfigOptions, HostsOptions {
  userAgent?: string;
  /** The registry client's deadlines (the config's `registry.*_timeout`). */
  timeouts?: RegistryTimeouts;
  signal?: AbortSignal;
  /** Skip the check against the registry (tests, offline setups). */
  skipVerify?: boolean;
  /** The check's requests and challenge (debug), never the credentials. */
  log?: Logger;
}

/**
 * Verify credentials against the registry (ping + token/basic request), then save them: through the
 * configured credential helper, else in `auths` of the config file. Returns where they were stored.
 */
export async function login(host: string, creds: Credentials, opts: LoginOptions = {}): Promise<string> {
  if (!opts.skipVerify) {
    const [upstream] = configureHosts(host, opts).slice(-1);
    if (!upstream) throw new HoistError('HOIST_CONFIG', `${host}: no registry host configured`);
    await verifyCredentials(upstream, creds, {
      userAgent: opts.userAgent ?? DEFAULT_USER_AGENT,
      attempts: 2,
      baseDelayMs: 200,
      signal: opts.signal,
      timeouts: opts.timeouts,
      log: opts.log,
    });
  }
  const path = dockerConfigPath(opts);
  const config = await readConfig(path);
  const key = credentialKey(host);
  const helper = helperFor(config, host);
  if (helper) {
    const secret = creds.identityToken ?? creds.password ?? '';
    const username = creds.identityToken ? '<token>' : (creds.username ?? '');
    await runHelper(
      helper,
      'store',
      JSON.stringify({ ServerURL: key, Username: username, Secret: secret }),
      opts.env ?? process.env,
    );
    return `docker-credential-${helper}`;
  }
  const entry: AuthEntry = {};
  if (creds.username !== undefined && creds.password !== undefined && !creds.identityToken)
    entry.auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
  if (creds.identityToken) {
    entry.identitytoken = creds.identityToken;
    if (creds.username) entry.auth = Buffer.from(`${creds.username}:`).toString('base64');
  }
  if (creds.registryToken) entry.registrytoken = creds.registryToken;
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) if (k !== key && keyHost(k) === keyHost(host)) delete auths[k];
  auths[key] = entry;
  await writeConfig(path, { ...config, auths });
  return path;
}

/** Remove saved credentials for a host (every alias of it). Returns whether anything was removed. */
export async function logout(host: string, opts: DockerConfigOptions = {}): Promise<boolean> {
  const path = dockerConfigPath(opts);
  const config = await readConfig(path);
  let removed = false;
  const helper = helperFor(config, host);
  if (helper) {
    const erased = await runHelper(helper, 'erase', credentialKey(host), opts.env ?? process.env);
    if (erased !== undefined) removed = true;
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) {
    if (keyHost(k) === keyHost(host)) {
      delete auths[k];
      removed = true;
    }
  }
  if (removed && config.auths) await writeConfig(path, { ...config, auths });
  return removed;
}

/** Alias used by the CLI. */
export const dockerConfigCredentials = dockerCredentials;
