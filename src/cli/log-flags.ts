// `--log-level debug|info|warn|error` (env HOIST_LOG_LEVEL; `--debug` means debug): what hoist logs on
// stderr as logfmt lines while a command runs. The default, warn, shows retries and nothing of a
// successful command; debug shows each registry request, challenge, token fetch, fallback, and the lease
// and GC decisions, never a credential.
import { Option } from 'commander';
import { invalidArgument } from '../core/errors.ts';
import {
  createLogger,
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type Logger,
} from '../core/log.ts';
import { writeStderrLine } from './stderr-lines.ts';

export const DEFAULT_LOG_LEVEL = 'warn';

/** The global option; commander checks the value, from the flag or from the environment. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', `what to log on stderr (default ${DEFAULT_LOG_LEVEL})`)
    .choices(LOG_LEVELS)
    .env('HOIST_LOG_LEVEL');
}

/**
 * `--log-format logfmt|json` (env HOIST_LOG_FORMAT): the log lines' form. With json a failing command's
 * error is a JSON line too, with its stable code (`HOIST_NOT_FOUND`, …) and hint, for scripts.
 */
export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'log and error lines on stderr: logfmt (default) or json')
    .choices(LOG_FORMATS)
    .env('HOIST_LOG_FORMAT');
}

/** The CLI's log format from the global options (logfmt unless json is asked for). */
export function cliLogFormat(global: { logFormat?: string }): LogFormat {
  const format = global.logFormat ?? 'logfmt';
  if (!isLogFormat(format))
    throw invalidArgument(`invalid log format ${JSON.stringify(format)}: use ${LOG_FORMATS.join(' or ')}`);
  return format;
}

/** The command's logger from the global options. */
export function cliLogger(global: { debug?: boolean; logLevel?: string; logFormat?: string }): Logger {
  const level = global.debug ? 'debug' : (global.logLevel ?? DEFAULT_LOG_LEVEL);
  if (!isLogLevel(level))
    throw invalidArgument(`invalid log level ${JSON.stringify(level)}: use ${LOG_LEVELS.join(', ')}`);
  return createLogger(level, writeStderrLine, {}, cliLogFormat(global));
}
