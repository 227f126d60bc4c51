// A peer's address as the registry client and the endpoint write it: `ip:port`, `[v6]:port`.
import { isIP } from 'node:net';

/** `ip:port`, with an IPv6 address in brackets. */
export function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` or `[v6]:port` split; undefined when there is no valid port. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
