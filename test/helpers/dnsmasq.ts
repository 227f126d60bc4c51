// A real DNS server for the peer-discovery tests: Debian's dnsmasq in the foreground on a free loopback
// UDP port, answering only for the records given (A/AAAA host records, SRV records), nothing forwarded.
// What a headless Service looks like to a pod: one name, an address per ready pod.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface DnsRecords {
  /** name → addresses (A or AAAA by their form). */
  hosts?: Record<string, string[]>;
  /** SRV records: `_<port name>._tcp.<service>` → the target host name and port. */
  srv?: { name: string; target: string; port: number }[];
}

export interface DnsServer {
  /** `127.0.0.1:PORT`, for node:dns setServers and the config's peers.dns_server. */
  server: string;
  stop(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function startDnsmasq(records: DnsRecords): Promise<DnsServer> {
  const port = await freeUdpPort();
  const args = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--pid-file=',
    ...(process.getuid?.() === 0 ? ['--user=root'] : []),
  ];
  for (const [name, addresses] of Object.entries(records.hosts ?? {}))
    for (const a of addresses) args.push(`--host-record=${name},${a}`);
  for (const s of records.srv ?? []) args.push(`--srv-host=${s.name},${s.target},${s.port}`);
  const child: ChildProcess = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server = `127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // Ready once it answers for the first name given.
  const probe = Object.keys(records.hosts ?? {})[0];
  const resolver = new Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([server]);
  for (let i = 0; probe !== undefined; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited ${child.exitCode}: ${stderr}`);
    try {
      await resolver.resolve4(probe);
      break;
    } catch {
      if (i > 100) {
        await stop();
        throw new Error(`dnsmasq did not answer on ${server}: ${stderr}`);
      }
      await sleep(50);
    }
  }
  return { server, stop };
}
