// --platform / --all-platforms, shared by every command that picks manifests from an index.
import type { Command } from 'commander';
import { hostPlatform, parsePlatform } from '../core/platform.ts';
import { ALL_PLATFORMS, onePlatform, type PlatformSelector } from '../images/walk.ts';

export interface PlatformFlags {
  platform?: string;
  allPlatforms?: boolean;
}

export function platformOptions(cmd: Command, all = true): Command {
  cmd.option('--platform <os/arch[/variant]>', 'this platform (default: this host)');
  if (all) cmd.option('--all-platforms', 'every platform of a multi-platform image');
  return cmd;
}

export function platformSelector(flags: PlatformFlags): PlatformSelector {
  if (flags.allPlatforms) return ALL_PLATFORMS;
  return onePlatform(flags.platform ? parsePlatform(flags.platform) : hostPlatform());
}
