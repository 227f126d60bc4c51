// hoist's configuration file: TOML, every key known and typed, unknown keys are errors naming the key.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { parseDuration } from '../core/duration.ts';
import { HoistError } from '../core/errors.ts';
import { type PeersConfig, peersDefaults, peersProblem } from './peers.ts';
import {
  parseSocketMode,
  parseTcpAddress,
  SERVE_LOG_FORMATS,
  SERVE_LOG_LEVELS,
  type ServeConfig,
  serveDefaults,
} from './serve.ts';

export { formatDuration, parseDuration } from '../core/duration.ts';
export { kubernetesService, type PeersConfig, peersEnabled } from './peers.ts';
export {
  formatMode,
  parseSocketMode,
  parseTcpAddress,
  type ServeConfig,
  type TcpAddress,
} from './serve.ts';

export interface HoistConfig {
  version: number;
  root: string;
  namespace: string;
  snapshotter: string;
  discard_unpacked_layers: boolean;
  /** Go-style duration ("1h"): how long an interrupted pull's data outlives its process. */
  pull_lease_expiry: string;
  max_concurrent_downloads: number;
  /** Layers applied at once (worker threads); like containerd 2's max_concurrent_unpacks. */
  max_concurrent_unpacks: number;
  registry: {
    config_path: string;
    plain_http: string[];
    insecure_skip_verify: string[];
    /** Go-style durations: connecting (DNS, TCP, TLS), waiting for response headers, a stalled body. */
    connect_timeout: string;
    header_timeout: string;
    idle_timeout: string;
  };
  gc: { schedule: string };
  /** `hoist serve`: its socket, log and metrics endpoint (each flag of the command overrides its key). */
  serve: ServeConfig;
  /** Where the peers whose registry endpoints pulls go through are found (docs/peer-mirror.md). */
  peers: PeersConfig;
  /**
   * A containerd socket whose store hoist works on (a Kubernetes node: hoist serve's CRI image service and
   * the CLI act on containerd's images in `k8s.io`); unset: hoist's own store.
   */
  containerd_address?: string;
  /** Where the file was read from, if any. */
  source?: string;
}

export interface LoadOptions {
  path?: string | undefined;
  env?: NodeJS.ProcessEnv;
  isRoot?: boolean;
}

type Kind =
  | 'string'
  | 'number'
  | 'boolean'
  | 'string[]'
  | 'duration'
  | 'table'
  | 'group'
  | 'mode'
  | 'tcp_address'
  | { oneOf: readonly string[] };

const SCHEMA: Record<string, Kind> = {
  version: 'number',
  root: 'string',
  namespace: 'string',
  snapshotter: 'string',
  discard_unpacked_layers: 'boolean',
  pull_lease_expiry: 'duration',
  max_concurrent_downloads: 'number',
  max_concurrent_unpacks: 'number',
  registry: 'table',
  'registry.config_path': 'string',
  'registry.plain_http': 'string[]',
  'registry.insecure_skip_verify': 'string[]',
  'registry.connect_timeout': 'duration',
  'registry.header_timeout': 'duration',
  'registry.idle_timeout': 'duration',
  gc: 'table',
  'gc.schedule': 'duration',
  serve: 'table',
  'serve.address': 'string',
  'serve.group': 'group',
  'serve.socket_mode': 'mode',
  'serve.log_level': { oneOf: SERVE_LOG_LEVELS },
  'serve.log_format': { oneOf: SERVE_LOG_FORMATS },
  'serve.metrics_address': 'tcp_address',
  'serve.shutdown_timeout': 'duration',
  'serve.registry_address': 'tcp_address',
  'serve.registry_namespaces': 'string[]',
  peers: 'table',
  'peers.static': 'string[]',
  'peers.dns': 'string',
  'peers.dns_server': 'string',
  'peers.port': 'number',
  'peers.port_name': 'string',
  'peers.kubernetes_service': 'string',
  'peers.kubernetes_api': 'string',
  'peers.kubernetes_token_file': 'string',
  'peers.kubernetes_ca_file': 'string',
  'peers.node_name': 'string',
  'peers.registries': 'string[]',
  'peers.refresh': 'duration',
  'peers.max_per_blob': 'number',
  'peers.dial_timeout': 'duration',
  containerd_address: 'string',
};

function xdg(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const v = env[name];
  return v?.startsWith('/') ? v! : join(env.HOME || homedir(), fallback);
}

export function defaultConfigPath(env: NodeJS.ProcessEnv, isRoot: boolean): string {
  return isRoot
    ? '/etc/hoist/config.toml'
    : join(xdg(env, 'XDG_CONFIG_HOME', '.config'), 'hoist', 'config.toml');
}

export function defaults(env: NodeJS.ProcessEnv, isRoot: boolean): HoistConfig {
  return {
    version: 1,
    root: isRoot ? '/var/lib/hoist' : join(xdg(env, 'XDG_DATA_HOME', '.local/share'), 'hoist'),
    namespace: 'default',
    snapshotter: 'overlayfs',
    discard_unpacked_layers: false,
    pull_lease_expiry: '1h',
    max_concurrent_downloads: 3,
    // One per core (up to 4): an apply keeps a core busy (inflate + file-system calls).
    max_concurrent_unpacks: Math.min(4, availableParallelism()),
    registry: {
      config_path: isRoot
        ? '/etc/hoist/certs.d'
        : join(xdg(env, 'XDG_CONFIG_HOME', '.config'), 'hoist', 'certs.d'),
      plain_http: [],
      insecure_skip_verify: [],
      // A registry that accepts a connection and never answers is an error within a minute.
      connect_timeout: '30s',
      header_timeout: '30s',
      idle_timeout: '30s',
    },
    gc: { schedule: '1h' },
    serve: serveDefaults(),
    peers: peersDefaults(),
  };
}

/** Where `hoist serve` listens by default. */
export function defaultAddress(isRoot: boolean, env: NodeJS.ProcessEnv = process.env): string {
  if (isRoot) return '/run/hoist/hoist.sock';
  const run = env.XDG_RUNTIME_DIR || join(xdg(env, 'XDG_DATA_HOME', '.local/share'), 'hoist', 'run');
  return join(run, 'hoist', 'hoist.sock');
}

function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function configError(file: string, message: string): HoistError {
  return new HoistError('HOIST_CONFIG', `config ${file}: ${message}`, {
    hint: 'fix the file, or point --config at another one (see README: Configuration)',
  });
}

function check(
  file: string,
  obj: Record<string, unknown>,
  prefix: string,
  out: Record<string, unknown>,
): void {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const kind = SCHEMA[key];
    if (!kind) {
      const siblings = Object.keys(SCHEMA).filter(
        (s) =>
          s.startsWith(prefix ? `${prefix}.` : '') && !s.slice(prefix ? prefix.length + 1 : 0).includes('.'),
      );
      const guess = closest(key, siblings);
      throw configError(
        file,
        `unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`,
      );
    }
    const bad = (want: string) => configError(file, `${key} must be ${want}, not ${JSON.stringify(v)}`);
    if (typeof kind === 'object') {
      if (typeof v !== 'string' || !kind.oneOf.includes(v))
        throw bad(`one of ${kind.oneOf.map((o) => JSON.stringify(o)).join(', ')}`);
      out[k] = v;
      continue;
    }
    switch (kind) {
      case 'table':
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('a table');
        out[k] = { ...(out[k] as Record<string, unknown>) };
        check(file, v as Record<string, unknown>, key, out[k] as Record<string, unknown>);
        break;
      case 'string':
        if (typeof v !== 'string' || v === '') throw bad('a non-empty string');
        out[k] = v;
        break;
      case 'number':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad('a whole number ≥ 1');
        out[k] = v;
        break;
      case 'boolean':
        if (typeof v !== 'boolean') throw bad('true or false');
        out[k] = v;
        break;
      case 'string[]':
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad('a list of strings');
        out[k] = v;
        break;
      case 'group':
        // A gid may be written as a TOML integer.
        if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[k] = String(v);
        else if (typeof v === 'string' && v !== '') out[k] = v;
        else throw bad('a group name or a numeric gid');
        break;
      case 'mode':
        try {
          out[k] = parseSocketMode(v);
        } catch (err) {
          throw bad(`permission bits in octal such as "0660" or 0o660 (${(err as Error).message})`);
        }
        break;
      case 'tcp_address':
        if (typeof v !== 'string') throw bad('a host:port such as "127.0.0.1:9464"');
        try {
          parseTcpAddress(v);
        } catch {
          throw bad('a host:port such as "127.0.0.1:9464"');
        }
        out[k] = v;
        break;
      case 'duration':
        if (typeof v !== 'string') throw bad('a duration such as "1h" or "90s"');
        try {
          parseDuration(v);
        } catch {
          throw bad('a duration such as "1h" or "90s"');
        }
        out[k] = v;
        break;
    }
  }
}

const TIMEOUT_KEYS = ['connect_timeout', 'header_timeout', 'idle_timeout'] as const;

/** The registry client's deadlines in milliseconds (the resolver's `timeouts`). */
export function registryTimeouts(config: HoistConfig): {
  connectMs: number;
  headerMs: number;
  idleMs: number;
} {
  return {
    connectMs: parseDuration(config.registry.connect_timeout),
    headerMs: parseDuration(config.registry.header_timeout),
    idleMs: parseDuration(config.registry.idle_timeout),
  };
}

export function loadConfig(opts: LoadOptions = {}): HoistConfig {
  const env = opts.env ?? process.env;
  const isRoot = opts.isRoot ?? process.getuid?.() === 0;
  const config = defaults(env, isRoot);
  // --config, else HOIST_CONFIG (either must exist), else the default place (may be absent).
  const named = opts.path ?? (env.HOIST_CONFIG || undefined);
  const file = named ?? defaultConfigPath(env, isRoot);
  if (!existsSync(file)) {
    if (named !== undefined) throw configError(file, 'no such file');
    return withEnvRoot(config, env);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw configError(file, `not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  check(file, parsed, '', config as unknown as Record<string, unknown>);
  if (config.version !== 1)
    throw configError(file, `version ${config.version} is not supported (this hoist reads version 1)`);
  for (const key of TIMEOUT_KEYS) {
    if (parseDuration(config.registry[key]) <= 0)
      throw configError(
        file,
        `registry.${key} must be longer than 0 (a registry that never answers would hang)`,
      );
  }
  const peers = peersProblem(config.peers);
  if (peers) throw configError(file, peers);
  config.source = file;
  return withEnvRoot(config, env);
}

// HOIST_ROOT sits between the file's `root` and `--root` (which the caller applies after loading).
function withEnvRoot(config: HoistConfig, env: NodeJS.ProcessEnv): HoistConfig {
  if (env.HOIST_ROOT) config.root = env.HOIST_ROOT;
  return config;
}
