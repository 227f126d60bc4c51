// Registry flags shared by pull, push, save, convert, unpack and login, as the library's options.
import type { Command } from 'commander';
import { invalidArgument } from '../core/errors.ts';
import type { RegistryOptions } from '../hoist/options.ts';

export interface RegistryFlags {
  plainHttp?: boolean;
  insecureSkipVerify?: boolean;
  hostsDir?: string;
  maxConcurrentDownloads?: string;
}

export function registryOptions(cmd: Command): Command {
  return cmd
    .option('--plain-http', 'talk HTTP, not HTTPS, to the registry')
    .option('--insecure-skip-verify', 'do not verify the registry TLS certificate')
    .option('--hosts-dir <dir>', 'containerd-style certs.d directory with <host>/hosts.toml')
    .option('--max-concurrent-downloads <n>', 'parallel blob downloads');
}

/** A flag that takes a whole number ≥ 1, named in the error. */
export function wholeNumberFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw invalidArgument(`invalid ${flag} ${JSON.stringify(value)}: use a whole number ≥ 1`);
  return n;
}

/** The flags as library options; a flag left out leaves the config's setting. */
export function registryChoice(flags: RegistryFlags): RegistryOptions {
  const downloads = wholeNumberFlag('--max-concurrent-downloads', flags.maxConcurrentDownloads);
  return {
    ...(flags.plainHttp ? { plainHttp: true } : {}),
    ...(flags.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    ...(flags.hostsDir ? { hostsDir: flags.hostsDir } : {}),
    ...(downloads !== undefined ? { maxConcurrentDownloads: downloads } : {}),
  };
}
