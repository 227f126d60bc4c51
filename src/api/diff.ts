// The diff port: containerd's diff.Applier and diff.Comparer over mounts. Every backend implements it in
// full: the embedded store in process (src/diff/service.ts), a daemon over its Diff service (the gRPC
// client). Image operations (unpack, commit) go through it and never ask which backend they have.
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import type { Mount } from './snapshots.ts';

export interface ApplyOptions {
  /** Warnings the applier has for this layer (skipped devices without root, …); a daemon has none to give. */
  onWarning?: (message: string) => void;
}

export interface CompareOptions {
  /** The layer's media type: its compression (gzip, zstd or none). */
  mediaType: string;
  /** Ingest ref for the blob (default: a fresh one). */
  ref?: string;
  labels?: Record<string, string>;
}

export interface DiffService {
  /**
   * Apply `layer` (a blob in the content store) into the mounts of an active snapshot: a bind mount is a
   * plain directory, an overlay mount writes its upperdir with the lowerdirs as the layers below. Returns
   * the uncompressed layer's descriptor (its digest is the diffID).
   */
  apply(ctx: Context, layer: Descriptor, mounts: Mount[], opts?: ApplyOptions): Promise<Descriptor>;
  /**
   * The layer between `lower` (empty for a base layer) and `upper`, compressed as asked and stored in the
   * content store with its `containerd.io/uncompressed` label. Returns the blob's descriptor.
   */
  compare(ctx: Context, lower: Mount[], upper: Mount[], opts: CompareOptions): Promise<Descriptor>;
}
