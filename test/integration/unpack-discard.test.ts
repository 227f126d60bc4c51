// discard_unpacked_layers end to end: pull unpacks, the compressed layers lose their GC references and
// are collected, manifests and config stay; `image check` says exactly what the image has and lacks and
// where it could come from; later commands that need the layers fetch them from the recorded source, or
// fail naming them when the registry is gone.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { chainIds } from '../../src/images/rootfs.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, jsonLines, tableRows, tempStore } from '../helpers/run-hoist.ts';

const isRoot = process.getuid?.() === 0;

interface DfJson {
  Blobs: { FileBytes: number };
  Snapshots: {
    Count: number;
    BySnapshotter: { Snapshotter: string; Count: number; Bytes: number; ReclaimableBytes: number }[];
  };
}
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;

const blobPath = (store: HoistStore, digest: string) =>
  join(store.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-discard-'));
  const layout = join(dir, 'layout');
  built = await writeOciLayout(layout, [
    {
      tag: 'v1',
      image: {
        layers: [
          { 'etc/base': 'base\n', 'bin/tool': { content: '#!/bin/sh\n', mode: 0o755 } },
          { randomBytes: 512 * 1024, path: 'data/blob.bin' },
        ],
      },
    },
  ]);
  reg = await startRegistry();
  await pushLayout(layout, 'discard/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/discard/app:v1`;
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('pull --discard-unpacked-layers: unpacked, layers collected, check names what is missing', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const store = await tempStore();
  try {
    const img = built[0]!.images[0]!;
    await store.ok('pull', '--plain-http', '--snapshotter', 'native', '--discard-unpacked-layers', ref);
    for (const l of img.layers)
      assert.equal(existsSync(blobPath(store, l.digest)), false, `${l.digest} collected`);
    assert.ok(existsSync(blobPath(store, img.manifest.digest)), 'the manifest stays');
    assert.ok(existsSync(blobPath(store, img.config.digest)), 'the config stays');

    const rows = tableRows(await store.ok('image', 'check', ref));
    assert.equal(rows.length, 1);
    assert.match(rows[0]![3]!, /^incomplete \(2\/4\)$/, rows[0]!.join(' | '));
    assert.match(rows[0]![5]!, /native=true/);

    const verbose = await store.ok('image', 'check', '--verbose', ref);
    for (const l of img.layers) assert.ok(verbose.includes(l.digest), `-v lists ${l.digest}`);
    assert.match(verbose, new RegExp(`can be fetched from: ${reg.registryHost}/discard/app`));

    const strict = await store.run('image', 'check', '--strict', ref);
    assert.notEqual(strict.code, 0, '--strict fails on an incomplete image');

    // system df shows the saving: only the manifest and config are stored, the files live in snapshots.
    const df = JSON.parse(await store.ok('system', 'df', '-v', '--format', 'json')) as DfJson;
    assert.equal(df.Blobs.FileBytes, img.manifest.size + img.config.size);
    const native = df.Snapshots.BySnapshotter.find((x) => x.Snapshotter === 'native')!;
    assert.equal(native.Count, 2);
    assert.ok(native.Bytes > 512 * 1024, `snapshots hold the files (${native.Bytes} bytes)`);
    assert.equal(native.ReclaimableBytes, 0, 'the image keeps its snapshots');
    assert.match(await store.ok('system', 'df'), /Snapshots \(native\)\s+2\s/);

    // Snapshots survive GC and prune: the config's gc.ref.snapshot label keeps the chain.
    await store.ok('system', 'prune');
    assert.match(await store.ok('image', 'check', ref), /native=true/);

    // The files are all there: the snapshot is what was kept.
    const out = join(dir, 'files-native');
    await mkdir(out, { recursive: true });
    await store.ok('image', 'mount', '--snapshotter', 'native', ref, out);
    try {
      assert.equal(await readFile(join(out, 'etc/base'), 'utf8'), 'base\n');
    } finally {
      await store.ok('image', 'unmount', out);
    }

    // Unpacking into another snapshotter needs the layers: fetched again from the recorded source …
    await store.ok('unpack', '--plain-http', '--snapshotter', 'overlayfs', ref);
    assert.match(await store.ok('image', 'check', ref), /native=true,overlayfs=true/);
    // … and, since discard is asked for by config or flag only, kept now (the image is whole again).
    assert.match(await store.ok('image', 'check', ref), /\scomplete\s/);
    await store.ok('system', 'prune');
    assert.match(await store.ok('image', 'check', ref), /\scomplete\s/);

    // Removing the image frees its snapshots in every snapshotter.
    await store.ok('rmi', ref);
    for (const sn of ['native', 'overlayfs']) {
      const left = jsonLines(
        await store.ok('snapshot', '--snapshotter', sn, 'ls', '--format', 'json'),
      ) as unknown[];
      assert.deepEqual(left, [], `${sn}: no snapshot left after rmi`);
    }
    const after = JSON.parse(await store.ok('system', 'df', '-v', '--format', 'json')) as DfJson;
    assert.equal(after.Snapshots.Count, 0);
  } finally {
    await store.cleanup();
  }
});

test('discard_unpacked_layers from the config; with the registry gone, unpack --to fails naming the layers', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const store = await tempStore();
  const reg2 = await startRegistry();
  try {
    const layout = join(dir, 'layout');
    await pushLayout(layout, 'discard/app:v1', reg2.registryHost);
    const ref2 = `${reg2.registryHost}/discard/app:v1`;
    const config = join(dir, 'config.toml');
    await writeFile(config, 'discard_unpacked_layers = true\nsnapshotter = "native"\n');
    await store.ok('--config', config, 'pull', '--plain-http', ref2);
    const img = built[0]!.images[0]!;
    for (const l of img.layers) assert.equal(existsSync(blobPath(store, l.digest)), false);
    assert.match(await store.ok('image', 'check', ref2), /incomplete \(2\/4\).*native=true/);

    await reg2.stop();
    const out = join(dir, 'plain');
    const r = await store.run('image', 'unpack', '--plain-http', ref2, '--to', out);
    assert.notEqual(r.code, 0);
    for (const l of img.layers)
      assert.ok(r.stderr.includes(l.digest), `the error names ${l.digest}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${reg2.registryHost}/discard/app`), 'and the source tried');
    assert.equal(existsSync(join(out, 'etc')), false, 'nothing was extracted');

    const noFetch = await store.run('unpack', '--no-fetch', '--snapshotter', 'overlayfs', ref2);
    assert.notEqual(noFetch.code, 0);
    assert.ok(noFetch.stderr.includes(img.layers[1]!.digest), noFetch.stderr);
    assert.match(await store.ok('image', 'check', ref2), /native=true,overlayfs=false/);
  } finally {
    await reg2.stop().catch(() => undefined);
    await store.cleanup();
  }
});

test('pull --unpack=false fetches only; `hoist unpack` unpacks later from the store', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const store = await tempStore();
  try {
    await store.ok('pull', '--plain-http', '--unpack=false', ref);
    const rows = tableRows(await store.ok('image', 'check', ref));
    assert.equal(rows[0]![3], 'complete');
    assert.match(rows[0]![5]!, /overlayfs=false/);
    assert.match(rows[0]![5]!, /native=false/);
    const bad = await store.run('pull', '--plain-http', '--unpack=maybe', ref);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid --unpack="maybe": use true or false/);
    await store.ok('unpack', '--no-fetch', ref);
    assert.match(tableRows(await store.ok('image', 'check', ref))[0]![5]!, /overlayfs=true/);

    // The snapshot commands see the chain: layer 1's chain ID is the parent of layer 2's.
    const img = built[0]!.images[0]!;
    const [c1, c2] = chainIds(img.layers.map((l) => l.diffId as Digest));
    assert.equal((await store.ok('snapshot', 'tree')).trim(), `\\_ ${c1}\n  \\_ ${c2}`);
    const info = JSON.parse(await store.ok('snapshot', 'info', c2!)) as { Parent: string; Kind: string };
    assert.equal(info.Parent, c1);
    assert.equal(info.Kind, 'committed');
    const usage = tableRows(await store.ok('snapshot', 'usage'));
    assert.deepEqual(
      usage.map((r) => r[0]),
      [...[c1!, c2!].sort(), 'TOTAL'],
    );
    const busy = await store.run('snapshot', 'rm', c1!);
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /cannot remove snapshot with child/);
    await store.ok('snapshot', 'rm', c2!);
    assert.match(tableRows(await store.ok('image', 'check', ref))[0]![5]!, /overlayfs=false/);
    const missing = await store.run('snapshot', 'info', c2!);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /does not exist/);
  } finally {
    await store.cleanup();
  }
});
