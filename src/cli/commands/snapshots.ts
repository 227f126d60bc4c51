// `hoist snapshot ls|tree|usage|info|rm` (alias `snapshots`), per snapshotter like `ctr snapshots`.
import type { Command } from 'commander';
import type { SnapshotInfo } from '../../api/snapshots.ts';
import { HoistError } from '../../core/errors.ts';
import type { Hoist } from '../../hoist/hoist.ts';
import { FORMAT_HELP, formatInspect, formatListing, goTime } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { humanSize, timeAgo } from '../output/units.ts';
import { session } from '../session.ts';
import { registerPrepareCommand } from './commit.ts';

interface SnFlags {
  snapshotter?: string;
  filter?: string[];
  format?: string;
}

/** The store, and the snapshotter option the flags give (left out: the config's). */
async function open(
  command: Command,
  flags: SnFlags,
): Promise<{ hoist: Hoist; sn: { snapshotter?: string } }> {
  const hoist = await session(command).hoist();
  const sn = flags.snapshotter ? { snapshotter: flags.snapshotter } : {};
  await hoist.snapshotter(flags.snapshotter); // an unknown name fails here, naming the ones there are
  return { hoist, sn };
}

/** A snapshot as `--format` sees it: ctr's fields, in docker's key style. */
function snapshotRecord(i: SnapshotInfo) {
  return {
    Name: i.name,
    Parent: i.parent ?? '',
    Kind: i.kind,
    CreatedAt: goTime(i.created),
    CreatedSince: timeAgo(i.created),
    UpdatedAt: goTime(i.updated),
    Labels: i.labels,
  };
}

const SNAPSHOT_HEADERS: Record<string, string> = { Name: 'KEY', CreatedSince: 'CREATED' };

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function children(all: SnapshotInfo[]): Map<string, SnapshotInfo[]> {
  const out = new Map<string, SnapshotInfo[]>();
  for (const i of all) {
    const k = i.parent ?? '';
    out.set(k, [...(out.get(k) ?? []), i]);
  }
  for (const v of out.values()) v.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

export function registerSnapshotCommands(program: Command): void {
  const snap = program
    .command('snapshot')
    .alias('snapshots')
    .description('Inspect and manage snapshots (unpacked layers)')
    .option('--snapshotter <name>', 'overlayfs or native (default: config `snapshotter`)');
  const flagsOf = (command: Command): SnFlags => ({ ...snap.opts(), ...command.opts() }) as SnFlags;

  snap
    .command('ls')
    .alias('list')
    .description('List snapshots')
    .option('-f, --filter <filter>', 'containerd filter, e.g. kind==committed or labels."k"==v', collect)
    .option('--format <format>', FORMAT_HELP)
    .action(async (_o: unknown, command: Command) => {
      const flags = flagsOf(command);
      const { hoist, sn } = await open(command, flags);
      const list = await hoist.snapshots({ ...sn, filters: flags.filter ?? [] });
      list.sort((a, b) => a.name.localeCompare(b.name));
      const table = () => {
        const rows = [['KEY', 'PARENT', 'KIND', 'CREATED']];
        for (const i of list) rows.push([i.name, i.parent ?? '', i.kind, timeAgo(i.created)]);
        return renderTable(rows);
      };
      process.stdout.write(
        formatListing(flags.format, { rows: list.map(snapshotRecord), headers: SNAPSHOT_HEADERS, table }),
      );
    });

  snap
    .command('tree')
    .description('Show snapshots as a tree of parents and children')
    .action(async (_o: unknown, command: Command) => {
      const flags = flagsOf(command);
      const { hoist, sn } = await open(command, flags);
      const byParent = children(await hoist.snapshots(sn));
      const lines: string[] = [];
      const walk = (parent: string, depth: number) => {
        for (const i of byParent.get(parent) ?? []) {
          lines.push(`${'  '.repeat(depth)}\\_ ${i.name}${i.kind === 'committed' ? '' : ` (${i.kind})`}`);
          walk(i.name, depth + 1);
        }
      };
      walk('', 0);
      process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : '');
    });

  snap
    .command('usage')
    .alias('du')
    .description('Disk usage of snapshots (bytes and inodes)')
    .argument('[key...]', 'snapshots (default: all)')
    .action(async (keys: string[], _o: unknown, command: Command) => {
      const flags = flagsOf(command);
      const { hoist, sn } = await open(command, flags);
      const names = keys.length > 0 ? keys : (await hoist.snapshots(sn)).map((i) => i.name).sort();
      const rows = [['KEY', 'SIZE', 'INODES']];
      let size = 0;
      let inodes = 0;
      for (const k of names) {
        const u = await hoist.snapshotUsage(k, sn);
        size += u.size;
        inodes += u.inodes;
        rows.push([k, humanSize(u.size), String(u.inodes)]);
      }
      if (names.length > 1) rows.push(['TOTAL', humanSize(size), String(inodes)]);
      process.stdout.write(renderTable(rows));
    });

  snap
    .command('info')
    .description('Show a snapshot as JSON')
    .argument('<key>', 'snapshot key')
    .option('-f, --format <format>', "'json' (default) or a Go TEMPLATE, e.g. '{{.Parent}}'")
    .action(async (key: string, _o: unknown, command: Command) => {
      const flags = flagsOf(command);
      const { hoist, sn } = await open(command, flags);
      const info = snapshotRecord(await hoist.snapshotInfo(key, sn));
      // One object (as `ctr snapshots info`), or the template's text.
      process.stdout.write(
        flags.format && flags.format !== 'json'
          ? formatInspect(flags.format, [info])
          : `${JSON.stringify(info, null, 2)}\n`,
      );
    });

  snap
    .command('rm')
    .alias('remove')
    .description('Remove snapshots (a snapshot with children cannot be removed)')
    .argument('<key...>', 'snapshot keys')
    .action(async (keys: string[], _o: unknown, command: Command) => {
      const flags = flagsOf(command);
      const { hoist, sn } = await open(command, flags);
      const failed: string[] = [];
      for (const k of keys) {
        try {
          await hoist.removeSnapshot(k, sn);
          process.stdout.write(`${k}\n`);
        } catch (err) {
          failed.push(k);
          process.stderr.write(`hoist: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      if (failed.length > 0)
        throw new HoistError('HOIST_FAILED_PRECONDITION', `could not remove ${failed.length} snapshot(s)`);
    });
  registerPrepareCommand(snap);
}
