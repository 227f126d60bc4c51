import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import type { DirectorySnapshotter } from '../../src/api/snapshots.ts';
import type { Context } from '../../src/core/context.ts';
import { isHoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { formatOwner } from '../../src/leases/owner.ts';
import { mountAll, unmount } from '../../src/snapshots/mount.ts';

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
  const s = await openLocalStore(await tempDir('hoist-snap-native-'));
  stores.push(s);
  return s;
}

const ctx: Context = { namespace: 'default' };
const native = (s: LocalStore): DirectorySnapshotter => s.snapshotters.get('native')!;
const snapshotDirs = (s: LocalStore) => readdir(join(s.root, 'snapshots', 'native', 'snapshots'));

/** Assert that `fn` rejects with a HoistError of `code` whose message matches `message`. */
async function rejects(fn: () => Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(isHoistError(err), `expected a HoistError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

/** Prepare `key` on `parent`, write `files` into it, commit it as `name`. */
async function layer(
  sn: DirectorySnapshotter,
  c: Context,
  name: string,
  parent: string | undefined,
  files: Record<string, string>,
): Promise<void> {
  await sn.prepare(c, `${name}-active`, parent);
  const { dir } = await sn.applyTarget(c, `${name}-active`);
  for (const [path, text] of Object.entries(files)) await writeFile(join(dir, path), text);
  await sn.commit(c, name, `${name}-active`);
}

test('native: a child starts as a copy of its parent; commit keeps the directory; mounts are binds', async () => {
  const s = await store();
  const sn = native(s);
  assert.equal(sn.name, 'native');

  const mounts = await sn.prepare(ctx, 'base-active');
  const target = await sn.applyTarget(ctx, 'base-active');
  assert.deepEqual(target.whiteouts, 'delete');
  assert.deepEqual(mounts, [{ type: 'bind', source: target.dir, options: ['rbind', 'rw'] }]);
  assert.deepEqual(await sn.mounts(ctx, 'base-active'), mounts);
  await writeFile(join(target.dir, 'a.txt'), 'from base');
  await mkdir(join(target.dir, 'etc'));
  await writeFile(join(target.dir, 'etc', 'conf'), 'v1');
  await sn.commit(ctx, 'base', 'base-active', { labels: { role: 'base' } });

  const base = await sn.stat(ctx, 'base');
  assert.equal(base.kind, 'committed');
  assert.equal(base.parent, undefined);
  assert.deepEqual(base.labels, { role: 'base' });
  await rejects(
    () => sn.stat(ctx, 'base-active'),
    'HOIST_NOT_FOUND',
    /^snapshot base-active does not exist: not found$/,
  );

  await sn.prepare(ctx, 'child-active', 'base');
  const child = await sn.applyTarget(ctx, 'child-active');
  assert.notEqual(child.dir, target.dir);
  assert.equal(await readFile(join(child.dir, 'a.txt'), 'utf8'), 'from base');
  assert.equal(await readFile(join(child.dir, 'etc', 'conf'), 'utf8'), 'v1');
  await writeFile(join(child.dir, 'etc', 'conf'), 'v2');
  await rm(join(child.dir, 'a.txt'));
  await sn.commit(ctx, 'child', 'child-active');
  // The parent is untouched by the child's changes.
  assert.equal(await readFile(join(target.dir, 'etc', 'conf'), 'utf8'), 'v1');
  assert.equal(await readFile(join(target.dir, 'a.txt'), 'utf8'), 'from base');
  assert.equal((await sn.stat(ctx, 'child')).parent, 'base');

  // A view is a read-only copy of its parent.
  const view = await sn.view(ctx, 'look', 'child');
  assert.equal(view.length, 1);
  assert.equal(view[0]!.type, 'bind');
  assert.deepEqual(view[0]!.options, ['rbind', 'ro']);
  assert.equal(await readFile(join(view[0]!.source, 'etc', 'conf'), 'utf8'), 'v2');
  assert.equal((await sn.stat(ctx, 'look')).kind, 'view');
  await rejects(() => sn.applyTarget(ctx, 'look'), 'HOIST_FAILED_PRECONDITION', /"look" is not active/);
  await rejects(
    () => sn.commit(ctx, 'x', 'look'),
    'HOIST_FAILED_PRECONDITION',
    /is not active: failed precondition/,
  );
});

test('containerd errors: exists, missing or uncommitted parent, children, committed mounts', async () => {
  const s = await store();
  const sn = native(s);
  await layer(sn, ctx, 'a', undefined, { f: '1' });
  await sn.prepare(ctx, 'work', 'a');

  await rejects(
    () => sn.prepare(ctx, 'work', 'a'),
    'HOIST_ALREADY_EXISTS',
    /^snapshot "work": already exists$/,
  );
  await rejects(
    () => sn.prepare(ctx, 'n', 'nope'),
    'HOIST_NOT_FOUND',
    /^parent snapshot nope does not exist: not found$/,
  );
  await rejects(
    () => sn.prepare(ctx, 'n', 'work'),
    'HOIST_INVALID_ARGUMENT',
    /^parent "work" is not committed snapshot: invalid argument$/,
  );
  await rejects(() => sn.commit(ctx, 'a', 'work'), 'HOIST_ALREADY_EXISTS', /^snapshot "a": already exists$/);
  await rejects(
    () => sn.commit(ctx, 'b', 'missing'),
    'HOIST_NOT_FOUND',
    /^snapshot missing does not exist: not found$/,
  );
  await rejects(
    () => sn.mounts(ctx, 'a'),
    'HOIST_FAILED_PRECONDITION',
    /not active or view: failed precondition/,
  );
  await rejects(() => sn.prepare(ctx, ''), 'HOIST_INVALID_ARGUMENT', /must not be empty/);
  await rejects(
    () => sn.prepare(ctx, 'big', undefined, { labels: { k: 'x'.repeat(5000) } }),
    'HOIST_INVALID_ARGUMENT',
    /^info.Labels: label key and value length/,
  );
  await rejects(
    () => sn.prepare({ namespace: '' }, 'k'),
    'HOIST_FAILED_PRECONDITION',
    /namespace is required/,
  );
  // Failed prepares left no directories behind.
  assert.equal((await snapshotDirs(s)).length, 2);

  await rejects(
    () => sn.remove(ctx, 'a'),
    'HOIST_FAILED_PRECONDITION',
    /^cannot remove snapshot with child: failed precondition$/,
  );
  await rejects(
    () => sn.remove(ctx, 'ghost'),
    'HOIST_NOT_FOUND',
    /^snapshot ghost does not exist: not found$/,
  );
  await sn.remove(ctx, 'work');
  await sn.remove(ctx, 'a');
  assert.deepEqual(await sn.list(ctx), []);
  assert.deepEqual(await snapshotDirs(s), []);
});

test('stat, list with filters, update of labels only', async () => {
  const s = await store();
  const sn = native(s);
  await layer(sn, ctx, 'a', undefined, {});
  await sn.prepare(ctx, 'b-active', 'a', { labels: { team: 'x', tier: 'web' } });
  await sn.commit(ctx, 'b', 'b-active', { labels: { team: 'y' } });
  await sn.prepare(ctx, 'c', 'b', { labels: { team: 'x' } });
  await sn.view(ctx, 'v', 'a');

  // Commit replaces the active snapshot's labels (containerd does not inherit them).
  assert.deepEqual((await sn.stat(ctx, 'b')).labels, { team: 'y' });
  const names = async (filters?: string[]) => (await sn.list(ctx, filters)).map((i) => i.name);
  assert.deepEqual(await names(), ['a', 'b', 'c', 'v']);
  assert.deepEqual(await names(['kind==committed']), ['a', 'b']);
  assert.deepEqual(await names(['kind==active', 'kind==view']), ['c', 'v']);
  assert.deepEqual(await names(['parent==a']), ['b', 'v']);
  assert.deepEqual(await names(['labels.team==x']), ['c']);
  assert.deepEqual(await names(['labels."team"!=x,kind==committed']), ['a', 'b']);
  assert.deepEqual(await names(['name~=^[ab]$']), ['a', 'b']);
  assert.deepEqual(await names(['labels.team']), ['b', 'c']);

  const before = await sn.stat(ctx, 'b');
  const u1 = await sn.update(ctx, { name: 'b', labels: { extra: '1', team: 'ignored' } }, ['labels.extra']);
  assert.deepEqual(u1.labels, { team: 'y', extra: '1' });
  assert.ok(u1.updated.getTime() >= before.updated.getTime());
  assert.equal(u1.created.getTime(), before.created.getTime());
  const u2 = await sn.update(ctx, { name: 'b', labels: {} }, ['labels.team']);
  assert.deepEqual(u2.labels, { extra: '1' });
  const u3 = await sn.update(ctx, { name: 'b', labels: { only: 'this' } });
  assert.deepEqual(u3.labels, { only: 'this' });
  assert.deepEqual((await sn.stat(ctx, 'b')).labels, { only: 'this' });
  await rejects(
    () => sn.update(ctx, { name: 'b', labels: {} }, ['parent']),
    'HOIST_INVALID_ARGUMENT',
    /^cannot update "parent" field on snapshot "b": invalid argument$/,
  );
  await rejects(() => sn.update(ctx, { name: 'zz', labels: {} }), 'HOIST_NOT_FOUND', /zz does not exist/);
  await rejects(() => sn.list(ctx, ['labels.=']), 'HOIST_INVALID_ARGUMENT', /invalid filter/);
});

test('usage: regular file bytes once per inode, inode count; cached once committed', async () => {
  const s = await store();
  const sn = native(s);
  await sn.prepare(ctx, 'u-active');
  const { dir } = await sn.applyTarget(ctx, 'u-active');
  await writeFile(join(dir, 'data'), Buffer.alloc(1000, 1));
  await link(join(dir, 'data'), join(dir, 'hardlink'));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'small'), 'abc');
  // root, data (= hardlink), sub, small
  assert.deepEqual(await sn.usage(ctx, 'u-active'), { size: 1003, inodes: 4 });
  // Active snapshots are measured every time.
  await writeFile(join(dir, 'more'), 'xy');
  assert.deepEqual(await sn.usage(ctx, 'u-active'), { size: 1005, inodes: 5 });

  await sn.commit(ctx, 'u', 'u-active');
  assert.deepEqual(await sn.usage(ctx, 'u'), { size: 1005, inodes: 5 });
  // Committed: the cached value is returned (a committed snapshot must not change on disk).
  await writeFile(join(dir, 'sneaky'), 'changed behind our back');
  assert.deepEqual(await sn.usage(ctx, 'u'), { size: 1005, inodes: 5 });
  const row = s.db.get<{ size: number; inodes: number }>(
    "SELECT size, inodes FROM snapshots WHERE key = 'u'",
  );
  assert.deepEqual({ ...row }, { size: 1005, inodes: 5 });
  await rejects(() => sn.usage(ctx, 'nope'), 'HOIST_NOT_FOUND', /nope does not exist/);
});

test('namespaces are isolated; a namespace with snapshots cannot be deleted', async () => {
  const s = await store();
  const sn = native(s);
  const a: Context = { namespace: 'team-a' };
  const b: Context = { namespace: 'team-b' };
  await layer(sn, a, 'same', undefined, { who: 'a' });
  await layer(sn, b, 'same', undefined, { who: 'b' });
  await sn.prepare(a, 'only-a', 'same');
  assert.deepEqual(
    (await sn.list(a)).map((i) => i.name),
    ['only-a', 'same'],
  );
  assert.deepEqual(
    (await sn.list(b)).map((i) => i.name),
    ['same'],
  );
  await rejects(() => sn.stat(b, 'only-a'), 'HOIST_NOT_FOUND', /only-a does not exist/);
  await rejects(() => sn.prepare(b, 'x', 'only-a'), 'HOIST_NOT_FOUND', /parent snapshot only-a/);
  // Same name, different data.
  await sn.prepare(b, 'wb', 'same');
  assert.equal(await readFile(join((await sn.applyTarget(a, 'only-a')).dir, 'who'), 'utf8'), 'a');
  assert.equal(await readFile(join((await sn.applyTarget(b, 'wb')).dir, 'who'), 'utf8'), 'b');

  await rejects(
    () => s.namespaces.delete('team-b'),
    'HOIST_FAILED_PRECONDITION',
    /^namespace "team-b" must be empty, but it still has snapshots on "native" snapshotter: failed precondition$/,
  );
  await sn.remove(b, 'wb');
  await sn.remove(b, 'same');
  await s.namespaces.delete('team-b');
  assert.deepEqual(
    (await sn.list(a)).map((i) => i.name),
    ['only-a', 'same'],
  );
});

test('leases: prepare, view and commit add the snapshot; commit moves the lease from key to name', async () => {
  const s = await store();
  const sn = native(s);
  await s.leases.create(ctx, { id: 'L' });
  const lctx: Context = { ...ctx, lease: 'L' };
  await sn.prepare(lctx, 'k');
  assert.deepEqual(await s.leases.listResources(ctx, 'L'), [{ id: 'k', type: 'snapshots/native' }]);
  await sn.commit(lctx, 'n', 'k');
  await sn.view(lctx, 'v', 'n');
  assert.deepEqual(await s.leases.listResources(ctx, 'L'), [
    { id: 'n', type: 'snapshots/native' },
    { id: 'v', type: 'snapshots/native' },
  ]);
  // An existing key still joins the lease, as in containerd, before "already exists".
  await s.leases.create(ctx, { id: 'M' });
  await rejects(
    () => sn.prepare({ ...ctx, lease: 'M' }, 'v', 'n'),
    'HOIST_ALREADY_EXISTS',
    /"v": already exists/,
  );
  assert.deepEqual(await s.leases.listResources(ctx, 'M'), [{ id: 'v', type: 'snapshots/native' }]);
  await sn.remove(lctx, 'v');
  assert.deepEqual(await s.leases.listResources(ctx, 'L'), [{ id: 'n', type: 'snapshots/native' }]);
  await rejects(
    () => sn.prepare({ ...ctx, lease: 'gone' }, 'z'),
    'HOIST_NOT_FOUND',
    /^lease does not exist: not found$/,
  );
  assert.equal((await snapshotDirs(s)).length, 1);
});

test('cleanup removes directories without a record and dead processes’ staging, nothing else', async () => {
  const s = await store();
  const sn = native(s);
  await layer(sn, ctx, 'keep', undefined, { f: 'x' });
  const base = join(s.root, 'snapshots', 'native', 'snapshots');
  const deadOwner = formatOwner({ bootId: 'not-this-boot', pid: 1, startTicks: '1' });
  const dead = `new-${Buffer.from(deadOwner).toString('base64url')}.aa`;
  const live = `new-${Buffer.from(s.owner).toString('base64url')}.bb`;
  for (const d of ['999', 'rm-7.cc', dead, live, 'unrelated']) {
    await mkdir(join(base, d, 'fs'), { recursive: true });
    await writeFile(join(base, d, 'fs', 'file'), 'leftover');
  }
  const kept = (await snapshotDirs(s)).filter((n) => /^[0-9]+$/.test(n) && n !== '999');
  assert.equal(kept.length, 1);

  assert.deepEqual(await sn.cleanup(ctx), { removed: 3 });
  assert.deepEqual((await snapshotDirs(s)).sort(), [...kept, live, 'unrelated'].sort());
  assert.equal(await readFile(join(base, kept[0]!, 'fs', 'f'), 'utf8'), 'x');
  assert.equal((await sn.stat(ctx, 'keep')).kind, 'committed');
});

const SRC = resolve(import.meta.dirname, '../../src');
const CHILD = `
import { openLocalStore } from ${JSON.stringify(`${SRC}/embedded/store.ts`)};
const store = await openLocalStore(process.argv[2]);
const sn = store.snapshotters.get('native');
try {
  await sn.prepare({ namespace: 'default' }, 'contended', 'base');
  console.log('ok');
} catch (err) {
  console.log(err.code ?? String(err));
}
store.close();
`;

function runChild(script: string, root: string): Promise<string> {
  // Drop NODE_TEST_CONTEXT, or the child would talk the test runner's protocol on stdout.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [script, root], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      out += d;
    });
    p.on('error', rej);
    p.on('close', () => res(out.trim()));
  });
}

test('several processes preparing one key: one snapshot, the others "already exists", no leftovers', async () => {
  const s = await store();
  await layer(native(s), ctx, 'base', undefined, { f: 'shared' });
  const script = join(await tempDir('hoist-snap-child-'), 'child.ts');
  await writeFile(script, CHILD);
  const results = await Promise.all(Array.from({ length: 4 }, () => runChild(script, s.root)));
  assert.deepEqual(results.sort(), [
    'HOIST_ALREADY_EXISTS',
    'HOIST_ALREADY_EXISTS',
    'HOIST_ALREADY_EXISTS',
    'ok',
  ]);
  // One directory per record (base, contended): the losers' staged copies are gone.
  assert.equal((await snapshotDirs(s)).length, 2);
  const { dir } = await native(s).applyTarget(ctx, 'contended');
  assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'shared');
});

test('a bind mount of a native view is read-only (root only)', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('mounting needs root');
    return;
  }
  const s = await store();
  const sn = native(s);
  await layer(sn, ctx, 'm', undefined, { hello: 'world' });
  const mounts = await sn.view(ctx, 'mv', 'm');
  const target = await tempDir('hoist-mnt-');
  await mountAll(mounts, target);
  try {
    assert.equal(await readFile(join(target, 'hello'), 'utf8'), 'world');
    await assert.rejects(writeFile(join(target, 'new'), 'x'), /EROFS|read-only/i);
  } finally {
    await unmount(target);
  }
  await assert.rejects(unmount(target), /is not mounted/);
  assert.ok((await stat(target)).isDirectory());
});

test('a layer prepared for the applier shares its parent files; nothing written there or later reaches the parent', async () => {
  const s = await store();
  const sn = native(s);
  await layer(sn, ctx, 'base', undefined, { keep: 'keep\n', replaced: 'old\n', gone: 'gone\n' });
  const baseDir = (await sn.dirs(ctx, 'base')).dir;

  // What the applier does to a replacesFiles snapshot: whiteouts unlink, files are created anew.
  await sn.prepare(ctx, 'child-active', 'base', { replacesFiles: true });
  const { dir } = await sn.applyTarget(ctx, 'child-active');
  assert.equal(
    (await stat(join(dir, 'keep'))).ino,
    (await stat(join(baseDir, 'keep'))).ino,
    'an unchanged file is the parent file (hardlinked, not copied)',
  );
  await rm(join(dir, 'gone'));
  await rm(join(dir, 'replaced'));
  await writeFile(join(dir, 'replaced'), 'new\n');
  await sn.commit(ctx, 'child', 'child-active');
  assert.equal(await readFile(join(baseDir, 'replaced'), 'utf8'), 'old\n');
  assert.equal(await readFile(join(baseDir, 'gone'), 'utf8'), 'gone\n');

  // A snapshot anyone else writes into (a container's) is a real copy: writing in place stays there.
  await sn.prepare(ctx, 'rw', 'child');
  const rw = (await sn.applyTarget(ctx, 'rw')).dir;
  assert.notEqual((await stat(join(rw, 'keep'))).ino, (await stat(join(baseDir, 'keep'))).ino);
  await writeFile(join(rw, 'keep'), 'changed in place\n', { flag: 'r+' });
  assert.equal(await readFile(join(baseDir, 'keep'), 'utf8'), 'keep\n');
  const childDir = (await sn.dirs(ctx, 'child')).dir;
  assert.equal(await readFile(join(childDir, 'keep'), 'utf8'), 'keep\n');
});
