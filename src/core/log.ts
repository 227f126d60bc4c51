// hoist's structured log (the daemon's, and the CLI's `--log-level`; the library's parts take one through
// their options, so it sits at the bottom layer): one line per entry on stderr, as a JSON object ({time,
// level, msg, …fields}: jq, kubectl logs, log shippers) or as logfmt (`time=… level=info msg=serving address=…`: what
// journalctl shows people, and what Loki and Grafana parse). Lines below the configured level are dropped
// cheaply.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: LogFields): Logger;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export const LOG_FORMATS = ['json', 'logfmt'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

/** Error objects do not survive JSON.stringify; keep their message (and code, when they have one). */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : { message: value.message, code };
  }
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** A logfmt key: the characters logfmt parsers split on become `_`. */
function logfmtKey(key: string): string {
  return key.replace(/[\s="\\]/g, '_') || '_';
}

/** A logfmt value: bare when it can be, else double-quoted with `\`, `"` and control characters escaped. */
function logfmtValue(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  if (text !== '' && !/[\s="\\\u0000-\u001f\u007f]/.test(text)) return text;
  // JSON's string escapes are logfmt's (\", \\, \n, \uXXXX), and its quotes are the ones logfmt wants.
  return JSON.stringify(text);
}

function formatLine(format: LogFormat, entry: LogFields): string {
  if (format === 'json') return `${JSON.stringify(entry)}\n`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(entry)) parts.push(`${logfmtKey(k)}=${logfmtValue(v)}`);
  return `${parts.join(' ')}\n`;
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
  base: LogFields = {},
  format: LogFormat = 'json',
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const enabled = (l: LogLevel) => LOG_LEVELS.indexOf(l) >= min;
  const emit = (l: LogLevel, msg: string, fields?: LogFields) => {
    if (!enabled(l)) return;
    const entry: LogFields = { time: new Date().toISOString(), level: l, msg };
    for (const [k, v] of Object.entries(base)) entry[k] = plain(v);
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) entry[k] = plain(v);
    write(formatLine(format, entry));
  };
  return {
    level,
    enabled,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    with: (fields) => createLogger(level, write, { ...base, ...fields }, format),
  };
}
