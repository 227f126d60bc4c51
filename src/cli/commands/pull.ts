// `hoist pull`: fetch an image into the store, with progress, resumable after interruption.
import type { Command } from 'commander';
import { invalidArgument } from '../../core/errors.ts';
import { progressFromFlags } from '../progress/progress.ts';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';
import { type UnpackFlags, unpackChoice, unpackOptions } from '../unpack-flags.ts';

interface PullFlags extends RegistryFlags, UnpackFlags {
  platform?: string;
  allPlatforms?: boolean;
  quiet?: boolean;
  progress?: string;
  label?: string[];
}

function labelsOf(flags: PullFlags): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of flags.label ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw invalidArgument(`invalid --label ${JSON.stringify(kv)}: expected key=value`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return labels;
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
    const options = {
      ...registryChoice(flags),
      ...unpackChoice(flags),
      unpack: flags.unpack ?? true,
      labels: labelsOf(flags),
      ...(flags.platform ? { platform: flags.platform } : {}),
      ...(flags.allPlatforms ? { allPlatforms: true } : {}),
    };
    const progress = progressFromFlags(flags);
    const hoist = await s.hoist();
    const started = Date.now();
    try {
      const result = await hoist.pull(reference, {
        ...options,
        ...(s.signal ? { signal: s.signal } : {}),
        onProgress: (key, state) => progress.update(key, state),
        onWarning: (msg) => progress.log(`warning: ${msg}`),
      });
      const into =
        result.unpacked.length > 0
          ? `, unpacked into ${options.snapshotter ?? hoist.config.snapshotter}`
          : '';
      progress.done(
        `pulled ${result.name} (${result.target.digest}): ${result.fetched} fetched, ${result.existed} already present${into}, ${((Date.now() - started) / 1000).toFixed(1)}s`,
      );
      if (flags.quiet) process.stdout.write(`${result.name}\n`);
    } catch (err) {
      progress.done();
      throw err;
    }
  });
}
