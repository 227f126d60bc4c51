// Nanosecond times (src/core/time.ts): the clock agrees with Date.now(), PreciseDate keeps its
// nanoseconds through the wire's Timestamp and an ingest's RFC 3339 files, and migration 3 turns a
// database's millisecond stamps into nanoseconds.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { dateFromTimestamp, timestamp } from '../../src/api/convert.ts';
import type { Digest } from '../../src/core/digest.ts';
import {
  dateFromNs,
  epochNsOf,
  formatRfc3339Nano,
  nowNs,
  PreciseDate,
  parseRfc3339Nano,
} from '../../src/core/time.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { MetadataDb } from '../../src/metadata/db.ts';
import { MIGRATIONS } from '../../src/metadata/migrations.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('nowNs is the wall clock below the millisecond', () => {
  let subMs = 0;
  for (let i = 0; i < 1000; i++) {
    const before = Date.now();
    const ns = nowNs();
    const after = Date.now();
    const ms = Number(ns / 1_000_000n);
    // A millisecond of slack either side: the two clocks are read one after the other.
    assert.ok(ms >= before - 1 && ms <= after + 1, `${ms} outside [${before}, ${after}]`);
    if (ns % 1_000_000n !== 0n) subMs++;
  }
  assert.ok(subMs > 900, `only ${subMs} of 1000 readings had sub-millisecond digits`);
});

test('a PreciseDate is a Date that keeps its nanoseconds, on the wire and in RFC 3339', () => {
  const ns = 1_700_000_000_123_456_789n;
  const d = dateFromNs(ns);
  assert.ok(d instanceof Date);
  assert.equal(d.getTime(), 1_700_000_000_123);
  assert.equal(epochNsOf(d), ns);
  assert.equal(epochNsOf(new Date(5)), 5_000_000n);

  const ts = timestamp(d);
  assert.equal(ts.seconds, 1_700_000_000n);
  assert.equal(ts.nanos, 123_456_789);
  assert.equal(dateFromTimestamp(ts).epochNs, ns);
  assert.equal(dateFromTimestamp(undefined).epochNs, 0n);
  // Before the epoch, nanos stay positive and seconds round down.
  const early = timestamp(new PreciseDate(-1n));
  assert.deepEqual([early.seconds, early.nanos], [-1n, 999_999_999]);

  assert.equal(formatRfc3339Nano(ns), '2023-11-14T22:13:20.123456789Z');
  assert.equal(formatRfc3339Nano(1_700_000_000_000_000_000n), '2023-11-14T22:13:20Z');
  assert.equal(parseRfc3339Nano('2023-11-14T22:13:20.123456789Z')?.epochNs, ns);
  // What hoist wrote before (Date#toISOString) still reads.
  assert.equal(parseRfc3339Nano('2023-11-14T22:13:20.123Z')?.epochNs, 1_700_000_000_123_000_000n);
  assert.equal(parseRfc3339Nano('not a time'), undefined);
});

test('migration 3 turns stored milliseconds into nanoseconds; new stamps have nanoseconds', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hoist-time-'));
  dirs.push(root);
  const dbPath = join(root, 'metadata.db');
  const v2 = await MetadataDb.open(dbPath, { migrations: MIGRATIONS.filter((m) => m.version <= 2) });
  const ms = 1_700_000_000_123;
  const digest = `sha256:${'a'.repeat(64)}`;
  await v2.transaction(() => {
    v2.run("INSERT INTO namespaces (name, created_at) VALUES ('old', ?)", ms);
    v2.run(
      "INSERT INTO content (ns, digest, size, created_at, updated_at) VALUES ('old', ?, 1, ?, ?)",
      digest,
      ms,
      ms,
    );
    v2.run("INSERT INTO leases (ns, id, created_at) VALUES ('old', 'l', ?)", ms);
  });
  v2.close();

  const store = await openLocalStore(root);
  try {
    const ctx = { namespace: 'old' };
    const info = await store.content.info(ctx, digest as Digest);
    assert.equal(epochNsOf(info.createdAt), BigInt(ms) * 1_000_000n);
    assert.equal(info.createdAt.getTime(), ms);
    const [lease] = await store.leases.list(ctx);
    assert.equal(lease?.createdAt.getTime(), ms);

    const before = nowNs();
    const updated = await store.content.update(ctx, { digest: info.digest, labels: { k: 'v' } }, [
      'labels.k',
    ]);
    const after = nowNs();
    const at = epochNsOf(updated.updatedAt);
    assert.ok(at >= before && at <= after, `${at} outside [${before}, ${after}]`);
    assert.equal(epochNsOf((await store.content.info(ctx, info.digest)).updatedAt), at);
  } finally {
    store.close();
  }
});
