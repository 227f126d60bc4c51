// The server edge of the error catalogue: any thrown value becomes a gRPC status with the code from
// src/core/errors.ts and the HoistError's message, which already has containerd's shape
// (`image "x": not found`), because Go clients print it and errdefs.FromGRPC keys on the code.
import type { StatusObject } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { GrpcCode, type HoistError, toHoistError } from '../core/errors.ts';

export interface RpcStatus {
  code: GrpcCode;
  details: string;
}

export function toStatus(err: unknown): RpcStatus {
  const e: HoistError = toHoistError(err);
  return { code: e.grpcCode, details: e.message };
}

/** The object grpc-js takes for a failed call (callback error or stream 'error'). */
export function toServiceError(err: unknown): Partial<StatusObject> {
  const { code, details } = toStatus(err);
  return { code, details, metadata: new Metadata() };
}

/** Codes that mean the server, not the request, is at fault: worth an error line in the log. */
export function isServerFault(code: GrpcCode): boolean {
  return code === GrpcCode.INTERNAL || code === GrpcCode.UNKNOWN || code === GrpcCode.DATA_LOSS;
}
