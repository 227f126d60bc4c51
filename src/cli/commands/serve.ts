// `hoist serve`: run the daemon (containerd's gRPC API on a unix socket) until SIGTERM or SIGINT.
// The first signal stops gracefully (no new calls; calls in flight finish, writes that do not finish
// stay resumable); a second one cancels what is left.
import type { Command } from 'commander';
import { parseDuration } from '../../config/config.ts';
import { invalidArgument } from '../../core/errors.ts';
import { createLogger, isLogLevel, LOG_LEVELS } from '../../server/log.ts';
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
      const { serve } = await import('../../hoist/serve.ts');
      // `hoist serve --address X`: commander hands X to the global --address; here it means where to listen.
      const address =
        flags.address ??
        (command.parent?.opts() as { address?: string } | undefined)?.address ??
        process.env.HOIST_ADDRESS;
      const server = await serve({
        config: s.config,
        ...(address ? { address } : {}),
        ...(flags.group === undefined ? {} : { group: flags.group }),
        log,
        shutdownTimeoutMs: parseDuration(flags.shutdownTimeout),
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
