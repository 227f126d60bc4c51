// The OCI Distribution spec's error answers: a status and `{"errors":[{"code","message","detail"}]}`.
// Clients (containerd, skopeo) read the code, not the text, so each failure maps to one spec code.
import type { ServerResponse } from 'node:http';

export type DistributionCode =
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'DIGEST_INVALID'
  | 'UNSUPPORTED'
  | 'UNKNOWN';

const STATUS: Record<DistributionCode, number> = {
  BLOB_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  NAME_UNKNOWN: 404,
  NAME_INVALID: 400,
  DIGEST_INVALID: 400,
  // The spec's code for an operation the registry does not do; 405 tells a pusher this one is read-only.
  UNSUPPORTED: 405,
  UNKNOWN: 500,
};

export class DistributionError extends Error {
  readonly code: DistributionCode;
  readonly detail: unknown;
  constructor(code: DistributionCode, message: string, detail?: unknown) {
    super(message);
    this.name = 'DistributionError';
    this.code = code;
    this.detail = detail;
  }
  get status(): number {
    return STATUS[this.code];
  }
}

export function sendError(res: ServerResponse, method: string | undefined, err: DistributionError): void {
  const body = JSON.stringify({
    errors: [
      { code: err.code, message: err.message, ...(err.detail === undefined ? {} : { detail: err.detail }) },
    ],
  });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
  };
  if (err.status === 405) headers.allow = 'GET, HEAD';
  res.writeHead(err.status, headers);
  res.end(method === 'HEAD' ? undefined : body);
}
