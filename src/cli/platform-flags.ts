// --platform / --all-platforms, shared by every command that picks manifests from an index.
import type { Command } from 'commander';
import { invalidArgument } from '../core/errors.ts';
import type { PlatformOptions } from '../hoist/options.ts';

export interface PlatformFlags {
  platform?: string;
  allPlatforms?: boolean;
}

export function platformOptions(cmd: Command, all = true): Command {
  cmd.option('--platform <os/arch[/variant]>', 'this platform (default: this host)');
  if (all) cmd.option('--all-platforms', 'every platform of a multi-platform image');
  return cmd;
}

export function platformChoice(flags: PlatformFlags): PlatformOptions {
  if (flags.platform && flags.allPlatforms)
    throw invalidArgument('--platform and --all-platforms cannot be used together');
  return {
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...(flags.allPlatforms ? { allPlatforms: true } : {}),
  };
}
