// What a contract suite runs on: a backend, opened fresh for the suite, and how to close it. The shared
// helpers of the suites live here too.
import assert from 'node:assert/strict';
import type { Backend } from '../../src/api/backend.ts';
import { type ErrorCode, isHoistError } from '../../src/core/errors.ts';

export interface ContractBackend {
  backend: Backend;
  close(): Promise<void>;
}

export type OpenBackend = () => Promise<ContractBackend>;

/** `p` rejects with a HoistError of one of `codes`. */
export async function rejectsWith(p: Promise<unknown>, ...codes: ErrorCode[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(
      codes.some((code) => isHoistError(err, code)),
      `expected ${codes.join(' or ')}, got ${String(err)}`,
    );
    return true;
  });
}
