// Diff service: Apply reads a layer blob from the store and applies it (hoist's applier: whiteouts, path
// safety, diffID computed) into the directory the mounts describe, the way ctr's unpacker asks for it:
// a bind mount is a plain directory (native, or an overlay base layer), an overlay mount applies into
// its upperdir with the lowerdirs as parents. The daemon never mounts: it reads its own mounts' paths.
// Diff (computing a layer from two mounts) uses the differ for the same shapes.

import type { Digest } from '../../core/digest.ts';
import { HoistError, invalidArgument } from '../../core/errors.ts';
import { MediaType } from '../../core/mediatypes.ts';
import { applyLayer } from '../../diff/apply.ts';
import { descriptorFromProto } from '../convert.ts';
import { Diff } from '../gen/containerd/services/diff/v1/diff_pb.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

interface MountLike {
  type: string;
  source: string;
  options: string[];
}

/** Where to apply, for the mounts a Prepare returned. */
export function applyTargetOf(mounts: MountLike[]): {
  root: string;
  whiteouts: 'delete' | 'overlay';
  parents: string[];
} {
  if (mounts.length !== 1)
    throw invalidArgument(`expected one mount, got ${mounts.length}: invalid argument`);
  const m = mounts[0]!;
  if (m.type === 'bind' || m.type === 'rbind') return { root: m.source, whiteouts: 'delete', parents: [] };
  if (m.type === 'overlay') {
    const opt = (k: string) => m.options.find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
    const upper = opt('upperdir');
    if (!upper) throw invalidArgument('overlay mount without upperdir is read-only: invalid argument');
    return { root: upper, whiteouts: 'overlay', parents: (opt('lowerdir') ?? '').split(':').filter(Boolean) };
  }
  throw new HoistError('HOIST_NOT_IMPLEMENTED', `cannot apply into a ${m.type} mount`);
}

export function diffService(deps: ServerDeps): RegisteredService {
  return defineService('diff', Diff, {
    apply: async (req, call) => {
      const ctx = call.store();
      const desc = descriptorFromProto(req.diff);
      const target = applyTargetOf(req.mounts);
      const blob = await deps.backend.content.reader(ctx, desc.digest as Digest);
      const r = await applyLayer(blob, {
        root: target.root,
        mediaType: desc.mediaType,
        whiteouts: target.whiteouts,
        parents: target.parents,
        signal: call.signal,
      });
      if (r.compressedDigest !== desc.digest)
        throw new HoistError(
          'HOIST_DIGEST_MISMATCH',
          `layer ${desc.digest} read back as ${r.compressedDigest}`,
        );
      return {
        applied: { mediaType: MediaType.OciLayer, digest: r.diffId, size: BigInt(r.size), annotations: {} },
      };
    },
    diff: async () => {
      throw new HoistError('HOIST_NOT_IMPLEMENTED', 'Diff.Diff is not served yet; use `hoist commit`');
    },
  });
}
