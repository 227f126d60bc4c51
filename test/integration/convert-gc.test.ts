// An in-place conversion racing garbage collection in another process, 100 times: every blob of the
// image (old and new form) stays until nothing refers to it, and the image is complete after each round.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convertImage } from '../../src/convert/convert.ts';
import { hostPlatform } from '../../src/core/platform.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { checkContent } from '../../src/images/missing.ts';
import { onePlatform } from '../../src/images/walk.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, NODE, tempStore } from '../helpers/run-hoist.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 100);
let reg: TestRegistry;
let store: HoistStore;
let dir: string;
let ref: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-convert-gc-'));
  const layout = join(dir, 'layout');
  await writeOciLayout(layout, [
    {
      tag: 'v1',
      image: {
        layers: [{ 'etc/a': 'a\n' }, { randomBytes: 64 * 1024, path: 'b.bin' }, { 'etc/c': 'c\n' }],
      },
    },
  ]);
  reg = await startRegistry();
  await pushLayout(layout, 'gc/race:v1', reg.registryHost);
  ref = `${reg.registryHost}/gc/race:v1`;
  store = await tempStore();
  await store.ok('pull', '--plain-http', '--unpack=false', ref);
  await store.ok('tag', ref, 'race:inplace');
});

after(async () => {
  await store?.cleanup();
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('100 in-place conversions while another process collects garbage: nothing is lost', async () => {
  const gc = spawn(NODE, [join(import.meta.dirname, '..', 'helpers', 'gc-loop.ts'), store.root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  gc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise<void>((resolve) => {
    const onData = () => {
      if (out.includes('ready')) {
        gc.stdout.off('data', onData);
        resolve();
      }
    };
    gc.stdout.on('data', onData);
  });
  const backend = await openEmbedded(store.root);
  const ctx = { namespace: 'default' };
  const platforms = onePlatform(hostPlatform());
  const name = 'docker.io/library/race:inplace';
  try {
    for (let i = 0; i < ROUNDS; i++) {
      if (process.env.DEBUG_ROUNDS) console.error(`round ${i} ${Date.now()}`);
      const current = await backend.images.get(ctx, name);
      const r = await convertImage(backend, ctx, current.target, name, {
        compression: i % 2 === 0 ? 'zstd' : 'gzip',
        platforms,
      });
      for (const img of [name, ref]) {
        const target = (await backend.images.get(ctx, img)).target;
        const presence = await checkContent(backend.content, ctx, target, platforms);
        assert.deepEqual(presence.missing, [], `round ${i}: ${img} is complete`);
        for (const d of presence.required) {
          const path = join(store.root, 'content', 'blobs', 'sha256', d.digest.slice(7));
          assert.ok(existsSync(path), `round ${i}: ${d.digest} of ${img} is on disk`);
        }
      }
      assert.equal((await backend.images.get(ctx, name)).target.digest, r.target.digest);
    }
  } finally {
    await backend.close();
    gc.kill('SIGTERM');
  }
  await new Promise((r) => gc.on('close', r));
  const stats = JSON.parse(out.split('\n').filter(Boolean).at(-1)!) as { runs: number; removed: number };
  assert.ok(stats.runs > 0, 'the GC loop ran');
  // Each round leaves the previous round's converted blobs unreferenced: the loop must have collected some.
  assert.ok(stats.removed > 0, `GC removed superseded blobs while racing (${JSON.stringify(stats)})`);
  // And the CLI agrees the image is whole.
  assert.match(await store.ok('image', 'check', name), /\scomplete\s/);
});
