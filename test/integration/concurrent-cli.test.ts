// Concurrent hoist processes on one embedded store for a sustained period (HOIST_LOAD_SECONDS, default 30):
// pulls with and without unpack, rmi, prune, images and convert in parallel loops. No lock error reaches a
// user, every failure is a race the user would understand (the image was just removed), every loop makes
// progress, and the store is consistent after. bench/concurrent-cli.ts runs it for minutes.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cliLoad, describeLoad } from '../helpers/cli-load.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { assertConsistent } from '../helpers/kill-campaign.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempStore } from '../helpers/run-hoist.ts';

const skip = process.getuid?.() !== 0 && 'needs root (unpacks into snapshots)';
const SECONDS = Number(process.env.HOIST_LOAD_SECONDS ?? 30);
let reg: TestRegistry;
let work: string;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-load-'));
  const files: Record<string, string> = {};
  for (let i = 0; i < 200; i++) files[`srv/f${i}`] = `file ${i}\n`.repeat(20);
  await writeOciLayout(join(work, 'layout'), [
    { tag: 'churn', image: { layers: [files, { randomBytes: 512 * 1024, path: 'srv/r.bin' }] } },
    { tag: 'stable', image: { layers: [{ 'etc/app': 'stable\n' }, { randomBytes: 256 * 1024 }] } },
  ]);
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'load/churn:1', reg.registryHost, { srcTag: 'churn' });
  await pushLayout(join(work, 'layout'), 'load/stable:1', reg.registryHost, { srcTag: 'stable' });
});

after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('concurrent pull, rmi, prune, images and convert on one store: no lock error reaches a user, every loop progresses', {
  skip,
}, async () => {
  const s = await tempStore();
  try {
    const img = { churn: `${reg.registryHost}/load/churn:1`, stable: `${reg.registryHost}/load/stable:1` };
    await s.ok('pull', '--plain-http', '-q', '--unpack=false', img.stable);
    const stats = await cliLoad(s, img, SECONDS);
    console.log(describeLoad(stats));
    for (const l of stats) {
      assert.equal(l.lockErrors, 0, `${l.name}: a lock error reached the user`);
      assert.deepEqual(l.unexpected, [], l.name);
      assert.ok(l.ok >= 2, `${l.name} made progress: ${l.ok} successful runs`);
    }
    await assertConsistent(s, 'after the load');
    // The kept image is whole, and the churned one can be pulled whole once the load is over.
    await s.ok('pull', '--plain-http', '-q', '--snapshotter', 'native', img.churn);
    await assertConsistent(s, 'after a final pull');
  } finally {
    await s.cleanup();
  }
});
