// An unpack killed with SIGKILL halfway through a layer: the layer was being written into an active
// snapshot, so nothing committed may hold partial content; the next pull applies the layer again and the
// image's files are exactly those of its layers.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import tar from 'tar-stream';
import type { Digest } from '../../src/core/digest.ts';
import { chainIds } from '../../src/images/rootfs.ts';
import { spawnHoist, waitFor } from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, jsonLines, tempStore } from '../helpers/run-hoist.ts';
import { describeTree, diffTrees } from '../helpers/tree.ts';

interface SnapJson {
  Name: string;
  Kind: string;
}

const isRoot = process.getuid?.() === 0;
const FILES = 5000;
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;

/** Many small files (slow to apply, so the kill lands mid-layer), each with distinct content. */
function manyFiles(dirName = 'many'): Readable {
  const pack = tar.pack();
  void (async () => {
    for (let i = 0; i < FILES; i++) {
      const body = Buffer.from(`${dirName} ${i}\n`.repeat(200));
      await new Promise<void>((res, rej) =>
        pack.entry({ name: `${dirName}/f${String(i).padStart(5, '0')}`, mtime: new Date(0) }, body, (e) =>
          e ? rej(e) : res(),
        ),
      );
    }
    pack.finalize();
  })();
  return pack as unknown as Readable;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-unpack-kill-'));
  const layout = join(dir, 'layout');
  built = await writeOciLayout(layout, [
    {
      tag: 'v1',
      image: { layers: [{ 'etc/base': 'base\n' }, { tar: manyFiles }] },
    },
    {
      // Two heavy layers: with both blobs in, the second is applied ahead of the first (parallel unpack).
      tag: 'v2',
      image: { layers: [{ tar: () => manyFiles('many') }, { tar: () => manyFiles('more') }] },
    },
  ]);
  reg = await startRegistry();
  await pushLayout(layout, 'kill/unpack:v1', reg.registryHost);
  await pushLayout(layout, 'kill/unpack:v2', reg.registryHost, { srcTag: 'v2' });
  ref = `${reg.registryHost}/kill/unpack:v1`;
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Entries under `sub` in any snapshot directory of a snapshotter (active ones included). */
async function partialFiles(store: HoistStore, sn = 'native', sub = 'many'): Promise<number> {
  const base = join(store.root, 'snapshots', sn, 'snapshots');
  let most = 0;
  for (const id of await readdir(base).catch(() => [] as string[])) {
    const n = await readdir(join(base, id, 'fs', sub)).then(
      (l) => l.length,
      () => 0,
    );
    most = Math.max(most, n);
  }
  return most;
}

test('SIGKILL during unpack: no committed snapshot with partial content; the next pull finishes', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const store = await tempStore();
  try {
    const img = built[0]!.images[0]!;
    const [chain1, chain2] = chainIds(img.layers.map((l) => l.diffId as Digest));
    const p = spawnHoist(store, 'pull', '--plain-http', '--snapshotter', 'native', ref);
    await waitFor(async () => (await partialFiles(store)) >= 100, 'the second layer to be half applied');
    p.child.kill('SIGKILL');
    await p.exited;

    const snaps = jsonLines<SnapJson>(
      await store.ok('snapshot', '--snapshotter', 'native', 'ls', '--format', 'json'),
    );
    const committed = snaps.filter((s) => s.Kind === 'committed').map((s) => s.Name);
    assert.deepEqual(committed, [chain1], 'only the first layer is committed; the killed one is not');
    assert.ok(
      (await partialFiles(store)) < FILES,
      'the kill landed mid-layer (the partial directory is incomplete)',
    );

    // The next pull applies the second layer again and names the image.
    await store.ok('pull', '--plain-http', '--snapshotter', 'native', ref);
    const after = jsonLines<SnapJson>(
      await store.ok('snapshot', '--snapshotter', 'native', 'ls', '--format', 'json'),
    );
    assert.deepEqual(
      after
        .filter((s) => s.Kind === 'committed')
        .map((s) => s.Name)
        .sort(),
      [chain1, chain2].sort(),
    );

    // Its files equal an extraction straight from the layer blobs.
    const plain = join(dir, 'plain');
    await store.ok('image', 'unpack', ref, '--to', plain);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt, { recursive: true });
    await store.ok('image', 'mount', '--snapshotter', 'native', ref, mnt);
    try {
      const want = await describeTree(plain, {});
      const got = await describeTree(mnt, {});
      assert.equal(want.size, FILES + 3, 'etc, etc/base, many and its files');
      assert.deepEqual(diffTrees(want, got), []);
    } finally {
      await store.ok('image', 'unmount', mnt);
    }

    // The dead process's leftovers (its lease, the abandoned active snapshot) go with prune.
    await store.ok('system', 'prune');
    const final = jsonLines<SnapJson>(
      await store.ok('snapshot', '--snapshotter', 'native', 'ls', '--format', 'json'),
    );
    assert.deepEqual(
      final.filter((s) => s.Kind !== 'committed'),
      [],
      'no active snapshot left after prune',
    );
  } finally {
    await store.cleanup();
  }
});

test('SIGKILL while layers apply in parallel (overlayfs): nothing partial is committed; the next pull finishes', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const store = await tempStore();
  try {
    const v2 = `${reg.registryHost}/kill/unpack:v2`;
    // Everything in the store first, so both layers start at once and the second goes ahead of the first.
    await store.ok('pull', '--plain-http', '--unpack=false', v2);
    const img = built[1]!.images[0]!;
    const [chain1, chain2] = chainIds(img.layers.map((l) => l.diffId as Digest));
    const p = spawnHoist(store, 'unpack', '--snapshotter', 'overlayfs', v2);
    await waitFor(
      async () => (await partialFiles(store, 'overlayfs', 'more')) >= 100,
      'the second layer to be half applied',
    );
    p.child.kill('SIGKILL');
    await p.exited;
    const snaps = jsonLines<SnapJson>(
      await store.ok('snapshot', '--snapshotter', 'overlayfs', 'ls', '--format', 'json'),
    );
    const committed = snaps.filter((s) => s.Kind === 'committed').map((s) => s.Name);
    assert.ok(!committed.includes(chain2!), 'the killed layer is not committed');
    assert.ok(
      committed.every((c) => c === chain1),
      JSON.stringify(committed),
    );

    await store.ok('unpack', '--snapshotter', 'overlayfs', v2);
    const plain = join(dir, 'plain-v2');
    await store.ok('image', 'unpack', v2, '--to', plain);
    const mnt = join(dir, 'mnt-v2');
    await mkdir(mnt, { recursive: true });
    await store.ok('image', 'mount', '--snapshotter', 'overlayfs', v2, mnt);
    try {
      const want = await describeTree(plain, {});
      assert.equal(want.size, 2 * FILES + 2, 'many/, more/ and their files');
      assert.deepEqual(diffTrees(want, await describeTree(mnt, {})), []);
    } finally {
      await store.ok('image', 'unmount', mnt);
    }
    await store.ok('system', 'prune');
    const final = jsonLines<SnapJson>(
      await store.ok('snapshot', '--snapshotter', 'overlayfs', 'ls', '--format', 'json'),
    );
    assert.deepEqual(
      final.filter((s) => s.Kind !== 'committed'),
      [],
      'no active snapshot left after prune',
    );
    assert.deepEqual(final.map((s) => s.Name).sort(), [chain1, chain2].sort());
  } finally {
    await store.cleanup();
  }
});
