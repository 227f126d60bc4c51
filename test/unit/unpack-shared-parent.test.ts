// An unpack that finds a layer's chain already committed (another image's, sharing the base layer) must
// keep it until the layer above is prepared on it: another client may remove that image and GC take the
// chain meanwhile. The soak of hoist serve (bench/soak-serve.ts) saw that race as a CRI pull failing with
// "parent snapshot … does not exist: not found"; here it is made certain: the hook that says the second
// layer's blob is ready removes the first image and collects garbage once the base was found committed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import type { Backend } from '../../src/api/backend.ts';
import { loadArchive } from '../../src/archive/load.ts';
import type { Context } from '../../src/core/context.ts';
import type { Digest } from '../../src/core/digest.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { unpackImage } from '../../src/images/unpack.ts';
import { ALL_PLATFORMS } from '../../src/images/walk.ts';
import { writeOciLayout } from '../helpers/image-builder.ts';

const ctx: Context = { namespace: 'default' };
const dirs: string[] = [];
const backends: Backend[] = [];
after(async () => {
  for (const b of backends) await b.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Two images on one base layer, loaded (not unpacked) into a new embedded store. */
async function storeWithTwoImages() {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-shared-parent-'));
  dirs.push(dir);
  const base = { 'etc/os-release': 'ID=shared\n', 'lib/base.bin': 'base\n'.repeat(512) };
  const built = await writeOciLayout(join(dir, 'layout'), [
    { tag: 'example.com/shared/a:1', image: { layers: [base, { 'app/a': 'a\n' }] } },
    { tag: 'example.com/shared/b:1', image: { layers: [base, { 'app/b': 'b\n' }] } },
  ]);
  const backend = await openEmbedded(join(dir, 'root'));
  backends.push(backend);
  await promisify(execFile)('tar', ['-C', join(dir, 'layout'), '-cf', join(dir, 'images.tar'), '.']);
  await loadArchive(backend, ctx, createReadStream(join(dir, 'images.tar')), {});
  const [a, b] = built.map((e) => ({
    name: e.tag,
    target: { mediaType: e.top.mediaType, digest: e.top.digest as Digest, size: e.top.size },
    layers: e.images[0]!.layers.map((l) => l.digest),
  }));
  return { backend, a: a!, b: b! };
}

for (const snapshotter of ['native', 'overlayfs']) {
  test(`${snapshotter}: a committed parent found by an unpack survives the removal of the image that made it`, async () => {
    const { backend, a, b } = await storeWithTwoImages();
    await unpackImage(backend, ctx, a.target, { snapshotter, platforms: ALL_PLATFORMS });
    const sn = backend.snapshotters.get(snapshotter)!;
    const committedBefore = (await sn.list(ctx)).filter((s) => s.kind === 'committed').length;
    assert.equal(committedBefore, 2, 'a: base and top');

    let baseFound = false;
    let collected = false;
    const [result] = await unpackImage(backend, ctx, b.target, {
      snapshotter,
      platforms: ALL_PLATFORMS,
      progress: (e) => {
        if (e.index === 0 && e.state === 'exists') baseFound = true;
      },
      ready: async (digest) => {
        if (digest !== b.layers[1]) return;
        for (let i = 0; !baseFound && i < 10_000; i++) await new Promise((r) => setImmediate(r));
        assert.ok(baseFound, 'the base layer was found committed');
        await backend.images.delete(ctx, a.name);
        await backend.collectGarbage();
        collected = true;
      },
    });
    assert.ok(collected, 'a was removed and GC ran mid-unpack');
    assert.deepEqual([result!.existed, result!.applied], [1, 1]);
    // Once the unpack's lease is gone, b's config label keeps its chain: base and b's top; a's top went.
    await backend.collectGarbage();
    const names = (await sn.list(ctx)).filter((s) => s.kind === 'committed').map((s) => s.name);
    assert.equal(names.length, 2, `b's two chains, no more: ${names.join(', ')}`);
    assert.ok(names.includes(result!.chainId), "b's top chain");
  });
}
