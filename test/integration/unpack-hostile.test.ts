// Hostile images through the whole pull path: a real registry serves a legitimate base layer and a
// hostile second layer; `hoist pull` (which unpacks) must fail with an error naming the layer and the
// entry, leave a sentinel directory outside the store exactly as it was, and leave the store consistent:
// no image name, no active snapshot, nothing half-committed; the base layer's snapshot is reusable.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, jsonLines, tempStore } from '../helpers/run-hoist.ts';
import { describeTree } from '../helpers/tree.ts';
import { outsideState, type PackEntry, packTar } from '../unit/diff-fixtures.ts';

const isRoot = process.getuid?.() === 0;
const file = (name: string, body = 'pwned'): PackEntry => ({ header: { name }, body });
const link = (name: string, linkname: string): PackEntry => ({ header: { name, type: 'symlink', linkname } });
const hard = (name: string, linkname: string): PackEntry => ({ header: { name, type: 'link', linkname } });

let reg: TestRegistry;
let store: HoistStore;
let dir: string;
let sentinel: string;
let built: BuiltEntry[];

interface Case {
  tag: string;
  /** The second layer, given the sentinel's absolute path. */
  layer: (sentinel: string) => Promise<Buffer>;
  error: RegExp;
}

const deep = '../'.repeat(24);
const cases: Case[] = [
  {
    tag: 'dotdot',
    layer: (s) => packTar([file(`etc/${deep}${s.slice(1)}/secret`)]),
    error: /layer entry '.*secret' escapes the snapshot root; the layer is refused/,
  },
  {
    tag: 'climbing-symlink',
    layer: (s) => packTar([link('up', `${deep}${s.slice(1)}`), file('up/secret')]),
    error: /layer entry 'up\/secret' goes through symlink 'up' -> .*, which points above the root/,
  },
  {
    tag: 'hardlink-out',
    layer: (s) => packTar([hard('h', `${deep}${s.slice(1)}/secret`)]),
    error: /layer entry 'h' is a hardlink to .*, outside the snapshot root/,
  },
  {
    tag: 'hardlink-absolute',
    layer: (s) => packTar([hard('h', `${s}/secret`)]),
    error: /layer entry 'h' is a hardlink to .*, which is not in the snapshot/,
  },
  {
    tag: 'diffid',
    layer: () => packTar([file('etc/innocent', 'hello\n')]),
    // before() gives this image a config whose second diff_id is wrong.
    error:
      /layer diffID mismatch: expected sha256:0{64}, got sha256:[0-9a-f]{64}; the unpacked snapshot is discarded/,
  },
];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-hostile-'));
  sentinel = join(dir, 'sentinel');
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'secret'), 'untouched\n', { mode: 0o640 });
  const base = await packTar([file('etc/base', 'base\n')]);
  const layout = join(dir, 'layout');
  const entries = [];
  for (const c of cases) {
    const layers = [base, await c.layer(sentinel)];
    const spec: { layers: Buffer[]; configExtras?: Record<string, unknown> } = { layers };
    entries.push({ tag: c.tag, image: spec });
  }
  // The diffID case needs the real first diffID and a wrong second one.
  const probe = await writeOciLayout(join(dir, 'probe'), [{ tag: 'p', image: { layers: [base] } }]);
  const baseDiff = probe[0]!.images[0]!.layers[0]!.diffId;
  const diffCase = entries.find((e) => e.tag === 'diffid')!;
  diffCase.image.configExtras = {
    rootfs: { type: 'layers', diff_ids: [baseDiff, `sha256:${'0'.repeat(64)}`] },
  };
  built = await writeOciLayout(layout, entries);
  reg = await startRegistry();
  for (const c of cases) await pushLayout(layout, `hostile/img:${c.tag}`, reg.registryHost);
  store = await tempStore();
});

after(async () => {
  await store?.cleanup();
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('pulling a hostile image fails cleanly', { skip: !isRoot && 'needs root (snapshots)' }, () => {
  for (const c of cases) {
    for (const sn of ['native', 'overlayfs']) {
      test(`${c.tag} (${sn})`, async () => {
        const before = await outsideState(dir);
        const ref = `${reg.registryHost}/hostile/img:${c.tag}`;
        const r = await store.run('pull', '--plain-http', '--snapshotter', sn, ref);
        assert.notEqual(r.code, 0, 'the pull fails');
        assert.match(r.stderr, c.error);
        const layer = built.find((b) => b.tag === c.tag)!.images[0]!.layers[1]!;
        assert.match(
          r.stderr,
          new RegExp(`unpacking layer 2/2 \\(${layer.digest}\\)`),
          'the error names the layer',
        );
        assert.equal(await readFile(join(sentinel, 'secret'), 'utf8'), 'untouched\n');
        assert.equal(await outsideState(dir), before, 'nothing outside the store changed');

        // Consistent store: no name for the image, no active snapshot left behind.
        const images = await store.ok('images', '-q', '--no-trunc');
        assert.equal(images.trim(), '', 'no image was created');
        const snaps = jsonLines(await store.ok('snapshot', '--snapshotter', sn, 'ls', '--format', 'json'));
        assert.deepEqual(
          snaps.filter((s) => s.Kind !== 'committed'),
          [],
          'no active snapshot is left',
        );
        // At most the base layer's snapshot was committed: layers apply in parallel, so the failure of
        // layer 2 may cancel the base before it commits.
        assert.ok(snaps.length <= 1, JSON.stringify(snaps));
      });
    }
  }

  test('an absolute symlink is resolved inside the root, as in a chroot: the write lands in the image', async () => {
    // Not an escape: images rely on absolute links (Debian's var/run -> /run). The sentinel stays put.
    const d = await mkdtemp(join(tmpdir(), 'hoist-abs-'));
    try {
      const before = await outsideState(dir);
      const layout = join(d, 'layout');
      await writeOciLayout(layout, [
        {
          tag: 'abs',
          image: { layers: [await packTar([link('evil', sentinel)]), await packTar([file('evil/secret')])] },
        },
      ]);
      await pushLayout(layout, 'hostile/abs:abs', reg.registryHost);
      const ref = `${reg.registryHost}/hostile/abs:abs`;
      await store.ok('pull', '--plain-http', '--snapshotter', 'native', ref);
      assert.equal(await outsideState(dir), before, 'nothing outside the store changed');
      const out = join(d, 'out');
      await store.ok('image', 'unpack', ref, '--to', out);
      const tree = await describeTree(out, {});
      const inside = tree.get(`${sentinel.slice(1)}/secret`);
      assert.ok(inside, `the file is inside the image at ${sentinel}/secret`);
      assert.equal(await readFile(join(out, sentinel, 'secret'), 'utf8'), 'pwned');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
