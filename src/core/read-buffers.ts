// Prompt release of short-lived buffers: socket reads during downloads, layer chunks sent to the applier's
// workers. Node allocates a fresh buffer (up to 64 KiB) for every socket read; a download copies each into
// its ingest batch and drops it, but V8 frees such buffers only in a garbage collection, and a download
// allocates almost no JS objects, so none comes until the buffers reach V8's external-memory limit
// (64 MiB), then a full mark-compact of the whole heap. Measured on the 160 MB bench pull: ~100 MiB of
// dead buffers at the peak and a dozen mark-compacts (~180 ms of GC). A young-generation collection (a
// scavenge, ~1 ms: the heap's old objects are not visited) every 4 MiB frees them while they are few.
import { v8, vm } from './builtins.ts';

/** Downloaded bytes between two scavenges: bounds the dead read buffers to about this much. */
export const SCAVENGE_EVERY_BYTES = 4 << 20;

type GcFunction = (options: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => void;

let scavenge: (() => void) | undefined;
let pending = 0;

/**
 * V8's `gc` function without starting node with --expose-gc: the flag installs it into contexts created
 * while it is set, so it is set for one new context and cleared again (the flag is not otherwise used).
 * undefined when the runtime does not offer it (then collection is left to V8's own heuristics).
 */
function loadScavenge(): () => void {
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (exposed) return () => exposed({ type: 'minor', execution: 'sync' });
  try {
    v8().setFlagsFromString('--expose-gc');
    const gc = vm().runInNewContext('gc') as GcFunction | undefined;
    return gc ? () => gc({ type: 'minor', execution: 'sync' }) : () => undefined;
  } catch {
    return () => undefined;
  } finally {
    v8().setFlagsFromString('--no-expose-gc');
  }
}

/** Count bytes of socket reads that are now garbage; collect the young generation every few MiB. */
export function dropReadBuffers(bytes: number): void {
  pending += bytes;
  if (pending < SCAVENGE_EVERY_BYTES) return;
  pending = 0;
  scavenge ??= loadScavenge();
  scavenge();
}
