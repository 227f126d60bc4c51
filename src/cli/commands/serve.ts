// `hoist serve`: run the daemon (containerd's gRPC API on a unix socket) until SIGTERM or SIGINT.
// The first signal stops gracefully (no new calls; calls in flight finish, writes that do not finish
// stay resumable); a second one cancels what is left.
import type { Command } from 'commander';
import { parseDuration, registryTimeouts } from '../../config/config.ts';
import { invalidArgument } from '../../core/errors.ts';
import { createLogger, isLogLevel, LOG_LEVELS } from '../../server/log.ts';
import { defaultAddress } from '../../server/socket.ts';
import { session } from '../session.ts';

interface ServeFlags {
  address?: string;
  group?: string;
  logLevel: string;
  shutdownTimeout: string;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description("Serve containerd's API (for ctr, nerdctl and other containerd clients) on a unix socket")
    .option(
      '-a, --address <path>',
      'socket path (env HOIST_ADDRESS; default /run/hoist/hoist.sock as root, else $XDG_RUNTIME_DIR/hoist/hoist.sock)',
    )
    .option('--group <group>', 'group (name or gid) allowed to use the socket')
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`, 'info')
    .option('--shutdown-timeout <duration>', 'how long a stop waits for calls in flight', '10s')
    .action(async (flags: ServeFlags, command: Command) => {
      if (!isLogLevel(flags.logLevel))
        throw invalidArgument(
          `unknown log level ${JSON.stringify(flags.logLevel)}: use ${LOG_LEVELS.join(', ')}`,
        );
      const s = session(command);
      const log = createLogger(flags.logLevel);
      // Loaded on use: the gRPC stack (grpc-js, protobuf) is ~130 modules no other command needs.
      const { startServer } = await import('../../server/server.ts');
      const { criImageService } = await import('../../server/services/cri-images.ts');
      const { createResolver, dockerCredentials } = await import('../../remotes/index.ts');
      const server = await startServer({
        root: s.config.root,
        // `hoist serve --address X`: commander hands X to the global --address; here it means where to listen.
        address:
          flags.address ??
          (command.parent?.opts() as { address?: string } | undefined)?.address ??
          process.env.HOIST_ADDRESS ??
          defaultAddress(),
        ...(flags.group === undefined ? {} : { group: flags.group }),
        log,
        gcIntervalMs: parseDuration(s.config.gc.schedule),
        shutdownTimeoutMs: parseDuration(flags.shutdownTimeout),
        extraServices: (deps) => [
          criImageService(deps, {
            // Like containerd's CRI: plain HTTP for loopback registries, the request's credentials first.
            resolver: async (domain, auth) => {
              const fromDockerConfig = dockerCredentials();
              const host = domain.replace(/:\d+$/, '');
              const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
              const plain = s.config.registry.plain_http;
              return createResolver({
                plainHttp: loopback ? [...plain, domain] : plain,
                insecureSkipVerify: s.config.registry.insecure_skip_verify,
                hostsDir: s.config.registry.config_path,
                credentials: async (h) => (auth && h === auth.host ? auth.creds : fromDockerConfig(h)),
                concurrency: s.config.max_concurrent_downloads,
                timeouts: registryTimeouts(s.config),
              });
            },
            snapshotter: s.config.snapshotter,
            discardLayers: s.config.discard_unpacked_layers,
            leaseExpiryMs: parseDuration(s.config.pull_lease_expiry),
          }),
        ],
      });
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          log.info('signal received, stopping', { signal, force: signals > 1 });
          server.stop({ force: signals > 1 }).then(resolve, (err: unknown) => {
            log.error('stop failed', { error: err });
            resolve();
          });
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}
