// One error catalogue for all of hoist. Every error has a stable string code (for scripts and tests),
// a gRPC status code (so the server can answer as containerd does) and a message that says what
// happened and, where we can, what the user can do about it.
//
// Messages follow containerd's shapes where a real client depends on them (e.g. `content digest X: not
// found`), because ctr and the CRI print them verbatim.

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
    if (sys.code === 'ENOSPC')
      return new HoistError('HOIST_UNAVAILABLE', err.message, {
        cause: err,
        hint: 'free disk space (hoist system prune) and try again',
      });
    if (err.name === 'AbortError')
      return new HoistError('HOIST_CANCELLED', 'operation cancelled', { cause: err });
    return new HoistError('HOIST_INTERNAL', err.message, { cause: err });
  }
  return new HoistError('HOIST_INTERNAL', String(err));
}
