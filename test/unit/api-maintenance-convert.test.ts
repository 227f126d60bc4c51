// The maintenance reports cross the wire as typed messages: whatever the store reports comes back equal
// after to-proto, the binary encoding, and from-proto (dates as Dates, absent optionals absent).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import {
  ConsistencyReportSchema,
  GcStatsSchema,
  PrunedLeaseSchema,
  StoreUsageSchema,
} from '../../src/api/gen/hoist/services/maintenance/v1/maintenance_pb.ts';
import type { ConsistencyReport, StoreUsage } from '../../src/api/maintenance.ts';
import {
  consistencyFromProto,
  consistencyToProto,
  gcStatsFromProto,
  gcStatsToProto,
  prunedLeaseFromProto,
  prunedLeaseToProto,
  storeUsageFromProto,
  storeUsageToProto,
} from '../../src/api/maintenance-convert.ts';

const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const text = fc.string({ maxLength: 12 });
const labels = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), text, { maxKeys: 3 });
// Millisecond dates: the library's own Dates (a nanosecond PreciseDate compares by its milliseconds too).
const date = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms));
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const snapshotter = fc.record({
  snapshotter: fc.constantFrom('overlayfs', 'native'),
  count,
  active: count,
  bytes: count,
  inodes: count,
  imageBytes: count,
  reclaimableBytes: count,
});

const usage: fc.Arbitrary<StoreUsage> = fc.record({
  blobs: fc.record({ records: count, recordBytes: count, files: count, fileBytes: count }),
  imageBytes: count,
  sharedBytes: count,
  reclaimableBytes: count,
  ingests: fc.record({
    count,
    bytes: count,
    items: fc.array(
      fc.record({
        namespace: text,
        ref: text,
        offset: count,
        total: count,
        updatedAt: optional(date),
        leases: fc.array(text, { maxLength: 2 }),
        owner: optional(text),
        ownerAlive: optional(fc.boolean()),
        shared: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
  }),
  leases: fc.array(
    fc.record({
      namespace: text,
      id: text,
      createdAt: date,
      labels,
      resources: count,
      bytes: count,
      owner: optional(text),
      ownerAlive: optional(fc.boolean()),
      expires: optional(date),
      alive: fc.boolean(),
      state: fc.constantFrom('running', 'orphaned', 'expired', 'held' as const),
    }),
    { maxLength: 3 },
  ),
  snapshots: fc
    .tuple(snapshotter, fc.array(snapshotter, { maxLength: 2 }))
    .map(([{ snapshotter: _, ...t }, by]) => ({
      ...t,
      bySnapshotter: by,
    })),
});

const finding = fc.record(
  {
    kind: fc.constantFrom('blob-missing', 'image-content-fetchable' as const),
    namespace: text,
    subject: text,
    detail: text,
  },
  { requiredKeys: ['kind', 'subject', 'detail'] },
);

const report: fc.Arbitrary<ConsistencyReport> = fc.record({
  ok: fc.boolean(),
  checked: fc.record({
    images: count,
    contentRecords: count,
    blobFiles: count,
    snapshots: count,
    ingests: count,
    verifiedBlobs: count,
  }),
  problems: fc.array(finding, { maxLength: 3 }),
  notes: fc.array(finding, { maxLength: 3 }),
});

/** Dates compared by time, undefined optionals dropped: what a reader of the report can tell apart. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (x instanceof Date ? x.getTime() : x)));

test('a store usage report survives the wire', () => {
  fc.assert(
    fc.property(usage, (u) => {
      const wire = toBinary(StoreUsageSchema, create(StoreUsageSchema, storeUsageToProto(u)));
      const back = storeUsageFromProto(fromBinary(StoreUsageSchema, wire));
      assert.deepEqual(plain(back), plain(u));
      for (const l of back.leases) assert.ok(l.createdAt instanceof Date);
    }),
    { numRuns: 100 },
  );
});

test('a consistency report, a pruned lease and GC figures survive the wire', () => {
  fc.assert(
    fc.property(report, (r) => {
      const wire = toBinary(ConsistencyReportSchema, create(ConsistencyReportSchema, consistencyToProto(r)));
      assert.deepEqual(plain(consistencyFromProto(fromBinary(ConsistencyReportSchema, wire))), plain(r));
    }),
    { numRuns: 100 },
  );
  const lease = { namespace: 'k8s.io', id: 'l1', labels: { a: 'b' }, reason: 'owner-dead' as const };
  const lw = toBinary(PrunedLeaseSchema, create(PrunedLeaseSchema, prunedLeaseToProto(lease)));
  assert.deepEqual(prunedLeaseFromProto(fromBinary(PrunedLeaseSchema, lw)), lease);
  const stats = {
    removedContent: 3,
    removedBytes: 2 ** 40,
    removedIngests: 1,
    removedIngestBytes: 7,
    removedLeases: 2,
    removedSnapshots: 4,
    removedSnapshotBytes: 9,
    durationMs: 1.5,
  };
  const gw = toBinary(GcStatsSchema, create(GcStatsSchema, gcStatsToProto(stats)));
  assert.deepEqual(gcStatsFromProto(fromBinary(GcStatsSchema, gw)), stats);
});
