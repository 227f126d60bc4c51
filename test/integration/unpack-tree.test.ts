// Tree equality (issue 3): the root filesystem hoist produces — in the native snapshotter, through an
// overlayfs mount of its overlay snapshots, and as a plain directory with `image unpack --to` — equals,
// path by path (type, mode, owner, link target, content hash, device numbers, hardlinks, xattrs, mtimes),
// what `umoci unpack` and containerd 1.6's native snapshotter (after `ctr images pull`) produce from the
// same image. The fixture covers whiteouts, opaque dirs, hardlinks, symlinks, long names, devices,
// setuid files and xattrs.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { chainIds } from '../../src/images/rootfs.ts';
import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, MAIN, NODE, tempStore } from '../helpers/run-hoist.ts';
import { describeTree, diffTrees, type TreeEntry } from '../helpers/tree.ts';

const isRoot = process.getuid?.() === 0;
let dir: string;
let layout: string;
let reg: TestRegistry;
let ref: string;
let topChain: string;
let reference: Map<string, TreeEntry>;

const opts = { mtimes: true };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-tree-'));
  layout = join(dir, 'layout');
  const built = await writeOciLayout(layout, [
    { tag: 'v1', image: { layers: [await layer1(), await layer2(), await layer3()] } },
  ]);
  topChain = chainIds(built[0]!.images[0]!.layers.map((l) => l.diffId as Digest)).at(-1)!;
  reg = await startRegistry();
  await pushLayout(layout, 'fixture/rootfs:v1', reg.registryHost);
  ref = `${reg.registryHost}/fixture/rootfs:v1`;
  // umoci is the reference: an independent, widely used applier.
  execFileSync('umoci', [
    'unpack',
    ...(isRoot ? [] : ['--rootless']),
    '--image',
    `${layout}:v1`,
    join(dir, 'umoci'),
  ]);
  reference = await describeTree(join(dir, 'umoci', 'rootfs'), opts);
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

function assertSame(actual: Map<string, TreeEntry>, what: string, expected = reference): void {
  const diff = diffTrees(expected, actual, ['umoci', what]);
  assert.deepEqual(diff, [], `${what} differs from umoci:\n${diff.join('\n')}`);
  assert.ok(expected.size > 30, 'the fixture tree is not trivially small');
}

function withoutHardlinks(tree: Map<string, TreeEntry>): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  for (const [p, e] of tree) {
    const { hardlinkOf: _dropped, ...rest } = e;
    out.set(p, rest);
  }
  return out;
}

test('containerd 1.6 native snapshotter (ctr images pull) equals umoci: the fixture is a fair reference', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  let d: Containerd | undefined;
  try {
    d = await startContainerd();
    await d.ctrOk('images', 'pull', '--plain-http', '--snapshotter', 'native', ref);
    // Read the committed top snapshot's directory itself: a view without a lease would be fair game for
    // containerd's GC between creating and reading it. Native snapshots are full trees with increasing
    // ids; after one pull of three layers the top chain is the highest id.
    const info = JSON.parse(await d.ctrOk('snapshots', '--snapshotter', 'native', 'info', topChain)) as {
      Kind: string;
    };
    assert.equal(info.Kind, 'Committed');
    const base = join(d.root, 'io.containerd.snapshotter.v1.native', 'snapshots');
    const ids = (await readdir(base))
      .map(Number)
      .filter(Number.isInteger)
      .sort((a, b) => a - b);
    assert.equal(ids.length, 3, `three committed snapshots: ${ids.join(',')}`);
    const source = join(base, String(ids.at(-1)));
    assertSame(await describeTree(source, opts), 'ctr native');
  } finally {
    await d?.stop();
  }
});

test('hoist: native snapshot, overlayfs mount and `image unpack --to` all equal umoci', {
  skip: !isRoot && 'needs root (ownership, devices, mounts)',
}, async () => {
  const store: HoistStore = await tempStore();
  try {
    await store.ok('pull', '--plain-http', '--snapshotter', 'native', ref);
    // Every blob is in the store by now, so the overlayfs unpack starts all layers at once: layers 2 and 3
    // are applied ahead of their parents and settled (parallel unpack), and must still equal umoci's tree.
    await store.ok('pull', '--plain-http', '--snapshotter', 'overlayfs', ref);
    const check = await store.ok('image', 'check', ref);
    assert.match(check, /complete/);
    assert.match(check, /native=true/);
    assert.match(check, /overlayfs=true/);

    const plain = join(dir, 'plain');
    await store.ok('image', 'unpack', ref, '--to', plain);
    assertSame(await describeTree(plain, opts), 'hoist image unpack --to');

    for (const sn of ['native', 'overlayfs']) {
      const mnt = join(dir, `mnt-${sn}`);
      await mkdir(mnt, { recursive: true });
      await store.ok('image', 'mount', '--snapshotter', sn, ref, mnt);
      try {
        // Through overlayfs a cross-layer hardlink is a copied-up pair (as with containerd's overlayfs).
        const overlay = sn === 'overlayfs';
        const tree = await describeTree(mnt, { ...opts, hardlinks: !overlay });
        assertSame(tree, `hoist ${sn}`, overlay ? withoutHardlinks(reference) : reference);
      } finally {
        await store.ok('image', 'unmount', '--snapshotter', sn, mnt);
      }
    }
    // Unmount dropped the views: only the three committed layers remain per snapshotter.
    const ls = await store.ok('snapshot', '--snapshotter', 'native', 'ls');
    assert.equal(ls.trim().split('\n').length - 1, 3, ls);
  } finally {
    await store.cleanup();
  }
});

test('without root: `image unpack --to` equals `umoci unpack --rootless`, both run as an unprivileged user', {
  skip: !isRoot && 'needs root to switch to an unprivileged user',
}, async () => {
  // A world-writable work dir, a store and a HOME of the unprivileged user's own.
  const work = join(dir, 'rootless');
  await mkdir(work, { recursive: true, mode: 0o777 });
  await chmod(work, 0o777);
  await chmod(dir, 0o755);
  const env = {
    ...process.env,
    HOME: join(work, 'home'),
    XDG_CONFIG_HOME: join(work, 'home', '.config'),
    XDG_RUNTIME_DIR: join(work, 'run'),
  };
  const asNobody = (cmd: string, ...args: string[]) =>
    spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', cmd, ...args], {
      env,
      encoding: 'utf8',
    });
  const umoci = asNobody('umoci', 'unpack', '--rootless', '--image', `${layout}:v1`, join(work, 'umoci'));
  assert.equal(umoci.status, 0, umoci.stderr);
  // umoci records the image's owners in its own `user.rootlesscontainers` xattr, and leaves empty files
  // where devices were (bind-mount targets); hoist skips devices with a warning. The rest must agree.
  const treeOpts = { ...opts, ignoreXattrs: /^user\.rootlesscontainers$/ };
  const expected = await describeTree(join(work, 'umoci', 'rootfs'), treeOpts);
  const devices = [...reference].filter(([, e]) => e.type === 'char' || e.type === 'block').map(([p]) => p);
  assert.ok(devices.length > 0, 'the fixture has devices');
  for (const d of devices) expected.delete(d);

  const hoist = (...args: string[]) => asNobody(NODE, MAIN, '--root', join(work, 'store'), ...args);
  const pull = hoist('pull', '--plain-http', '--unpack=false', ref);
  assert.equal(pull.status, 0, pull.stderr);
  const out = join(work, 'plain');
  const unpack = hoist('image', 'unpack', ref, '--to', out);
  assert.equal(unpack.status, 0, unpack.stderr);
  const deviceWarnings = unpack.stderr.split('\n').filter((l) => /^warning: .*device/.test(l));
  assert.equal(deviceWarnings.length, 1, `one warning for the skipped devices:\n${unpack.stderr}`);
  const got = await describeTree(out, treeOpts);
  for (const d of devices) assert.equal(got.has(d), false, `${d} is skipped`);
  for (const e of got.values()) assert.equal(e.uid, 65534, 'owned by the user who ran it');
  const mount = hoist('image', 'mount', ref, out);
  assert.notEqual(mount.status, 0);
  assert.match(mount.stderr, /image mount needs root/);
  assert.match(mount.stderr, /hint: .*image unpack NAME --to DIR/);
  const diff = diffTrees(expected, got, ['umoci --rootless', 'hoist as nobody']);
  assert.deepEqual(diff, [], diff.join('\n'));
});
