// `--log-level debug|info|warn|error` (env HOIST_LOG_LEVEL; `--debug` means debug): what hoist logs on
// stderr as logfmt lines while a command runs. The default, warn, shows retries and nothing of a
// successful command; debug shows each registry request, challenge, token fetch, fallback, and the lease
// and GC decisions, never a credential.
import { Option } from 'commander';
import { invalidArgument } from '../core/errors.ts';
import { createLogger, isLogLevel, LOG_LEVELS, type Logger } from '../core/log.ts';
import { writeStderrLine } from './stderr-lines.ts';

export const DEFAULT_LOG_LEVEL = 'warn';

/** The global option; commander checks the value, from the flag or from the environment. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', `what to log on stderr (default ${DEFAULT_LOG_LEVEL})`)
    .choices(LOG_LEVELS)
    .env('HOIST_LOG_LEVEL');
}

/** The command's logger from the global options. */
export function cliLogger(global: { debug?: boolean; logLevel?: string }): Logger {
  const level = global.debug ? 'debug' : (global.logLevel ?? DEFAULT_LOG_LEVEL);
  if (!isLogLevel(level))
    throw invalidArgument(`invalid log level ${JSON.stringify(level)}: use ${LOG_LEVELS.join(', ')}`);
  return createLogger(level, writeStderrLine, {}, 'logfmt');
}
