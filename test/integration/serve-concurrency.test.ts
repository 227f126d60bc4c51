// Eight clients on one `hoist serve` at once, for HOIST_STRESS_SECONDS (default 60): the workload of
// test/helpers/serve-load.ts (the real ctr pulling with overlayfs and native unpack and removing, the hoist
// CLI pulling and removing through --address, a CRI client pulling, checking and removing, and a lister
// reading all three views, over four images that share a base layer, all in `k8s.io`). The only errors
// allowed are NotFound (removing what another client removed first). Afterwards the three views agree and
// `hoist system check` finds the store consistent, through the daemon and again on the store itself once
// the daemon has stopped. bench/soak-serve.ts runs the same workload for ten minutes and more.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { TestClients } from '../helpers/grpc-client.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type ServedStore, startServe } from '../helpers/serve.ts';
import { assertServeLoadSettles, pushServeLoadImages, serveLoad } from '../helpers/serve-load.ts';

const isRoot = process.getuid?.() === 0;
const SECONDS = Number(process.env.HOIST_STRESS_SECONDS ?? 60);
let reg: TestRegistry;
let dir: string;
let refs: string[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-stress-'));
  reg = await startRegistry();
  refs = await pushServeLoadImages(dir, reg);
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('8 clients pulling, listing and removing at once: only NotFound errors, one view, a consistent store', {
  skip: !isRoot && 'needs root (overlayfs unpack through ctr)',
  timeout: (SECONDS + 240) * 1000,
}, async (t) => {
  const srv: ServedStore = await startServe();
  const clients = new TestClients(srv.socket);
  try {
    const cri = clients.client(ImageService);
    const logs = await serveLoad({ srv, cri, refs, seconds: SECONDS });
    t.diagnostic(`operations: ${logs.map((l) => `${l.name} ${l.ops}`).join(', ')}`);
    for (const l of logs) {
      assert.ok(l.ops > 0, `${l.name} made progress`);
      assert.deepEqual(l.unexpected, [], `${l.name}: unexpected errors after ${l.ops} operations`);
    }
    // Quiet now: one final pull of every image through the CRI, then the views must agree.
    await assertServeLoadSettles(srv, cri, refs);
    clients.close();
    assert.equal(await srv.stop(), 0, 'the daemon stops cleanly');
    const embedded = await srv.hoist('system', 'check', '--verify', '--format', 'json');
    assert.equal(embedded.code, 0, embedded.stdout + embedded.stderr);
  } finally {
    clients.close();
    await srv.cleanup();
  }
});
