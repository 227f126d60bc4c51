// One error catalogue for all of hoist. Every error has a stable string code (for scripts and tests),
// a gRPC status code (so the server can answer as containerd does) and a message that says what
// happened and, where we can, what the user can do about it.
//
// Messages follow containerd's shapes where a real client depends on them (e.g. `content digest X: not
// found`), because ctr and the CRI print them verbatim.

import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** gRPC status codes (google.rpc.Code). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** The catalogue: stable code → gRPC code. Codes are never reused for another meaning. */
export const ErrorCodes = {
  HOIST_NOT_FOUND: GrpcCode.NOT_FOUND,
  HOIST_ALREADY_EXISTS: GrpcCode.ALREADY_EXISTS,
  HOIST_INVALID_ARGUMENT: GrpcCode.INVALID_ARGUMENT,
  HOIST_FAILED_PRECONDITION: GrpcCode.FAILED_PRECONDITION,
  HOIST_UNAVAILABLE: GrpcCode.UNAVAILABLE,
  HOIST_NOT_IMPLEMENTED: GrpcCode.UNIMPLEMENTED,
  HOIST_CANCELLED: GrpcCode.CANCELLED,
  HOIST_DIGEST_MISMATCH: GrpcCode.FAILED_PRECONDITION,
  HOIST_SIZE_MISMATCH: GrpcCode.FAILED_PRECONDITION,
  HOIST_INVALID_REFERENCE: GrpcCode.INVALID_ARGUMENT,
  HOIST_UNSUPPORTED_MEDIA_TYPE: GrpcCode.INVALID_ARGUMENT,
  HOIST_MALFORMED_MANIFEST: GrpcCode.INVALID_ARGUMENT,
  HOIST_AMBIGUOUS: GrpcCode.FAILED_PRECONDITION,
  HOIST_UNAUTHORIZED: GrpcCode.UNAUTHENTICATED,
  HOIST_DENIED: GrpcCode.PERMISSION_DENIED,
  HOIST_REGISTRY: GrpcCode.UNKNOWN,
  HOIST_NETWORK: GrpcCode.UNAVAILABLE,
  HOIST_CONFIG: GrpcCode.INVALID_ARGUMENT,
  HOIST_LOCKED: GrpcCode.UNAVAILABLE,
  /** Input larger than hoist will hold (a manifest over its cap, a message over the server's limit). */
  HOIST_TOO_LARGE: GrpcCode.RESOURCE_EXHAUSTED,
  /** No space left on the file system being written (ENOSPC, SQLITE_FULL): see diskFull(). */
  HOIST_DISK_FULL: GrpcCode.RESOURCE_EXHAUSTED,
  /** An offset outside what exists (e.g. a content write not at the ingest's current offset). */
  HOIST_OUT_OF_RANGE: GrpcCode.OUT_OF_RANGE,
  HOIST_INTERNAL: GrpcCode.INTERNAL,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

const brand = Symbol.for('hoist.error');

export class HoistError extends Error {
  readonly code: ErrorCode;
  /** Optional advice printed after the message by the CLI ("what you can do"). */
  readonly hint: string | undefined;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoistError';
    this.code = code;
    this.hint = options?.hint;
  }

  get grpcCode(): GrpcCode {
    return ErrorCodes[this.code];
  }

  /** Works across duplicated module copies, like undici's branded errors. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

export const notFound = (message: string, hint?: string) =>
  new HoistError('HOIST_NOT_FOUND', message, hint ? { hint } : undefined);
export const alreadyExists = (message: string) => new HoistError('HOIST_ALREADY_EXISTS', message);
export const invalidArgument = (message: string, hint?: string) =>
  new HoistError('HOIST_INVALID_ARGUMENT', message, hint ? { hint } : undefined);
export const failedPrecondition = (message: string, hint?: string) =>
  new HoistError('HOIST_FAILED_PRECONDITION', message, hint ? { hint } : undefined);

export function isHoistError(err: unknown, code?: ErrorCode): err is HoistError {
  return err instanceof HoistError && (code === undefined || err.code === code);
}

export const isNotFound = (err: unknown): boolean => isHoistError(err, 'HOIST_NOT_FOUND');
export const isAlreadyExists = (err: unknown): boolean => isHoistError(err, 'HOIST_ALREADY_EXISTS');

/**
 * containerd's status names, which its messages end with (`…: failed precondition`) and hoist's keep where
 * they go over the wire (ctr and the CRI print them as containerd's). `not found` and `already exists` read
 * as the end of a sentence and stay.
 */
const STATUS_SUFFIX =
  /: (failed precondition|invalid argument|unavailable|not implemented|out of range|unknown|internal|aborted|resource exhausted|permission denied|unauthenticated|deadline exceeded|cancelled|canceled)$/;

/** The message as a sentence for a person: without the status name (the stable code is `err.code`). */
export function humanMessage(err: HoistError): string {
  return err.message.replace(STATUS_SUFFIX, '');
}

/** Normalise any thrown value into a HoistError (for the CLI and the server edge). */
export function toHoistError(err: unknown): HoistError {
  if (err instanceof HoistError) return err;
  if (err instanceof Error) {
    const sys = err as NodeJS.ErrnoException;
    if (sys.code === 'ENOENT') return new HoistError('HOIST_NOT_FOUND', err.message, { cause: err });
    if (sys.code === 'EACCES' || sys.code === 'EPERM')
      return new HoistError('HOIST_DENIED', err.message, {
        cause: err,
        hint: 'run as root, or pass --root to use a store you can write',
      });
    if (isDiskFull(err)) return diskFull(undefined, sys.path, err);
    if (err.name === 'AbortError')
      return new HoistError('HOIST_CANCELLED', 'operation cancelled', { cause: err });
    return new HoistError('HOIST_INTERNAL', err.message, { cause: err });
  }
  return new HoistError('HOIST_INTERNAL', String(err));
}

// ---------------------------------------------------------------------------------------------------
// A full disk. The OS says ENOSPC with no path ("no space left on device, write"); SQLite says
// SQLITE_FULL ("database or disk is full"), or, when it cannot even grow its shared-memory file, a bare
// I/O error. Whoever writes wraps the error with what it was writing and where (diskFull), so the user
// reads one message: the disk is full, which file system, what was being written, what to do.

const SQLITE_IOERR = 10;
const SQLITE_FULL = 13;
/** Below this many free bytes a file system counts as full (an I/O error there is taken as ENOSPC). */
const NEARLY_FULL_BYTES = 1024 * 1024;

function freeBytes(path: string): { free: number; total: number } | undefined {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = statfsSync(p);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

/**
 * True when `err` means the disk is full: ENOSPC, SQLITE_FULL, or (given the path being written) an I/O
 * error on a file system with next to no space left. Looks through HoistError causes.
 */
export function isDiskFull(err: unknown, path?: string): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof HoistError && e.code === 'HOIST_DISK_FULL') return true;
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return true;
    const sqlite = (e as { errcode?: unknown }).errcode;
    if (typeof sqlite === 'number') {
      if ((sqlite & 0xff) === SQLITE_FULL) return true;
      if ((sqlite & 0xff) === SQLITE_IOERR && path !== undefined) {
        const space = freeBytes(path);
        return space !== undefined && space.free < NEARLY_FULL_BYTES;
      }
    }
  }
  return false;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * The one disk-full error: `what` was being written (a layer, an unpacked file, the metadata database) at
 * `path`. An error that already is one passes unchanged (the innermost writer knows best).
 */
export function diskFull(what: string | undefined, path: string | undefined, cause?: unknown): HoistError {
  if (cause instanceof HoistError && cause.code === 'HOIST_DISK_FULL') return cause;
  const space = path === undefined ? undefined : freeBytes(path);
  const where =
    path === undefined
      ? ''
      : ` to ${path}${space ? ` (${mib(space.free)} free of ${mib(space.total)} on that file system)` : ''}`;
  const detail = (cause as { message?: unknown })?.message;
  return new HoistError(
    'HOIST_DISK_FULL',
    `disk full: no space left writing${what === undefined ? '' : ` ${what}`}${where}${typeof detail === 'string' ? `: ${detail}` : ''}`,
    {
      cause,
      hint: 'free space on that file system (`hoist system prune` reclaims interrupted pulls and unused content), then run the same command again: what was written completely is kept',
    },
  );
}
