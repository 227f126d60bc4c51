// The public library: `import { Hoist } from 'hoist'`. docs/api.md is the guide.
export type { LoadResult } from './archive/load.ts';
export type { SaveResult } from './archive/save.ts';
export type { Context } from './core/context.ts';
export type { Descriptor } from './core/descriptor.ts';
export type { Digest } from './core/digest.ts';
export { type ErrorCode, ErrorCodes, HoistError, isHoistError } from './core/errors.ts';
export {
  Hoist,
  type LoadOptions,
  type OpenOptions,
  type PullOptions,
  type RegistryOptions,
  type SaveOptions,
} from './hoist.ts';
export type { BlobProgress, BlobStatus, ProgressFn } from './images/fetch-blob.ts';
export type { ImageRow } from './images/list.ts';
export type { PullResult } from './images/pull.ts';
export type { RemoveResult } from './images/remove.ts';
