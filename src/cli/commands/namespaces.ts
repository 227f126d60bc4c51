// `hoist namespace ls|create|rm`.
import type { Command } from 'commander';
import { FORMAT_HELP, formatListing } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { session } from '../session.ts';

function labelString(labels: Record<string, string>): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(',') : '';
}

export function registerNamespaceCommands(program: Command): void {
  const ns = program.command('namespace').alias('ns').description('Manage namespaces');
  ns.command('ls')
    .alias('list')
    .description('List namespaces')
    .option('-q, --quiet', 'only names')
    .option('--format <format>', FORMAT_HELP)
    .action(async (flags: { quiet?: boolean; format?: string }, command: Command) => {
      const list = await (await session(command).hoist()).namespaces();
      if (flags.quiet) {
        for (const n of list) process.stdout.write(`${n.name}\n`);
        return;
      }
      const table = () =>
        renderTable([['NAME', 'LABELS'], ...list.map((n) => [n.name, labelString(n.labels)])]);
      // Labels as docker's listings print them (k=v,...), and the map itself as LabelMap.
      const rows = list.map((n) => ({ Name: n.name, Labels: labelString(n.labels), LabelMap: n.labels }));
      process.stdout.write(formatListing(flags.format, { rows, table }));
    });
  ns.command('create')
    .description('Create a namespace')
    .argument('<name>')
    .argument('[labels...]', 'k=v labels')
    .action(async (name: string, labels: string[], _o: unknown, command: Command) => {
      const hoist = await session(command).hoist();
      const map: Record<string, string> = {};
      for (const kv of labels) {
        const i = kv.indexOf('=');
        map[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
      }
      await hoist.createNamespace(name, map);
    });
  ns.command('rm')
    .alias('remove')
    .description('Remove empty namespaces')
    .argument('<name...>')
    .action(async (names: string[], _o: unknown, command: Command) => {
      const hoist = await session(command).hoist();
      for (const n of names) {
        await hoist.removeNamespace(n);
        process.stdout.write(`${n}\n`);
      }
    });
}
