// The `[serve]` table's values that need more than a type: the socket's permission bits and the metrics
// endpoint's TCP address. The flags of `hoist serve` go through the same parsers, so a flag and a key
// accept the same spellings.
import { invalidArgument } from '../core/errors.ts';

export const SERVE_LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const SERVE_LOG_FORMATS = ['json', 'logfmt'] as const;

export interface ServeConfig {
  /** Socket path or `unix://` address (default: /run/hoist/hoist.sock as root). */
  address?: string;
  /** Group (name or gid) given the socket. */
  group?: string;
  /** Permission bits of the socket file (0660 by default, like containerd's). */
  socket_mode: number;
  log_level: (typeof SERVE_LOG_LEVELS)[number];
  log_format: (typeof SERVE_LOG_FORMATS)[number];
  /** `host:port` of the Prometheus endpoint; none unless set. */
  metrics_address?: string;
  /** Go-style duration: how long a graceful stop waits for calls in flight. */
  shutdown_timeout: string;
  /** `host:port` of the read-only OCI Distribution endpoint peers use as a mirror; none unless set. */
  registry_address?: string;
  /** The namespaces whose images that endpoint serves, searched in order. */
  registry_namespaces: string[];
}

export function serveDefaults(): ServeConfig {
  return {
    socket_mode: 0o660,
    log_level: 'info',
    log_format: 'json',
    shutdown_timeout: '10s',
    // The CRI's images (a Kubernetes node's) first, then the CLI's.
    registry_namespaces: ['k8s.io', 'default'],
  };
}

/**
 * Socket permission bits from `"0660"`/`"660"` (a string of octal digits, as chmod takes them) or a TOML
 * octal integer (`0o660`). A decimal 660 is refused rather than read as 0o1224: it is almost certainly
 * meant as octal. The owner keeps read and write (the daemon's own CLI connects as the owner).
 */
export function parseSocketMode(value: unknown): number {
  let mode: number | undefined;
  if (typeof value === 'string' && /^0?[0-7]{3}$/.test(value)) mode = Number.parseInt(value, 8);
  else if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0o777) mode = value;
  if (mode === undefined)
    throw invalidArgument(
      `socket mode ${JSON.stringify(value)} is not permission bits`,
      'write it in octal: "0660" (or 0o660 in TOML)',
    );
  if ((mode & 0o600) !== 0o600)
    throw invalidArgument(
      `socket mode ${formatMode(mode)} takes read or write away from the owner`,
      'keep the owner bits 6: e.g. 0660',
    );
  return mode;
}

export function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

export interface TcpAddress {
  host: string;
  port: number;
}

/**
 * `host:port`, `[v6]:port` or `:port` (every interface, as Go's listeners read it). A port is required;
 * 0 asks the kernel for a free one (tests).
 */
export function parseTcpAddress(value: string): TcpAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65_535)
    throw invalidArgument(
      `address ${JSON.stringify(value)} is not host:port`,
      'e.g. 127.0.0.1:9464, [::1]:9464 or :9464 (every interface)',
    );
  return { host: m[1] ?? (m[2] || '::'), port };
}
