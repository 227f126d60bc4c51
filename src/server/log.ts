// The daemon's structured log: one JSON object per line on stderr ({time, level, msg, …fields}), so
// journald, kubectl logs or jq can read it. Lines below the configured level are dropped cheaply.

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

/** Error objects do not survive JSON.stringify; keep their message (and code, when they have one). */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : { message: value.message, code };
  }
  if (typeof value === 'bigint') return Number(value);
  return value;
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
  base: LogFields = {},
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const enabled = (l: LogLevel) => LOG_LEVELS.indexOf(l) >= min;
  const emit = (l: LogLevel, msg: string, fields?: LogFields) => {
    if (!enabled(l)) return;
    const entry: LogFields = { time: new Date().toISOString(), level: l, msg };
    for (const [k, v] of Object.entries(base)) entry[k] = plain(v);
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) entry[k] = plain(v);
    write(`${JSON.stringify(entry)}\n`);
  };
  return {
    level,
    enabled,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    with: (fields) => createLogger(level, write, { ...base, ...fields }),
  };
}
