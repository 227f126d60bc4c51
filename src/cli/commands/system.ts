// `hoist system df` and `hoist system prune`: where the disk goes, and getting it back.
import type { Command } from 'commander';
import type { ConsistencyReport } from '../../api/maintenance.ts';
import type { Hoist } from '../../hoist/hoist.ts';
import { FORMAT_HELP, formatListing, pascalKeys } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { humanSize } from '../output/units.ts';
import { session } from '../session.ts';
import { registerInfoCommand } from './version.ts';

export function registerSystemCommands(program: Command): void {
  const system = program.command('system').description('Store-wide disk usage and cleanup');
  registerInfoCommand(system);
  system
    .command('df')
    .description('Show disk usage: images, content, shared, reclaimable, snapshots, partial pulls, leases')
    .option('--format <format>', FORMAT_HELP)
    .option(
      '-v, --verbose',
      "with --format: the whole report as one object (the library's diskUsage(), keys PascalCase)",
    )
    .action(async (flags: { format?: string; verbose?: boolean }, command: Command) => {
      const u = await (await session(command).hoist()).diskUsage();
      const liveLeases = u.leases.filter((l) => l.alive);
      const partialAbandoned = u.ingests.items.filter((i) => i.ownerAlive !== true);
      if (flags.verbose && flags.format && flags.format.trim() !== 'table') {
        // The whole report, one object in the key style of the listings (Ingests.Count, Leases[].ID, …).
        process.stdout.write(
          formatListing(flags.format, { rows: [pascalKeys(u) as object], table: () => '' }),
        );
        return;
      }
      const rows = [
        ['TYPE', 'COUNT', 'SIZE', 'RECLAIMABLE'],
        [`Images (${u.namespace})`, `${u.images} (${u.names} names)`, humanSize(u.imageBytes), ''],
        ['Content', String(u.blobs.files), humanSize(u.blobs.fileBytes), humanSize(u.reclaimableBytes)],
        ['Shared between images', '', humanSize(u.sharedBytes), ''],
        [
          'Partial pulls',
          String(u.ingests.count),
          humanSize(u.ingests.bytes),
          humanSize(partialAbandoned.reduce((a, i) => a + i.offset, 0)),
        ],
        ...u.snapshots.bySnapshotter.map((sn) => [
          `Snapshots (${sn.snapshotter})`,
          sn.active > 0 ? `${sn.count} (${sn.active} active)` : String(sn.count),
          humanSize(sn.bytes),
          humanSize(sn.reclaimableBytes),
        ]),
        [
          'Leases',
          `${u.leases.length} (${liveLeases.length} live)`,
          humanSize(u.leases.reduce((a, l) => a + l.bytes, 0)),
          '',
        ],
      ];
      if (flags.format && flags.format.trim() !== 'table') {
        process.stdout.write(formatListing(flags.format, { rows: dfRecords(u), table: () => '' }));
        return;
      }
      process.stdout.write(renderTable(rows));
      if (u.ingests.count > 0) {
        process.stdout.write('\nPartial pulls:\n');
        const p = [['NAMESPACE', 'REF', 'DOWNLOADED', 'OWNER']];
        for (const i of u.ingests.items)
          p.push([
            i.namespace,
            i.ref,
            `${humanSize(i.offset)}/${humanSize(i.total)}`,
            i.ownerAlive ? 'running' : 'abandoned',
          ]);
        process.stdout.write(renderTable(p));
        process.stdout.write('Resume with the same `hoist pull`, or reclaim with `hoist system prune`.\n');
      }
    });
  system
    .command('prune')
    .description(
      'Remove abandoned pull data, expired leases, dangling images (--all: unused images) and unreferenced content',
    )
    .option('-a, --all', 'also remove every unpinned image, not only dangling ones')
    .option('-f, --force', 'do not ask (hoist never prompts; accepted for docker compatibility)')
    .action(async (flags: { all?: boolean }, command: Command) => {
      const hoist = await session(command).hoist();
      const { leases, images, gc } = await hoist.prune({ all: flags.all === true });
      for (const l of leases) process.stdout.write(`Deleted lease: ${l.namespace}/${l.id} (${l.reason})\n`);
      for (const p of images) for (const n of p.names) process.stdout.write(`Untagged: ${n}\n`);
      const bytes = (gc?.removedBytes ?? 0) + (gc?.removedIngestBytes ?? 0) + (gc?.removedSnapshotBytes ?? 0);
      if (gc?.removedSnapshots) process.stdout.write(`Deleted snapshots: ${gc.removedSnapshots}\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(bytes)}\n`);
    });
  system
    .command('check')
    .description(
      'Check the store is consistent: database intact, every record backed on disk, every image complete or fetchable (exit 1 on a problem)',
    )
    .option('--verify', 'also re-hash every blob (reads every byte)')
    .option('--format <format>', FORMAT_HELP)
    .action(async (flags: { verify?: boolean; format?: string }, command: Command) => {
      const hoist = await session(command).hoist();
      const r = await hoist.checkStore({ verify: flags.verify === true });
      // The report is one object: `json` prints it on one line, in the key style of every --format.
      process.stdout.write(
        formatListing(flags.format, { rows: [pascalKeys(r) as object], table: () => renderConsistency(r) }),
      );
      if (!r.ok) process.exitCode = 1;
    });
}

/**
 * `system df`'s rows as docker's `system df --format json` prints them (Type, TotalCount, Active, Size,
 * Reclaimable, all text; Reclaimable with its percentage), one per kind of data hoist keeps.
 */
function dfRecords(u: Awaited<ReturnType<Hoist['diskUsage']>>) {
  const pct = (part: number, whole: number) =>
    `${humanSize(part)} (${whole > 0 ? Math.round((part / whole) * 100) : 0}%)`;
  const abandoned = u.ingests.items.filter((i) => i.ownerAlive !== true).reduce((a, i) => a + i.offset, 0);
  const leaseBytes = u.leases.reduce((a, l) => a + l.bytes, 0);
  return [
    {
      Type: 'Images',
      TotalCount: String(u.images),
      Active: String(u.names),
      Size: humanSize(u.imageBytes),
      Reclaimable: pct(0, u.imageBytes),
    },
    {
      Type: 'Content',
      TotalCount: String(u.blobs.files),
      Active: '',
      Size: humanSize(u.blobs.fileBytes),
      Reclaimable: pct(u.reclaimableBytes, u.blobs.fileBytes),
    },
    {
      Type: 'Partial pulls',
      TotalCount: String(u.ingests.count),
      Active: String(u.ingests.items.filter((i) => i.ownerAlive === true).length),
      Size: humanSize(u.ingests.bytes),
      Reclaimable: pct(abandoned, u.ingests.bytes),
    },
    ...u.snapshots.bySnapshotter.map((sn) => ({
      Type: `Snapshots (${sn.snapshotter})`,
      TotalCount: String(sn.count),
      Active: String(sn.active),
      Size: humanSize(sn.bytes),
      Reclaimable: pct(sn.reclaimableBytes, sn.bytes),
    })),
    {
      Type: 'Leases',
      TotalCount: String(u.leases.length),
      Active: String(u.leases.filter((l) => l.alive).length),
      Size: humanSize(leaseBytes),
      Reclaimable: '',
    },
  ];
}

function renderConsistency(r: ConsistencyReport): string {
  const c = r.checked;
  let out = `Checked ${c.images} images, ${c.contentRecords} content records, ${c.blobFiles} blob files, ${c.snapshots} snapshots, ${c.ingests} ingests`;
  out += c.verifiedBlobs > 0 ? ` (${c.verifiedBlobs} blobs re-hashed)\n` : '\n';
  const rows = (findings: ConsistencyReport['problems']) => [
    ['KIND', 'NAMESPACE', 'SUBJECT', 'DETAIL'],
    ...findings.map((f) => [f.kind, f.namespace ?? '', f.subject, f.detail]),
  ];
  if (r.problems.length > 0) out += `\nProblems (${r.problems.length}):\n${renderTable(rows(r.problems))}`;
  if (r.notes.length > 0) out += `\nNotes (${r.notes.length}, accounted for):\n${renderTable(rows(r.notes))}`;
  out += r.ok
    ? '\nThe store is consistent.\n'
    : '\nThe store is NOT consistent. Re-pull the images named above (`hoist pull`), or remove them (`hoist rmi`) and run `hoist system prune`.\n';
  return out;
}
