// `hoist image convert` against real tools: converted images are whole, unpack to the same tree, their
// zstd layers decode with the zstd CLI, and the registry, skopeo and containerd 1.6 accept them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startContainerd } from '../helpers/containerd.ts';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';
import { describeTree, diffTrees, type TreeEntry } from '../helpers/tree.ts';

const isRoot = process.getuid?.() === 0;
let reg: TestRegistry;
let store: HoistStore;
let dir: string;
let ref: string;
let sourceTree: Map<string, TreeEntry>;
const opts = { mtimes: true };

interface Inspect {
  Target: { digest: string; mediaType: string };
  Platforms?: { Layers: { MediaType: string; Digest: string; Size: number }[] }[];
  RootFS: { diff_ids: string[] };
}

const blob = (digest: string) => join(store.root, 'content', 'blobs', 'sha256', digest.slice(7));

async function inspect(name: string): Promise<Inspect> {
  const raw = JSON.parse(await store.ok('image', 'inspect', name)) as Inspect | Inspect[];
  return Array.isArray(raw) ? raw[0]! : raw;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-convert-'));
  const layout = join(dir, 'layout');
  await writeOciLayout(layout, [
    { tag: 'v1', image: { format: 'docker', layers: [await layer1(), await layer2(), await layer3()] } },
  ]);
  reg = await startRegistry();
  await pushLayout(layout, 'conv/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/conv/app:v1`;
  store = await tempStore();
  await store.ok('pull', '--plain-http', '--unpack=false', ref);
  await store.ok('image', 'unpack', ref, '--to', join(dir, 'source'));
  sourceTree = await describeTree(join(dir, 'source'), opts);
});

after(async () => {
  await store?.cleanup();
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function treeOf(name: string): Promise<Map<string, TreeEntry>> {
  const out = join(dir, `tree-${Math.random().toString(36).slice(2)}`);
  await store.ok('image', 'unpack', name, '--to', out);
  return describeTree(out, opts);
}

function assertSameTree(name: string, got: Map<string, TreeEntry>): void {
  const diff = diffTrees(sourceTree, got, ['source', name]);
  assert.deepEqual(diff, [], `${name} unpacks differently:\n${diff.join('\n')}`);
}

test('--zstd: OCI zstd layers the zstd CLI decodes to the same diffIDs; same tree; check complete', async () => {
  const dst = `${reg.registryHost}/conv/app:zstd`;
  const out = await store.ok('image', 'convert', '--zstd', '--zstd-compression-level', '9', ref, dst);
  assert.match(out, /3 layer\(s\) re-encoded/);
  const src = await inspect(ref);
  const got = await inspect(dst);
  assert.equal(got.Target.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const layers = got.Platforms![0]!.Layers;
  const diffIds = got.RootFS.diff_ids;
  assert.deepEqual(diffIds, src.RootFS.diff_ids, 'diffIDs are unchanged');
  for (const [i, l] of layers.entries()) {
    assert.equal(l.MediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const plain = execFileSync('zstd', ['-dc', blob(l.Digest)]);
    const sum = execFileSync('sha256sum', { input: plain }).toString().split(' ')[0];
    assert.equal(`sha256:${sum}`, diffIds[i], `layer ${i} decodes to its diffID`);
  }
  assert.match(await store.ok('image', 'check', dst), /\scomplete\s/);
  assertSameTree('zstd', await treeOf(dst));
});

test('--uncompress --oci: plain tar layers whose digest is the diffID; --gzip back again', async () => {
  const plain = `${reg.registryHost}/conv/app:plain`;
  await store.ok('image', 'convert', '--uncompress', '--oci', ref, plain);
  const got = await inspect(plain);
  for (const [i, l] of got.Platforms![0]!.Layers.entries()) {
    assert.equal(l.MediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.equal(l.Digest, got.RootFS.diff_ids[i]);
  }
  assertSameTree('uncompressed', await treeOf(plain));
  const gz = `${reg.registryHost}/conv/app:gz`;
  await store.ok('image', 'convert', '--gzip', plain, gz);
  const g = await inspect(gz);
  assert.equal(g.Target.mediaType, 'application/vnd.oci.image.manifest.v1+json', 'stays OCI');
  for (const l of g.Platforms![0]!.Layers)
    assert.equal(l.MediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assertSameTree('gzip', await treeOf(gz));
});

test('--oci alone keeps the layer bytes and changes only media types', async () => {
  const oci = `${reg.registryHost}/conv/app:oci`;
  const out = await store.ok('image', 'convert', '--oci', ref, oci);
  assert.match(out, /0 layer\(s\) re-encoded, 3 kept/);
  const src = await inspect(ref);
  const got = await inspect(oci);
  assert.deepEqual(
    got.Platforms![0]!.Layers.map((l) => l.Digest),
    src.Platforms![0]!.Layers.map((l) => l.Digest),
  );
  assert.equal(got.Target.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  for (const l of got.Platforms![0]!.Layers)
    assert.equal(l.MediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
});

test('in place: the name moves to the converted image; the old target is collected, nothing else', async () => {
  const name = `${reg.registryHost}/conv/app:inplace`;
  await store.ok('tag', ref, name);
  const before = (await inspect(name)).Target.digest;
  await store.ok('image', 'convert', '--zstd', name, name);
  const afterT = (await inspect(name)).Target.digest;
  assert.notEqual(afterT, before);
  await store.ok('system', 'prune');
  assert.match(await store.ok('image', 'check', name), /\scomplete\s/);
  assert.match(await store.ok('image', 'check', ref), /\scomplete\s/, 'the source (other name) is untouched');
});

test('bad flags: nothing to convert, two compressions, bad level', async () => {
  for (const [args, msg] of [
    [['image', 'convert', ref, 'x:1'], /nothing to convert/],
    [['image', 'convert', '--zstd', '--gzip', ref, 'x:1'], /choose one of --zstd, --gzip, --uncompress/],
    [['image', 'convert', '--zstd', '--zstd-compression-level', '40', ref, 'x:1'], /use 1 to 22/],
  ] as const) {
    const r = await store.run(...args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, msg);
  }
});

test('pushed zstd and uncompressed images: skopeo inspect and containerd 1.6 pull and unpack them', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  const d = await startContainerd();
  try {
    for (const tag of ['zstd', 'plain']) {
      const name = `${reg.registryHost}/conv/app:${tag}`;
      await store.ok('push', '--plain-http', name);
      const info = JSON.parse(
        execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${name}`]).toString(),
      ) as { layers: { mediaType: string }[] };
      assert.ok(info.layers.length === 3);
      await d.ctrOk('images', 'pull', '--plain-http', '--snapshotter', 'native', name);
      const check = await d.ctrOk('images', 'check');
      assert.match(check, new RegExp(`${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s.*complete`));
    }
  } finally {
    await d.stop();
  }
});

test('missing layers (discarded after unpack): fetched from the source; with the registry gone, a clear error and no change', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const reg2 = await startRegistry();
  const s2 = await tempStore();
  try {
    await pushLayout(join(dir, 'layout'), 'conv/base:v1', reg2.registryHost);
    const base = `${reg2.registryHost}/conv/base:v1`;
    await s2.ok('pull', '--plain-http', '--snapshotter', 'native', '--discard-unpacked-layers', base);
    assert.match(await s2.ok('image', 'check', base), /incomplete/);

    // Registry up: the layers come back, the conversion is whole.
    const zstd = `${reg2.registryHost}/conv/base:zstd`;
    await s2.ok('image', 'convert', '--plain-http', '--zstd', base, zstd);
    assert.match(await s2.ok('image', 'check', zstd), /\scomplete\s/);

    // Registry down, layers discarded again: the error names every missing layer and the source tried.
    await s2.ok('rmi', zstd);
    await s2.ok('unpack', '--discard-unpacked-layers', '--snapshotter', 'native', base);
    const layers = ((await s2.ok('image', 'check', '-v', base)).match(/sha256:[0-9a-f]{64}/g) ?? []).filter(
      (d, i, a) => a.indexOf(d) === i,
    );
    assert.equal(layers.length, 3, 'three layers are missing');
    await reg2.stop();
    const names = async () =>
      (await s2.ok('images', '--all', '--format', 'json')).replace(/"CreatedSince":"[^"]*"/g, '');
    const before = await names();
    const gz = `${reg2.registryHost}/conv/base:gz`;
    const r = await s2.run('image', 'convert', '--plain-http', '--uncompress', base, gz);
    assert.notEqual(r.code, 0);
    for (const d of layers) assert.ok(r.stderr.includes(d), `the error names ${d}:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${reg2.registryHost}/conv/base`));
    assert.equal(await names(), before, 'no image was created or changed');
    const noFetch = await s2.run('image', 'convert', '--no-fetch', '--uncompress', base, gz);
    assert.notEqual(noFetch.code, 0);
    for (const d of layers) assert.ok(noFetch.stderr.includes(d), noFetch.stderr);
  } finally {
    await reg2.stop().catch(() => undefined);
    await s2.cleanup();
  }
});
