// How many layers may apply at once in this process (config `max_concurrent_unpacks`). Its own small
// module so that setting it from the CLI does not load the applier.
import { availableParallelism } from 'node:os';

/** One layer per core, up to 4, until the config says otherwise (the config key's default too). */
let limit = Math.min(4, Math.max(1, availableParallelism()));

export function setUnpackConcurrency(n: number): void {
  limit = Math.max(1, Math.floor(n));
}

export function unpackConcurrency(): number {
  return limit;
}
