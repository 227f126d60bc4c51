// `hoist namespace ls|create|rm`.
import type { Command } from 'commander';
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
    .action(async (flags: { quiet?: boolean }, command: Command) => {
      const list = await (await session(command).hoist()).namespaces();
      if (flags.quiet) {
        for (const n of list) process.stdout.write(`${n.name}\n`);
        return;
      }
      process.stdout.write(
        renderTable([['NAME', 'LABELS'], ...list.map((n) => [n.name, labelString(n.labels)])]),
      );
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
