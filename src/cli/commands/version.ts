// `hoist version` and `hoist info`, shaped as docker's: `version` a Client section (and a Server one
// when a daemon answers: containerd's Version service), `info` what this invocation works on (root,
// namespace, snapshotter, config file, embedded or daemon, images, store usage). Both take --format
// (`json`, or a template over the same object: `{{.Client.Version}}`, `{{.Images}}`).
import { existsSync, readFileSync } from 'node:fs';
import { arch, hostname, platform } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { formatListing } from '../output/format.ts';
import { humanSize } from '../output/units.ts';
import { session } from '../session.ts';

/** Go's names for the OS and architecture, as docker's `OS/Arch` prints them. */
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };

/** The directory of hoist's package.json: sources and the bundle sit at different depths below it. */
function packageDir(): string | undefined {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    const pkg = new URL('package.json', dir);
    try {
      if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'hoist')
        return fileURLToPath(dir);
    } catch {
      // no package.json here
    }
    if (dir.pathname === '/') return undefined;
  }
}

/** The commit of a git checkout hoist runs from (HEAD, through its ref), else empty: a release is not one. */
function gitCommit(dir: string): string {
  try {
    const git = join(dir, '.git');
    const head = readFileSync(join(git, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 40);
    const ref = head.slice(5);
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), 'utf8').trim();
    const packed = readFileSync(join(git, 'packed-refs'), 'utf8');
    return (
      packed
        .split('\n')
        .find((l) => l.endsWith(` ${ref}`))
        ?.split(' ')[0] ?? ''
    );
  } catch {
    return '';
  }
}

function clientVersion() {
  const dir = packageDir();
  let version = 'unknown';
  if (dir) {
    try {
      version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // keep unknown
    }
  }
  return {
    Version: version,
    NodeVersion: process.version,
    GitCommit: dir ? gitCommit(dir) : '',
    Os: platform(),
    Arch: GO_ARCH[arch()] ?? arch(),
  };
}

/** docker's ` Key:  value` lines under a section title, values aligned. */
function section(title: string, rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return `${title}:\n${rows.map(([k, v]) => ` ${`${k}:`.padEnd(width)}${v}`.trimEnd()).join('\n')}\n`;
}

export function registerVersionCommands(program: Command): void {
  program
    .command('version')
    .description("Show hoist's version, and the daemon's when working through one")
    .option('-f, --format <format>', "'json' or a Go TEMPLATE, e.g. '{{.Client.Version}}'")
    .action(async (flags: { format?: string }, command: Command) => {
      const client = clientVersion();
      const s = session(command);
      // Only a daemon has a server version; the embedded store is this process.
      const hoist = await s.hoist();
      const v = await hoist.serverVersion();
      const server = v ? { Version: v.version, Revision: v.revision, Address: hoist.address ?? '' } : null;
      const out = { Client: client, Server: server };
      let text = section('Client', [
        ['Version', client.Version],
        ['Node version', client.NodeVersion],
        ['Git commit', client.GitCommit || '-'],
        ['OS/Arch', `${client.Os}/${client.Arch}`],
      ]);
      if (server)
        text += `\n${section('Server', [
          ['Version', server.Version],
          ['Revision', server.Revision],
          ['Address', server.Address],
        ])}`;
      // `json`: the object on one line, as docker's `version --format json`; a template runs over it.
      process.stdout.write(formatListing(flags.format, { rows: [out], table: () => text }));
    });

  registerInfoCommand(program);
}

/** `info`, also `system info` as docker's. */
export function registerInfoCommand(parent: Command): void {
  parent
    .command('info')
    .description('Show what hoist works on: store, namespace, snapshotter, config, daemon, images, usage')
    .option('-f, --format <format>', "'json' or a Go TEMPLATE, e.g. '{{.Images}}'")
    .action(async (flags: { format?: string }, command: Command) => {
      const s = session(command);
      const hoist = await s.hoist();
      const rows = await hoist.images({ all: true });
      const images = new Set(rows.map((r) => r.id)).size;
      // A containerd has no maintenance service: the usage is then unknown, not an error.
      const u = await hoist.diskUsage().catch(() => undefined);
      const out = {
        ClientVersion: clientVersion().Version,
        ServerVersion: (await hoist.serverVersion())?.version ?? '',
        Mode: hoist.address ? 'daemon' : 'embedded',
        Address: hoist.address ?? '',
        Root: s.config.root,
        Namespace: hoist.namespace,
        Snapshotter: s.config.snapshotter,
        // docker's name for the same thing
        Driver: s.config.snapshotter,
        ConfigFile: s.config.source ?? '',
        Images: images,
        Names: rows.length,
        Usage: u
          ? {
              ContentBlobs: u.blobs.files,
              ContentBytes: u.blobs.fileBytes,
              SharedBytes: u.sharedBytes,
              ReclaimableBytes: u.reclaimableBytes,
              SnapshotBytes: u.snapshots.bySnapshotter.reduce((a, x) => a + x.bytes, 0),
              PartialPulls: u.ingests.count,
              Leases: u.leases.length,
            }
          : null,
        Name: hostname(),
        OSType: platform(),
        Architecture: GO_ARCH[arch()] ?? arch(),
      };
      const usage: [string, string][] = out.Usage
        ? [
            ['Content', `${humanSize(out.Usage.ContentBytes)} (${out.Usage.ContentBlobs} blobs)`],
            ['Snapshots', humanSize(out.Usage.SnapshotBytes)],
            ['Shared between images', humanSize(out.Usage.SharedBytes)],
            ['Reclaimable', humanSize(out.Usage.ReclaimableBytes)],
            ['Partial pulls', String(out.Usage.PartialPulls)],
            ['Leases', String(out.Usage.Leases)],
          ]
        : [['Store usage', 'unknown (the daemon has no store maintenance service)']];
      const table = () =>
        `${section('Client', [['Version', out.ClientVersion]])}\n${section('Server', [
          ['Mode', out.Mode === 'daemon' ? `daemon at ${out.Address}` : 'embedded (no daemon)'],
          ...(out.ServerVersion ? ([['Server Version', out.ServerVersion]] as [string, string][]) : []),
          ['Root Dir', out.Root],
          ['Namespace', out.Namespace],
          ['Snapshotter', out.Snapshotter],
          ['Config file', out.ConfigFile || 'none (defaults)'],
          ['Images', `${out.Images} (${out.Names} names)`],
          ...usage,
        ])}`;
      process.stdout.write(formatListing(flags.format, { rows: [out], table }));
    });
}
