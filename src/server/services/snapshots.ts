// Snapshots service: containerd's API over hoist's snapshotters (`overlayfs`, `native`), so ctr's
// client-side unpacker (Stat → Prepare → Diff.Apply → Commit) and `ctr snapshots …` work on the store.

import { mountsToProto, timestamp } from '../../api/convert.ts';
import {
  SnapshotCommitSchema,
  SnapshotPrepareSchema,
  SnapshotRemoveSchema,
} from '../../api/gen/containerd/events/snapshot_pb.ts';
import { Kind, Snapshots } from '../../api/gen/containerd/services/snapshots/v1/snapshots_pb.ts';
import type { SnapshotInfo, Snapshotter } from '../../api/snapshots.ts';
import type { Context } from '../../core/context.ts';
import { HoistError } from '../../core/errors.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const KIND = { view: Kind.VIEW, active: Kind.ACTIVE, committed: Kind.COMMITTED } as const;

export const toProtoInfo = (i: SnapshotInfo) => ({
  name: i.name,
  parent: i.parent ?? '',
  kind: KIND[i.kind],
  createdAt: timestamp(i.created),
  updatedAt: timestamp(i.updated),
  labels: { ...i.labels },
});

export function snapshotsService(deps: ServerDeps): RegisteredService {
  const pick = (name: string): Snapshotter => {
    const sn = deps.backend.snapshotters.get(name || 'overlayfs');
    if (!sn)
      throw new HoistError('HOIST_INVALID_ARGUMENT', `snapshotter not loaded: ${name}: invalid argument`);
    return sn;
  };
  const opts = (labels: Record<string, string>) => ({ labels: { ...labels } });
  const parent = (p: string) => (p === '' ? undefined : p);
  return defineService('snapshots', Snapshots, {
    prepare: async (req, call) => {
      const sn = pick(req.snapshotter);
      const ctx = call.store();
      const mounts = await sn.prepare(ctx, req.key, parent(req.parent), opts(req.labels));
      deps.events.publish(ctx.namespace, '/snapshot/prepare', SnapshotPrepareSchema, {
        key: req.key,
        parent: req.parent,
        snapshotter: sn.name,
      });
      return { mounts: mountsToProto(mounts) };
    },
    view: async (req, call) => ({
      mounts: mountsToProto(
        await pick(req.snapshotter).view(call.store(), req.key, parent(req.parent), opts(req.labels)),
      ),
    }),
    mounts: async (req, call) => ({
      mounts: mountsToProto(await pick(req.snapshotter).mounts(call.store(), req.key)),
    }),
    commit: async (req, call) => {
      const sn = pick(req.snapshotter);
      const ctx = call.store();
      await sn.commit(ctx, req.name, req.key, opts(req.labels));
      deps.events.publish(ctx.namespace, '/snapshot/commit', SnapshotCommitSchema, {
        key: req.key,
        name: req.name,
        snapshotter: sn.name,
      });
      return {};
    },
    remove: async (req, call) => {
      const sn = pick(req.snapshotter);
      const ctx = call.store();
      await sn.remove(ctx, req.key);
      deps.events.publish(ctx.namespace, '/snapshot/remove', SnapshotRemoveSchema, {
        key: req.key,
        snapshotter: sn.name,
      });
      deps.gc.schedule();
      return {};
    },
    stat: async (req, call) => ({
      info: toProtoInfo(await pick(req.snapshotter).stat(call.store(), req.key)),
    }),
    update: async (req, call) => {
      const ctx: Context = call.store();
      const info = await pick(req.snapshotter).update(
        ctx,
        { name: req.info?.name ?? '', labels: { ...(req.info?.labels ?? {}) } },
        req.updateMask?.paths,
      );
      return { info: toProtoInfo(info) };
    },
    list: async (req, call, send) => {
      const all = await pick(req.snapshotter).list(call.store(), req.filters);
      for (let i = 0; i < all.length; i += 100) await send({ info: all.slice(i, i + 100).map(toProtoInfo) });
    },
    usage: async (req, call) => {
      const u = await pick(req.snapshotter).usage(call.store(), req.key);
      return { size: BigInt(u.size), inodes: BigInt(u.inodes) };
    },
    cleanup: async (req, call) => {
      await pick(req.snapshotter).cleanup(call.store());
      return {};
    },
  });
}
