// Diff service: the wire adapter over the backend's diff port (src/diff/service.ts in `hoist serve`).
// Apply applies a layer blob from the store into the directory the mounts describe, as ctr's unpacker
// asks for it; Diff computes a layer between two mounts, compressed as asked and stored like any blob.

import { descriptorFromProto, mountsFromProto } from '../../api/convert.ts';
import { Diff } from '../../api/gen/containerd/services/diff/v1/diff_pb.ts';
import { MediaType } from '../../core/mediatypes.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

export function diffService(deps: ServerDeps): RegisteredService {
  return defineService('diff', Diff, {
    apply: async (req, call) => {
      const ctx = { ...call.store(), signal: call.signal };
      const applied = await deps.backend.diff.apply(
        ctx,
        descriptorFromProto(req.diff),
        mountsFromProto(req.mounts),
      );
      return {
        applied: {
          mediaType: applied.mediaType,
          digest: applied.digest,
          size: BigInt(applied.size),
          annotations: {},
        },
      };
    },
    diff: async (req, call) => {
      const ctx = { ...call.store(), signal: call.signal };
      const d = await deps.backend.diff.compare(ctx, mountsFromProto(req.left), mountsFromProto(req.right), {
        mediaType: req.mediaType || MediaType.OciLayerGzip,
        ...(req.ref ? { ref: req.ref } : {}),
        labels: { ...req.labels },
      });
      return { diff: { mediaType: d.mediaType, digest: d.digest, size: BigInt(d.size), annotations: {} } };
    },
  });
}
