// `hoist push NAME [DEST]`: upload a local image to a registry, with progress like pull; blobs the store
// lacks are fetched from the image's source first (or, with --no-fetch, named in the error).
import type { Command } from 'commander';
import { parseDuration } from '../../config/config.ts';
import { HoistError } from '../../core/errors.ts';
import { pushImage } from '../../images/push.ts';
import { type PlatformFlags, platformOptions, platformSelector } from '../platform-flags.ts';
import { createProgress } from '../progress/progress.ts';
import { type RegistryFlags, registryOptions, registryResolver } from '../registry-flags.ts';
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
    if (flags.platform && flags.allPlatforms)
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        '--platform and --all-platforms cannot be used together',
      );
    const mode = flags.quiet
      ? 'quiet'
      : flags.progress === 'auto' || flags.progress === undefined
        ? process.stderr.isTTY
          ? 'tty'
          : 'plain'
        : flags.progress;
    if (mode !== 'tty' && mode !== 'plain' && mode !== 'quiet')
      throw new HoistError(
        'HOIST_INVALID_ARGUMENT',
        `invalid --progress ${JSON.stringify(flags.progress)}: use auto, tty, plain or quiet`,
      );
    const backend = await s.backend();
    const resolver = await registryResolver(s.config, flags);
    const progress = createProgress({ stream: process.stderr, mode });
    const started = Date.now();
    try {
      const result = await pushImage(backend, resolver, s.ctx, name, dest, {
        platforms: platformSelector(flags),
        noFetch: flags.fetch === false,
        concurrency: s.config.max_concurrent_downloads,
        leaseExpiryMs: parseDuration(s.config.pull_lease_expiry),
        progress: (key, state) => progress.update(key, state),
      });
      progress.done(
        `pushed ${result.name} (${result.target.digest}): ${result.pushed} uploaded, ${result.mounted} mounted, ${result.existed} already present${result.fetched > 0 ? `, ${result.fetched} fetched first` : ''}, ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      if (flags.quiet) process.stdout.write(`${result.name}\n`);
    } catch (err) {
      progress.done();
      throw err;
    }
  });
}
