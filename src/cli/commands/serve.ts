// `hoist serve`: run the daemon (containerd's gRPC API on a unix socket) until SIGTERM or SIGINT.
// The first signal stops gracefully (no new calls; calls in flight finish, writes that do not finish
// stay resumable); a second one cancels what is left. Each flag overrides its key in the config's [serve]
// table. Started by systemd with a socket (hoist.socket), it serves that socket instead of binding one.
import type { Command } from 'commander';
import { parseDuration, parseSocketMode, parseTcpAddress } from '../../config/config.ts';
import { invalidArgument } from '../../core/errors.ts';
import { createLogger, isLogFormat, isLogLevel, LOG_FORMATS, LOG_LEVELS } from '../../core/log.ts';
import { pickListenFd, takeListenFds } from '../../server/systemd.ts';
import { session } from '../session.ts';

interface ServeFlags {
  address?: string;
  group?: string;
  logLevel?: string;
  logFormat?: string;
  socketMode?: string;
  metricsAddress?: string;
  registryAddress?: string;
  shutdownTimeout?: string;
  containerd?: string;
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
    .option('--socket-mode <mode>', 'permission bits of the socket, in octal (default 0660)')
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default info)`)
    .option('--log-format <format>', `log lines: ${LOG_FORMATS.join(' or ')} (default json)`)
    .option(
      '--metrics-address <host:port>',
      'serve Prometheus metrics on http://host:port/metrics (default: none)',
    )
    .option(
      '--registry-address <host:port>',
      "serve the store's images read-only as an OCI registry on http://host:port, for peers' hosts.toml mirrors (default: none)",
    )
    .option('--shutdown-timeout <duration>', 'how long a stop waits for calls in flight (default 10s)')
    .option(
      '--containerd <socket>',
      "serve only the CRI image service, on this containerd's store (config containerd_address)",
    )
    .action(async (flags: ServeFlags, command: Command) => {
      const s = session(command);
      const settings = s.config.serve;
      // `hoist serve --log-level X`: commander hands X to the global --log-level (so does HOIST_LOG_LEVEL).
      const global = command.parent?.opts() as
        | { logLevel?: string; logFormat?: string; debug?: boolean }
        | undefined;
      const level = flags.logLevel ?? global?.logLevel ?? (global?.debug ? 'debug' : settings.log_level);
      if (!isLogLevel(level))
        throw invalidArgument(`unknown log level ${JSON.stringify(level)}: use ${LOG_LEVELS.join(', ')}`);
      // Likewise `--log-format` (and HOIST_LOG_FORMAT) reach the global option.
      const format = flags.logFormat ?? global?.logFormat ?? settings.log_format;
      if (!isLogFormat(format))
        throw invalidArgument(
          `unknown log format ${JSON.stringify(format)}: use ${LOG_FORMATS.join(' or ')}`,
        );
      if (flags.metricsAddress !== undefined) parseTcpAddress(flags.metricsAddress);
      if (flags.registryAddress !== undefined) parseTcpAddress(flags.registryAddress);
      const log = createLogger(level, undefined, {}, format);
      // Read (and unset) before anything could start a child process that would inherit them.
      const handed = pickListenFd(takeListenFds(), 'hoist');
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
        ...(flags.socketMode === undefined ? {} : { socketMode: parseSocketMode(flags.socketMode) }),
        ...(flags.metricsAddress === undefined ? {} : { metricsAddress: flags.metricsAddress }),
        ...(flags.registryAddress === undefined ? {} : { registryAddress: flags.registryAddress }),
        ...(handed ? { listenFd: handed.fd } : {}),
        log,
        ...(flags.shutdownTimeout === undefined
          ? {}
          : { shutdownTimeoutMs: parseDuration(flags.shutdownTimeout) }),
        ...(flags.containerd === undefined ? {} : { containerd: flags.containerd }),
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
