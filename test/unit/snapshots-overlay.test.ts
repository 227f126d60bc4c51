import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { DirectorySnapshotter, Mount } from '../../src/api/snapshots.ts';
import type { Context } from '../../src/core/context.ts';
import { isHoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { mountAll, overlaySupport, unmount } from '../../src/snapshots/mount.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function store(): Promise<LocalStore> {
  const s = await openLocalStore(await tempDir('hoist-snap-ovl-'));
  stores.push(s);
  return s;
}

const ctx: Context = { namespace: 'default' };
const overlay = (s: LocalStore): DirectorySnapshotter => s.snapshotters.get('overlayfs')!;

/** Prepare on `parent`, let `write` fill the layer directory, commit as `name`; returns the layer dir. */
async function layer(
  sn: DirectorySnapshotter,
  name: string,
  parent: string | undefined,
  write: (dir: string) => Promise<void>,
): Promise<string> {
  await sn.prepare(ctx, `${name}-active`, parent);
  const { dir } = await sn.applyTarget(ctx, `${name}-active`);
  await write(dir);
  await sn.commit(ctx, name, `${name}-active`);
  return dir;
}

const files = (entries: Record<string, string>) => async (dir: string) => {
  for (const [p, text] of Object.entries(entries)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), text);
  }
};

/** Skip the mount step (only) where overlay mounts are not possible. */
async function skipUnlessOverlayMounts(t: { skip(message: string): void }): Promise<boolean> {
  const support = await overlaySupport();
  if (support.supported) return false;
  t.skip(`overlay mounts not possible here: ${support.reason}`);
  return true;
}

test('overlayfs: one directory per layer; mounts are containerd-shaped', async () => {
  const s = await store();
  const sn = overlay(s);
  assert.equal(sn.name, 'overlayfs');

  const first = await sn.prepare(ctx, 'a-active');
  const aTarget = await sn.applyTarget(ctx, 'a-active');
  // A base layer has nothing below it: whiteouts are plain deletions.
  assert.equal(aTarget.whiteouts, 'delete');
  assert.deepEqual(first, [{ type: 'bind', source: aTarget.dir, options: ['rbind', 'rw'] }]);
  await files({ 'base.txt': 'a' })(aTarget.dir);
  await sn.commit(ctx, 'a', 'a-active');
  const a = aTarget.dir;

  const b = await layer(sn, 'b', 'a', files({ 'b.txt': 'b' }));
  const c = await layer(sn, 'c', 'b', files({ 'c.txt': 'c' }));
  // Layers share nothing: each holds only what it wrote.
  assert.deepEqual(await readdir(b), ['b.txt']);
  assert.deepEqual(await readdir(c), ['c.txt']);

  const mounts = await sn.prepare(ctx, 'work', 'c');
  const upper = await sn.applyTarget(ctx, 'work');
  assert.equal(upper.whiteouts, 'overlay');
  assert.deepEqual(await readdir(upper.dir), []);
  const work = join(upper.dir, '..', 'work');
  assert.deepEqual(mounts, [
    {
      type: 'overlay',
      source: 'overlay',
      options: [`lowerdir=${c}:${b}:${a}`, `upperdir=${upper.dir}`, `workdir=${work}`],
    },
  ]);
  assert.deepEqual(await sn.mounts(ctx, 'work'), mounts);

  // Views: one parent → read-only bind of that layer; several → overlay without upper; none → empty bind.
  assert.deepEqual(await sn.view(ctx, 'v1', 'a'), [{ type: 'bind', source: a, options: ['rbind', 'ro'] }]);
  assert.deepEqual(await sn.view(ctx, 'v3', 'c'), [
    { type: 'overlay', source: 'overlay', options: [`lowerdir=${c}:${b}:${a}`] },
  ]);
  const empty = await sn.view(ctx, 'v0');
  assert.equal(empty.length, 1);
  assert.deepEqual(empty[0]!.options, ['rbind', 'ro']);
  assert.deepEqual(await readdir(empty[0]!.source), []);

  // usage counts the layer alone (its own directory).
  assert.deepEqual(await sn.usage(ctx, 'b'), { size: 1, inodes: 2 });
  assert.deepEqual(
    (await sn.list(ctx, ['kind==committed'])).map((i) => [i.name, i.parent ?? '']),
    [
      ['a', ''],
      ['b', 'a'],
      ['c', 'b'],
    ],
  );
  await assert.rejects(sn.remove(ctx, 'b'), (e: unknown) => isHoistError(e, 'HOIST_FAILED_PRECONDITION'));
});

test('native and overlayfs records are separate', async () => {
  const s = await store();
  await layer(overlay(s), 'only-overlay', undefined, files({}));
  assert.deepEqual(await s.snapshotters.get('native')!.list(ctx), []);
  await assert.rejects(s.snapshotters.get('native')!.stat(ctx, 'only-overlay'), /does not exist: not found/);
  await assert.rejects(
    s.snapshotters.get('native')!.prepare(ctx, 'x', 'only-overlay'),
    /parent snapshot only-overlay does not exist/,
  );
});

test('mounting an overlay chain shows merged layers, whiteouts hide, writes land in the upper dir', async (t) => {
  const s = await store();
  const sn = overlay(s);
  await layer(sn, 'l1', undefined, files({ 'keep.txt': 'one', 'gone.txt': 'doomed', 'dir/x': 'x' }));
  // Layer 2 deletes gone.txt the overlay way (0:0 character device) and changes keep.txt. Creating the
  // device needs root; without it the whiteout part of this test cannot run.
  const root = process.getuid?.() === 0;
  await layer(sn, 'l2', 'l1', async (dir) => {
    await writeFile(join(dir, 'keep.txt'), 'two');
    if (root) execFileSync('mknod', [join(dir, 'gone.txt'), 'c', '0', '0']);
  });
  const mounts = await sn.prepare(ctx, 'rw', 'l2');
  if (await skipUnlessOverlayMounts(t)) return;
  const target = await tempDir('hoist-ovl-mnt-');
  await mountAll(mounts, target);
  try {
    assert.equal(await readFile(join(target, 'keep.txt'), 'utf8'), 'two');
    assert.equal(await readFile(join(target, 'dir', 'x'), 'utf8'), 'x');
    if (root) assert.deepEqual((await readdir(target)).sort(), ['dir', 'keep.txt']);
    await writeFile(join(target, 'new.txt'), 'fresh');
  } finally {
    await unmount(target);
  }
  const { dir: upper } = await sn.applyTarget(ctx, 'rw');
  assert.equal(await readFile(join(upper, 'new.txt'), 'utf8'), 'fresh');
  // The lower layers are untouched.
  assert.equal(await readFile(join((await layerDir(s, 'l1'))!, 'keep.txt'), 'utf8'), 'one');
});

/** The fs/ directory of a committed overlayfs snapshot, from its record. */
async function layerDir(s: LocalStore, key: string): Promise<string | undefined> {
  const row = s.db.get<{ backend_id: number }>(
    "SELECT backend_id FROM snapshots WHERE snapshotter = 'overlayfs' AND key = ?",
    key,
  );
  return row && join(s.root, 'snapshots', 'overlayfs', 'snapshots', String(row.backend_id), 'fs');
}

test('a chain too long for one page of mount options still mounts (relative lowerdirs)', async (t) => {
  const s = await store();
  const sn = overlay(s);
  let parent: string | undefined;
  for (let i = 0; i < 90; i++) {
    await layer(sn, `deep-${i}`, parent, files({ [`f${i}`]: String(i) }));
    parent = `deep-${i}`;
  }
  const mounts: Mount[] = await sn.view(ctx, 'deep-view', parent);
  assert.ok(mounts[0]!.options.join(',').length > 4096, 'the option string exceeds a page');
  if (await skipUnlessOverlayMounts(t)) return;
  const target = await tempDir('hoist-ovl-deep-');
  await mountAll(mounts, target);
  try {
    assert.equal((await readdir(target)).length, 90);
    assert.equal(await readFile(join(target, 'f0'), 'utf8'), '0');
    assert.equal(await readFile(join(target, 'f89'), 'utf8'), '89');
  } finally {
    await unmount(target);
  }
});
