// A pull that fails stops all of its work before it returns: one blob failing (here a 404) aborts the
// downloads still running, and pullImage rejects only once they have let go of the store. Before, the
// first failure rejected while a sibling download went on writing under the pull's lease (a fuzz run
// found its ingest, still locked, after the lease was gone and GC had run).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { pullImage } from '../../src/images/pull.ts';
import { ALL_PLATFORMS } from '../../src/images/walk.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type ScratchStore, scratchStore } from '../helpers/scratch-store.ts';

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let store: ScratchStore;

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-pull-failure-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: 4 << 20 }, { 'etc/b': 'b\n' }] } },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'fail/app:1', reg.host, { srcTag: 'app' });
  store = await scratchStore();
});

after(async () => {
  await store?.close();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

test('a failed blob aborts the downloads still running; none writes after the pull returns', async () => {
  const [big, small] = image.images[0]!.layers;
  assert.ok(big && small);
  // The big layer stalls after 1 MiB and stays stalled: only an abort ends its download.
  const hold = reg.holdBlob(big.digest, 1 << 20);
  const gone = reg.serve(new RegExp(`/blobs/${small.digest}$`), { status: 404, body: '' });
  try {
    const err = await pullImage(
      store.backend,
      createResolver({ plainHttp: true, retries: 1 }),
      store.ctx,
      `${reg.host}/fail/app:1`,
      { platforms: ALL_PLATFORMS, leaseExpiryMs: 3_600_000, concurrency: 3 },
    ).then(
      () => assert.fail('the pull should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof HoistError, String(err));
    assert.equal(err.code, 'HOIST_NOT_FOUND', err.message);
    // Nothing of the pull is still writing: once its lease goes, GC leaves nothing (a download still
    // running would hold its ingest's lock, and GC keeps a live writer's ingest).
    await store.assertNothingStored();
  } finally {
    gone();
    hold.release();
  }
});
