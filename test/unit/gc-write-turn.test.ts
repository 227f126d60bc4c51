// GC removes the records of unreferenced blobs, commits, then deletes their files while still holding the
// write turn (MetadataDb.withWriteTurn): no writer may commit in between, or a writer that finds such a
// file still there (publish sees it, keeps it) records the blob and GC then deletes the file under it.
// The convert-gc race saw exactly that (a converted layer recreated every other round, "recorded but not
// on disk"): the write queue let two holders in at once when a writer numbered its ticket from a listing
// taken after the previous holder let go, but took it after GC, which had read the queue earlier and
// chosen a higher number, had taken its own and gone (src/metadata/write-queue.ts).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../../src/core/digest.ts';
import { isAlreadyExists } from '../../src/core/errors.ts';
import { sleep } from '../../src/core/sleep.ts';
import { checkConsistency } from '../../src/embedded/consistency.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

/** Resolves when `cond` holds (polled), or after `ms` regardless. */
async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(5);
}

test('a writer that chose its ticket from the emptied queue after GC chose a higher one waits for that GC: no record loses its file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hoist-gc-turn-'));
  // Hooks between reading the queue and taking the chosen ticket, armed once each.
  const gcChose = Promise.withResolvers<void>();
  const gcGo = Promise.withResolvers<void>();
  const wChose = Promise.withResolvers<void>();
  const wGo = Promise.withResolvers<void>();
  let gcArmed = false;
  let wArmed = false;
  const g = await openLocalStore(root, {
    writeQueue: {
      beforeTicket: async () => {
        if (!gcArmed) return;
        gcArmed = false;
        gcChose.resolve();
        await gcGo.promise;
      },
    },
  });
  const w = await openLocalStore(root, {
    writeQueue: {
      beforeTicket: async () => {
        if (!wArmed) return;
        wArmed = false;
        wChose.resolve();
        await wGo.promise;
      },
    },
  });
  try {
    const ctx = { namespace: 'default' };
    const data = Buffer.from('a converted layer, made again every other round');
    const digest = sha256(data);
    // The previous round's blob: recorded, on disk, referenced by nothing any more.
    await writeBlob(w.content, ctx, 'round-1', [data] as unknown as AsyncIterable<Uint8Array>, {
      digest,
      size: data.length,
    });
    // This round's writer of the same bytes, fed before the race (its commit finds the file there).
    const writer = await w.content.writer(ctx, { ref: 'round-2' });
    await writer.write(data);
    const committed = () =>
      g.db.get("SELECT 1 AS x FROM ingests WHERE ns = 'default' AND ref = 'round-2'") === undefined;

    // GC deletes the file only once the writer's commit is in (or it is plainly not coming).
    const gcDeleting = Promise.withResolvers<void>();
    const deleteBlob = g.backend.deleteBlob.bind(g.backend);
    g.backend.deleteBlob = async (d) => {
      if (d === digest) {
        gcDeleting.resolve();
        await until(committed, 5000);
      }
      return deleteBlob(d);
    };

    // The writer holds the turn (ticket 1) while GC reads the queue: GC chooses ticket 2.
    const t1Holds = Promise.withResolvers<void>();
    const t1Go = Promise.withResolvers<void>();
    const t1 = w.db.transaction(async () => {
      t1Holds.resolve();
      await t1Go.promise;
    });
    await t1Holds.promise;
    gcArmed = true;
    const collected = g.gc.collect();
    await gcChose.promise;
    // The writer lets go and commits at once: it reads the emptied queue and chooses ticket 1.
    t1Go.resolve();
    await t1;
    wArmed = true;
    const commit = writer.commit(data.length, digest).then(
      () => 'recorded',
      (err: unknown) => {
        if (isAlreadyExists(err)) return 'existed';
        throw err;
      },
    );
    await wChose.promise;
    // GC takes ticket 2 first: it must still wait for the writer, whose ticket will be lower.
    gcGo.resolve();
    await Promise.race([gcDeleting.promise, sleep(1000)]);
    wGo.resolve();
    await commit;
    await collected;

    const report = await checkConsistency(g);
    assert.deepEqual(
      report.problems.map((p) => p.kind),
      [],
      'every recorded blob still has its file',
    );
  } finally {
    w.close();
    g.close();
    await rm(root, { recursive: true, force: true });
  }
});
