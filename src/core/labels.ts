import { invalidArgument } from './errors.ts';

// Label keys with meaning to garbage collection and to other tools. The names are containerd's, so a
// store hoist writes means the same thing to ctr and the CRI.

export const Labels = {
  /** Prefix of references from one object to content: `containerd.io/gc.ref.content[.<suffix>]`. */
  gcRefContent: 'containerd.io/gc.ref.content',
  /** Prefix of references to snapshots: `containerd.io/gc.ref.snapshot.<snapshotter>`. */
  gcRefSnapshot: 'containerd.io/gc.ref.snapshot.',
  /** Any value: the object is a GC root. */
  gcRoot: 'containerd.io/gc.root',
  /** RFC 3339 time after which a lease is no longer a root. */
  gcExpire: 'containerd.io/gc.expire',
  /** Lease resources are kept but their label references are not followed. */
  gcFlat: 'containerd.io/gc.flat',
  /** `containerd.io/distribution.source.<host>=<repo>[,<repo>…]` where content came from. */
  distributionSource: 'containerd.io/distribution.source.',
  /** diffID of a layer blob, set after unpack. */
  uncompressed: 'containerd.io/uncompressed',
  /** CRI markers. */
  criManaged: 'io.cri-containerd.image',
  criPinned: 'io.cri-containerd.pinned',
  /** hoist: which process holds a lease (`<boot-id>/<pid>/<start-ticks>`), so prune can tell live from dead. */
  leaseOwner: 'hoist.io/owner',
  /** hoist: what a lease is for (`pull`, `convert`, …) and the reference, for `hoist lease ls`. */
  leasePurpose: 'hoist.io/purpose',
  leaseRef: 'hoist.io/ref',
  /**
   * hoist: on an image record, `http` when the pull talked plain HTTP to the registry its name is at
   * (--plain-http or `registry.plain_http`), so a later re-fetch of its discarded layers does too.
   */
  registryScheme: 'hoist.io/registry.scheme',
  /**
   * hoist: on a committed layer snapshot, the bytes of the layer's uncompressed tar (decimal). The
   * snapshot, not the blob, carries it: a discarded layer blob has no record left to label.
   */
  snapshotTarSize: 'hoist.io/uncompressed-size',
  /**
   * hoist: on an image config blob, the sum of its layers' uncompressed tar bytes once unpacked: the
   * SIZE `images` shows, as docker's (kept on the config, which is never discarded, so listing reads
   * one record per image).
   */
  unpackedSize: 'hoist.io/unpacked-size',
} as const;

/** Is this label a reference that GC follows to content? (suffix must start with `.` or `/`) */
export function isContentRefLabel(key: string): boolean {
  if (!key.startsWith(Labels.gcRefContent)) return false;
  const rest = key.slice(Labels.gcRefContent.length);
  return rest === '' || rest.startsWith('.') || rest.startsWith('/');
}

/** containerd's label limit: key plus value at most 4096 bytes. */
export function validateLabels(labels: Record<string, string>, what: string): void {
  for (const [k, v] of Object.entries(labels)) {
    const len = Buffer.byteLength(k) + Buffer.byteLength(v);
    if (len > 4096) {
      throw invalidArgument(
        `${what}: label key and value length (${len} bytes) greater than maximum size (4096 bytes), key: ${k.slice(0, 64)}`,
      );
    }
  }
}
