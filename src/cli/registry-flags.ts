// Registry flags shared by pull, push and login, and the resolver they configure.
import type { Command } from 'commander';
import type { HoistConfig } from '../config/config.ts';
import { dockerConfigCredentials } from '../remotes/credentials.ts';
import { createResolver } from '../remotes/resolver.ts';
import type { Resolver } from '../remotes/types.ts';

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

export async function registryResolver(config: HoistConfig, flags: RegistryFlags): Promise<Resolver> {
  const concurrency = flags.maxConcurrentDownloads
    ? Number(flags.maxConcurrentDownloads)
    : config.max_concurrent_downloads;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(
      `invalid --max-concurrent-downloads ${flags.maxConcurrentDownloads}: use a whole number ≥ 1`,
    );
  return createResolver({
    plainHttp: flags.plainHttp ? true : config.registry.plain_http,
    insecureSkipVerify: flags.insecureSkipVerify ? true : config.registry.insecure_skip_verify,
    hostsDir: flags.hostsDir ?? config.registry.config_path,
    credentials: dockerConfigCredentials(),
    concurrency,
  });
}
