// `hoist lease ls|create|rm`: see what holds data, and let go of it.
import type { Command } from 'commander';
import type { LeaseState, LeaseUsage } from '../../api/maintenance.ts';
import { parseDuration } from '../../config/config.ts';
import { Labels } from '../../core/labels.ts';
import { describeOwner } from '../../leases/owner.ts';
import { FORMAT_HELP, formatListing, goTime } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { humanSize, timeAgo } from '../output/units.ts';
import { session } from '../session.ts';

/** What GC and prune will do with a lease, in the words `lease ls` prints. */
const STATE_TEXT: Record<LeaseState, string> = {
  running: 'running',
  held: 'held',
  orphaned: 'orphaned (owner dead; prune reclaims)',
  expired: 'expired (reclaimable)',
};

export function registerLeaseCommands(program: Command): void {
  const lease = program
    .command('lease')
    .alias('leases')
    .description('Manage leases (what keeps content alive)');
  lease
    .command('ls')
    .alias('list')
    .description('List leases in the namespace, with owner, liveness and bytes held')
    .option('-q, --quiet', 'only IDs')
    .option('--format <format>', FORMAT_HELP)
    .action(async (flags: { quiet?: boolean; format?: string }, command: Command) => {
      const hoist = await session(command).hoist();
      const leases = await hoist.leases();
      if (flags.quiet) {
        for (const l of leases) process.stdout.write(`${l.id}\n`);
        return;
      }
      const expires = (l: LeaseUsage) =>
        l.expires ? l.expires.toISOString().replace(/\.\d{3}Z$/, 'Z') : 'never';
      const purpose = (l: LeaseUsage) =>
        [l.labels[Labels.leasePurpose], l.labels[Labels.leaseRef]].filter(Boolean).join(' ') || '-';
      const table = () => {
        const rows = [['ID', 'CREATED', 'EXPIRES', 'OWNER', 'STATE', 'RESOURCES', 'BYTES', 'PURPOSE']];
        for (const l of leases) {
          rows.push([
            l.id,
            timeAgo(l.createdAt),
            expires(l),
            l.owner ? describeOwner(l.owner) : '-',
            STATE_TEXT[l.state],
            String(l.resources),
            humanSize(l.bytes),
            purpose(l),
          ]);
        }
        return renderTable(rows);
      };
      const records = leases.map((l) => ({
        ID: l.id,
        Namespace: l.namespace,
        CreatedAt: goTime(l.createdAt),
        CreatedSince: timeAgo(l.createdAt),
        Expires: expires(l),
        Owner: l.owner ? describeOwner(l.owner) : '',
        OwnerAlive: l.ownerAlive ?? null,
        State: l.state,
        Alive: l.alive,
        Resources: l.resources,
        Size: humanSize(l.bytes),
        SizeBytes: l.bytes,
        Purpose: purpose(l),
        Labels: l.labels,
      }));
      process.stdout.write(
        formatListing(flags.format, {
          rows: records,
          headers: { CreatedSince: 'CREATED', Size: 'BYTES' },
          table,
        }),
      );
    });
  lease
    .command('create')
    .description('Create a lease (content added under it is kept until it is removed or expires)')
    .option('--id <id>', 'lease ID (random by default)')
    .option('-x, --expires <duration>', 'expiry, e.g. 24h; 0 means never', '24h')
    .action(async (flags: { id?: string; expires: string }, command: Command) => {
      const hoist = await session(command).hoist();
      const expiresInMs = parseDuration(flags.expires);
      const l = await hoist.createLease(flags.id ? { id: flags.id, expiresInMs } : { expiresInMs });
      process.stdout.write(`${l.id}\n`);
    });
  lease
    .command('rm')
    .alias('remove')
    .description('Remove leases; their data is collected unless something else references it')
    .argument('<id...>')
    .option('--async', 'do not wait for garbage collection')
    .action(async (ids: string[], flags: { async?: boolean }, command: Command) => {
      const hoist = await session(command).hoist();
      for (const id of ids) {
        await hoist.removeLease(id);
        process.stdout.write(`${id}\n`);
      }
      if (!flags.async) await hoist.collectGarbage();
    });
}
