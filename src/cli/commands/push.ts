// `hoist push NAME [DEST]`: upload a local image to a registry, with progress like pull; blobs the store
// lacks are fetched from the image's source first (or, with --no-fetch, named in the error).
import type { Command } from 'commander';
import { type PlatformFlags, platformChoice, platformOptions } from '../platform-flags.ts';
import { progressFromFlags } from '../progress/progress.ts';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';

interface PushFlags extends RegistryFlags, PlatformFlags {
  quiet?: boolean;
  progress?: string;
  fetch?: boolean;
}

export function registerPushCommand(program: Command): void {
  const cmd = program
    .command('push')
    .description(
      'Push an image to a registry (fetching blobs the store lacks from where the image came from)',
    )
    .argument('<name>', 'local image name or ID')
    .argument('[destination]', 'registry reference to push to (default: the image name)');
  platformOptions(cmd);
  cmd
    .option('--no-fetch', 'fail instead of fetching blobs missing from the store')
    .option('-q, --quiet', 'print only the pushed reference')
    .option('--progress <mode>', 'auto, tty, plain or quiet', 'auto');
  registryOptions(cmd);
  cmd.action(async (name: string, dest: string | undefined, flags: PushFlags, command: Command) => {
    const s = session(command);
    const options = { ...platformChoice(flags), ...registryChoice(flags), fetch: flags.fetch !== false };
    const progress = progressFromFlags(flags);
    const hoist = await s.hoist();
    const started = Date.now();
    try {
      const r = await hoist.push(name, dest, {
        ...options,
        ...(s.signal ? { signal: s.signal } : {}),
        onProgress: (key, state) => progress.update(key, state),
      });
      progress.done(
        `pushed ${r.name} (${r.target.digest}): ${r.pushed} uploaded, ${r.mounted} mounted, ${r.existed} already present${r.fetched > 0 ? `, ${r.fetched} fetched first` : ''}, ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      if (flags.quiet) process.stdout.write(`${r.name}\n`);
    } catch (err) {
      progress.done();
      throw err;
    }
  });
}
