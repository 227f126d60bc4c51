// A Snapshotter over containerd's Snapshots service (containerd's snapshots proxy), and Diff.Apply: with
// them, unpack through a daemon goes the way ctr's does — Stat, Prepare, Apply on the daemon, Commit.
import {
  dateFromTimestamp,
  descriptorFromProto,
  descriptorToProto,
  mountsFromProto,
  mountsToProto,
} from '../../api/convert.ts';
import type { CompareOptions } from '../../api/diff.ts';
import { Diff } from '../../api/gen/containerd/services/diff/v1/diff_pb.ts';
import { type Info, Kind, Snapshots } from '../../api/gen/containerd/services/snapshots/v1/snapshots_pb.ts';
import type {
  CleanupResult,
  Mount,
  SnapshotInfo,
  SnapshotOptions,
  Snapshotter,
  SnapshotUsage,
} from '../../api/snapshots.ts';
import type { Context } from '../../core/context.ts';
import type { Descriptor } from '../../core/descriptor.ts';
import type { GrpcChannel } from './channel.ts';

const KIND: Record<number, SnapshotInfo['kind']> = {
  [Kind.VIEW]: 'view',
  [Kind.ACTIVE]: 'active',
  [Kind.COMMITTED]: 'committed',
};

function infoFromProto(i: Info | undefined): SnapshotInfo {
  const out: SnapshotInfo = {
    kind: KIND[i?.kind ?? 0] ?? 'active',
    name: i?.name ?? '',
    labels: { ...(i?.labels ?? {}) },
    created: dateFromTimestamp(i?.createdAt),
    updated: dateFromTimestamp(i?.updatedAt),
  };
  if (i?.parent) out.parent = i.parent;
  return out;
}

export class GrpcSnapshotter implements Snapshotter {
  readonly name: 'native' | 'overlayfs';
  /** containerd 1.6's Snapshots API has no rebase (commit with a parent). */
  readonly rebase = false;
  readonly #ch: GrpcChannel;

  constructor(ch: GrpcChannel, name: 'native' | 'overlayfs') {
    this.#ch = ch;
    this.name = name;
  }

  async prepare(ctx: Context, key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    const r = await this.#ch.unary(Snapshots, Snapshots.method.prepare, ctx, {
      snapshotter: this.name,
      key,
      parent: parent ?? '',
      labels: opts.labels ?? {},
    });
    return mountsFromProto(r.mounts);
  }

  async view(ctx: Context, key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> {
    const r = await this.#ch.unary(Snapshots, Snapshots.method.view, ctx, {
      snapshotter: this.name,
      key,
      parent: parent ?? '',
      labels: opts.labels ?? {},
    });
    return mountsFromProto(r.mounts);
  }

  async mounts(ctx: Context, key: string): Promise<Mount[]> {
    return mountsFromProto(
      (await this.#ch.unary(Snapshots, Snapshots.method.mounts, ctx, { snapshotter: this.name, key })).mounts,
    );
  }

  async commit(ctx: Context, name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    await this.#ch.unary(Snapshots, Snapshots.method.commit, ctx, {
      snapshotter: this.name,
      name,
      key,
      labels: opts.labels ?? {},
    });
  }

  async remove(ctx: Context, key: string): Promise<void> {
    await this.#ch.unary(Snapshots, Snapshots.method.remove, ctx, { snapshotter: this.name, key });
  }

  async stat(ctx: Context, key: string): Promise<SnapshotInfo> {
    return infoFromProto(
      (await this.#ch.unary(Snapshots, Snapshots.method.stat, ctx, { snapshotter: this.name, key })).info,
    );
  }

  async update(
    ctx: Context,
    info: Pick<SnapshotInfo, 'name' | 'labels'>,
    fieldpaths?: string[],
  ): Promise<SnapshotInfo> {
    const r = await this.#ch.unary(Snapshots, Snapshots.method.update, ctx, {
      snapshotter: this.name,
      info: { name: info.name, labels: info.labels },
      ...(fieldpaths && fieldpaths.length > 0 ? { updateMask: { paths: fieldpaths } } : {}),
    });
    return infoFromProto(r.info);
  }

  async list(ctx: Context, filters: string[] = []): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for await (const r of this.#ch.stream(Snapshots, Snapshots.method.list, ctx, {
      snapshotter: this.name,
      filters,
    })) {
      for (const i of r.info) out.push(infoFromProto(i));
    }
    return out;
  }

  async usage(ctx: Context, key: string): Promise<SnapshotUsage> {
    const r = await this.#ch.unary(Snapshots, Snapshots.method.usage, ctx, { snapshotter: this.name, key });
    return { size: Number(r.size), inodes: Number(r.inodes) };
  }

  async cleanup(ctx: Context): Promise<CleanupResult> {
    await this.#ch.unary(Snapshots, Snapshots.method.cleanup, ctx, { snapshotter: this.name });
    return { removed: 0 };
  }
}

/** Diff.Apply on the daemon: the layer's diffID as the daemon computed it while applying. */
export async function remoteApply(
  ch: GrpcChannel,
  ctx: Context,
  layer: Descriptor,
  mounts: Mount[],
): Promise<Descriptor> {
  const r = await ch.unary(Diff, Diff.method.apply, ctx, {
    diff: descriptorToProto(layer),
    mounts: mountsToProto(mounts),
  });
  return descriptorFromProto(r.applied);
}

/** Diff.Diff on the daemon: the layer between two mounts, compressed and stored there. */
export async function remoteDiff(
  ch: GrpcChannel,
  ctx: Context,
  left: Mount[],
  right: Mount[],
  opts: CompareOptions,
): Promise<Descriptor> {
  const r = await ch.unary(Diff, Diff.method.diff, ctx, {
    left: mountsToProto(left),
    right: mountsToProto(right),
    mediaType: opts.mediaType,
    ref: opts.ref ?? '',
    labels: opts.labels ?? {},
  });
  return descriptorFromProto(r.diff);
}
