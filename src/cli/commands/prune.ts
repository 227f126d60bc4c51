// `hoist image prune`.
import type { Command } from 'commander';
import { humanSize } from '../output/units.ts';
import { session } from '../session.ts';

export function registerPruneCommand(image: Command): void {
  image
    .command('prune')
    .description('Remove dangling images (no tag); with -a every image that is not pinned')
    .option('-a, --all', 'remove all unpinned images, not only dangling ones')
    .option('-f, --force', 'do not ask (hoist never prompts; accepted for docker compatibility)')
    .action(async (flags: { all?: boolean }, command: Command) => {
      const hoist = await session(command).hoist();
      const { images, gc } = await hoist.pruneImages({ all: flags.all === true });
      for (const p of images) for (const n of p.names) process.stdout.write(`Untagged: ${n}\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(gc?.removedBytes ?? 0)}\n`);
    });
}
