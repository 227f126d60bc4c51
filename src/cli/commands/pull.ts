// `hoist pull`: fetch an image into the store, with progress, resumable after interruption.
import type { Command } from 'commander';
import { parseDuration } from '../../config/config.ts';
import { HoistError } from '../../core/errors.ts';
import { hostPlatform, parsePlatform } from '../../core/platform.ts';
import { pullImage } from '../../images/pull.ts';
import { snapshotterFor } from '../../images/unpack.ts';
import { ALL_PLATFORMS, onePlatform } from '../../images/walk.ts';
import { createProgress } from '../progress/progress.ts';
import { type RegistryFlags, registryOptions, registryResolver } from '../registry-flags.ts';
import { session } from '../session.ts';
import { type UnpackFlags, unpackChoice, unpackOptions } from '../unpack-flags.ts';

interface PullFlags extends RegistryFlags, UnpackFlags {
  platform?: string;
  allPlatforms?: boolean;
  quiet?: boolean;
  progress?: string;
  label?: string[];
}

export function registerPullCommand(program: Command): void {
  const cmd = program
    .command('pull')
    .description('Pull an image from a registry (resumes an interrupted pull of the same image)')
    .argument('<reference>', 'image reference, e.g. alpine:3.20 or registry:5000/team/app@sha256:…')
    .option('--platform <os/arch[/variant]>', 'pull this platform (default: this host)')
    .option('--all-platforms', 'pull every platform of a multi-platform image')
    .option('-q, --quiet', 'print only the image name')
    .option('--progress <mode>', 'auto, tty, plain or quiet', 'auto')
    .option('--label <k=v...>', 'labels for the image record');
  unpackOptions(cmd);
  registryOptions(cmd);
  cmd.action(async (reference: string, flags: PullFlags, command: Command) => {
    const s = session(command);
    const backend = await s.backend();
    const choice = unpackChoice(flags, s.config);
    if (choice.unpack) snapshotterFor(backend, choice.snapshotter); // a bad name fails before any download
    const resolver = await registryResolver(s.config, flags);
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
    const progress = createProgress({ stream: process.stderr, mode });
    const labels: Record<string, string> = {};
    for (const kv of flags.label ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0)
        throw new HoistError(
          'HOIST_INVALID_ARGUMENT',
          `invalid --label ${JSON.stringify(kv)}: expected key=value`,
        );
      labels[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const started = Date.now();
    try {
      const wanted = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
      const platforms = flags.allPlatforms ? ALL_PLATFORMS : onePlatform(wanted);
      const result = await pullImage(backend, resolver, s.ctx, reference, {
        platforms,
        leaseExpiryMs: parseDuration(s.config.pull_lease_expiry),
        concurrency: s.config.max_concurrent_downloads,
        progress: (key, state) => progress.update(key, state),
        labels,
        // Every platform may be fetched, but only the wanted one (this host by default) is unpacked.
        ...(choice.unpack
          ? {
              unpack: {
                snapshotter: choice.snapshotter,
                platforms: onePlatform(wanted),
                discardLayers: choice.discardLayers,
                onWarning: (msg: string) => progress.log(`warning: ${msg}`),
              },
            }
          : {}),
      });
      // Discarded layers lost their last reference with the pull's lease: collect them now, as rmi does.
      if (choice.unpack && choice.discardLayers) await backend.collectGarbage();
      const unpackedNote = result.unpacked.length > 0 ? `, unpacked into ${choice.snapshotter}` : '';
      progress.done(
        `pulled ${result.name} (${result.target.digest}): ${result.fetched} fetched, ${result.existed} already present${unpackedNote}, ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      if (flags.quiet) process.stdout.write(`${result.name}\n`);
    } catch (err) {
      progress.done();
      throw err;
    }
  });
}
