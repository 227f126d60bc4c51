// The maintenance reports (src/api/maintenance.ts) to and from hoist.services.maintenance.v1, one pair
// per type. Counts and byte sizes travel as int64; dates as Timestamps; what the library leaves
// undefined (an ingest's owner, a lease's expiry) is an absent optional field.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { dateFromTimestamp, fromInt64, int64, timestamp } from './convert.ts';
import type * as pb from './gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import type {
  ConsistencyFinding,
  ConsistencyReport,
  IngestUsage,
  LeaseState,
  LeaseUsage,
  PrunedLease,
  SnapshotterUsage,
  StoreUsage,
} from './maintenance.ts';
import type { GcStats } from './metadata.ts';

/** Every key of `keys` (numbers in `o`) as int64. */
function toInt64s<K extends string>(o: Record<K, number>, keys: readonly K[]): Record<K, bigint> {
  return Object.fromEntries(keys.map((k) => [k, int64(o[k])])) as Record<K, bigint>;
}

/** Every key of `keys` (int64 in `m`) as a number; `what` names the message in an out-of-range error. */
function fromInt64s<K extends string>(
  m: Record<K, bigint>,
  keys: readonly K[],
  what: string,
): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, fromInt64(m[k], `${what}.${k}`)])) as Record<K, number>;
}

const GC_KEYS = [
  'removedContent',
  'removedBytes',
  'removedIngests',
  'removedIngestBytes',
  'removedLeases',
  'removedSnapshots',
  'removedSnapshotBytes',
] as const;

export const gcStatsToProto = (s: GcStats): MessageInitShape<typeof pb.GcStatsSchema> => ({
  ...toInt64s(s, GC_KEYS),
  durationMs: s.durationMs,
});
export const gcStatsFromProto = (m: pb.GcStats): GcStats => ({
  ...fromInt64s(m, GC_KEYS, 'GcStats'),
  durationMs: m.durationMs,
});

export const prunedLeaseToProto = (l: PrunedLease): MessageInitShape<typeof pb.PrunedLeaseSchema> => ({
  ...l,
  labels: { ...l.labels },
});

export function prunedLeaseFromProto(m: pb.PrunedLease): PrunedLease {
  return {
    namespace: m.namespace,
    id: m.id,
    labels: { ...m.labels },
    reason: m.reason === 'owner-dead' ? 'owner-dead' : 'expired',
  };
}

const SNAPSHOTTER_KEYS = ['count', 'active', 'bytes', 'inodes', 'imageBytes', 'reclaimableBytes'] as const;

function snapshotterToProto(s: Omit<SnapshotterUsage, 'snapshotter'> & { snapshotter?: string }) {
  return { snapshotter: s.snapshotter ?? '', ...toInt64s(s, SNAPSHOTTER_KEYS) };
}

function snapshotterFromProto(m: pb.SnapshotterUsage | undefined): SnapshotterUsage {
  if (!m)
    return { snapshotter: '', count: 0, active: 0, bytes: 0, inodes: 0, imageBytes: 0, reclaimableBytes: 0 };
  return { snapshotter: m.snapshotter, ...fromInt64s(m, SNAPSHOTTER_KEYS, 'SnapshotterUsage') };
}

function ingestToProto(i: IngestUsage): MessageInitShape<typeof pb.IngestUsageSchema> {
  return {
    namespace: i.namespace,
    ref: i.ref,
    offset: int64(i.offset),
    total: int64(i.total),
    ...(i.updatedAt ? { updatedAt: timestamp(i.updatedAt) } : {}),
    leases: [...i.leases],
    ...(i.owner === undefined ? {} : { owner: i.owner }),
    ...(i.ownerAlive === undefined ? {} : { ownerAlive: i.ownerAlive }),
    shared: i.shared,
  };
}

function ingestFromProto(m: pb.IngestUsage): IngestUsage {
  return {
    namespace: m.namespace,
    ref: m.ref,
    offset: fromInt64(m.offset, 'IngestUsage.offset'),
    total: fromInt64(m.total, 'IngestUsage.total'),
    updatedAt: m.updatedAt ? dateFromTimestamp(m.updatedAt) : undefined,
    leases: [...m.leases],
    owner: m.owner,
    ownerAlive: m.ownerAlive,
    shared: m.shared,
  };
}

function leaseToProto(l: LeaseUsage): MessageInitShape<typeof pb.LeaseUsageSchema> {
  return {
    namespace: l.namespace,
    id: l.id,
    createdAt: timestamp(l.createdAt),
    labels: { ...l.labels },
    resources: int64(l.resources),
    bytes: int64(l.bytes),
    ...(l.owner === undefined ? {} : { owner: l.owner }),
    ...(l.ownerAlive === undefined ? {} : { ownerAlive: l.ownerAlive }),
    ...(l.expires ? { expires: timestamp(l.expires) } : {}),
    alive: l.alive,
    state: l.state,
  };
}

const LEASE_STATES: readonly string[] = ['running', 'orphaned', 'expired', 'held'] satisfies LeaseState[];

function leaseFromProto(m: pb.LeaseUsage): LeaseUsage {
  return {
    namespace: m.namespace,
    id: m.id,
    createdAt: dateFromTimestamp(m.createdAt),
    labels: { ...m.labels },
    resources: fromInt64(m.resources, 'LeaseUsage.resources'),
    bytes: fromInt64(m.bytes, 'LeaseUsage.bytes'),
    owner: m.owner,
    ownerAlive: m.ownerAlive,
    expires: m.expires ? dateFromTimestamp(m.expires) : undefined,
    alive: m.alive,
    // A state this client does not know (a newer daemon) reads as held: kept, neither live nor reclaimable.
    state: (LEASE_STATES.includes(m.state) ? m.state : 'held') as LeaseState,
  };
}

export function storeUsageToProto(u: StoreUsage): MessageInitShape<typeof pb.StoreUsageSchema> {
  const { bySnapshotter, ...total } = u.snapshots;
  return {
    blobs: toInt64s(u.blobs, ['records', 'recordBytes', 'files', 'fileBytes']),
    imageBytes: int64(u.imageBytes),
    sharedBytes: int64(u.sharedBytes),
    reclaimableBytes: int64(u.reclaimableBytes),
    ingests: {
      count: int64(u.ingests.count),
      bytes: int64(u.ingests.bytes),
      items: u.ingests.items.map(ingestToProto),
    },
    leases: u.leases.map(leaseToProto),
    snapshots: { total: snapshotterToProto(total), bySnapshotter: bySnapshotter.map(snapshotterToProto) },
  };
}

export function storeUsageFromProto(m: pb.StoreUsage): StoreUsage {
  const { snapshotter: _, ...total } = snapshotterFromProto(m.snapshots?.total);
  const blobs = m.blobs;
  return {
    blobs: blobs
      ? fromInt64s(blobs, ['records', 'recordBytes', 'files', 'fileBytes'], 'BlobUsage')
      : { records: 0, recordBytes: 0, files: 0, fileBytes: 0 },
    imageBytes: fromInt64(m.imageBytes, 'StoreUsage.imageBytes'),
    sharedBytes: fromInt64(m.sharedBytes, 'StoreUsage.sharedBytes'),
    reclaimableBytes: fromInt64(m.reclaimableBytes, 'StoreUsage.reclaimableBytes'),
    ingests: {
      count: fromInt64(m.ingests?.count ?? 0n, 'IngestsUsage.count'),
      bytes: fromInt64(m.ingests?.bytes ?? 0n, 'IngestsUsage.bytes'),
      items: (m.ingests?.items ?? []).map(ingestFromProto),
    },
    leases: m.leases.map(leaseFromProto),
    snapshots: { ...total, bySnapshotter: (m.snapshots?.bySnapshotter ?? []).map(snapshotterFromProto) },
  };
}

const CHECKED_KEYS = [
  'images',
  'contentRecords',
  'blobFiles',
  'snapshots',
  'ingests',
  'verifiedBlobs',
] as const;

function findingToProto(f: ConsistencyFinding): MessageInitShape<typeof pb.ConsistencyFindingSchema> {
  return {
    kind: f.kind,
    subject: f.subject,
    detail: f.detail,
    ...(f.namespace === undefined ? {} : { namespace: f.namespace }),
  };
}

function findingFromProto(m: pb.ConsistencyFinding): ConsistencyFinding {
  return {
    // The kind is a stable identifier the daemon chose; a newer daemon's kinds pass through as they are.
    kind: m.kind as ConsistencyFinding['kind'],
    ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
    subject: m.subject,
    detail: m.detail,
  };
}

export function consistencyToProto(
  r: ConsistencyReport,
): MessageInitShape<typeof pb.ConsistencyReportSchema> {
  return {
    ok: r.ok,
    checked: toInt64s(r.checked, CHECKED_KEYS),
    problems: r.problems.map(findingToProto),
    notes: r.notes.map(findingToProto),
  };
}

export function consistencyFromProto(m: pb.ConsistencyReport): ConsistencyReport {
  return {
    ok: m.ok,
    checked: m.checked
      ? fromInt64s(m.checked, CHECKED_KEYS, 'ConsistencyChecked')
      : { images: 0, contentRecords: 0, blobFiles: 0, snapshots: 0, ingests: 0, verifiedBlobs: 0 },
    problems: m.problems.map(findingFromProto),
    notes: m.notes.map(findingFromProto),
  };
}
