import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { apply, type PackEntry, packTar, workspace, xattrOf } from './diff-fixtures.ts';

const file = (name: string, body = 'new', uid = 0): PackEntry => ({ header: { name, uid, gid: uid }, body });
const dir = (name: string): PackEntry => ({ header: { name, type: 'directory' } });
const wh = (name: string, uid = 0): PackEntry => ({ header: { name, uid, gid: uid }, body: '' });

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** A lower layer's content, as the native snapshotter's copy of the parent would hold it. */
async function lowerTree(root: string): Promise<void> {
  for (const d of ['a', 'd/sub', 'opq/olddir', 'keep']) await mkdir(join(root, d), { recursive: true });
  for (const f of ['a/x', 'a/y', 'd/1', 'd/sub/2', 'opq/old', 'opq/olddir/f', 'keep/k']) {
    await writeFile(join(root, f), 'lower');
  }
}

describe('whiteouts: delete (native snapshotter)', () => {
  test('.wh.x removes x; opaque empties lower content but keeps this layer’s entries', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    await lowerTree(ws.root);
    const layer = await packTar([
      wh('a/.wh.x'),
      wh('.wh.d'),
      dir('opq'),
      file('opq/before'),
      dir('opq/newdir'),
      file('opq/newdir/f'),
      wh('opq/.wh..wh..opq'),
      file('opq/after'),
      wh('.wh.missing'),
      wh('nothere/.wh.x'),
      wh('a/.wh..wh.plnk'),
    ]);
    const r = await apply(layer, { root: ws.root, whiteouts: 'delete' });
    assert.deepEqual(r.warnings, []);
    assert.equal(await exists(join(ws.root, 'a/x')), false);
    assert.equal(await exists(join(ws.root, 'a/y')), true);
    assert.equal(await exists(join(ws.root, 'd')), false, 'a directory whiteout removes the whole tree');
    assert.deepEqual((await readdir(join(ws.root, 'opq'))).sort(), ['after', 'before', 'newdir']);
    assert.deepEqual(await readdir(join(ws.root, 'opq/newdir')), ['f']);
    assert.equal(await exists(join(ws.root, 'keep/k')), true);
    assert.equal(await exists(join(ws.root, 'nothere')), false, 'a whiteout creates nothing');
    const names = await readdir(ws.root);
    assert.ok(!names.some((n) => n.startsWith('.wh.')), 'no whiteout files are written');
  });

  test('opaque keeps directories this layer created implicitly (entries without parent entries)', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    await lowerTree(ws.root);
    await apply(await packTar([file('opq/implicit/f'), wh('opq/.wh..wh..opq')]), {
      root: ws.root,
      whiteouts: 'delete',
    });
    assert.deepEqual(await readdir(join(ws.root, 'opq')), ['implicit']);
    assert.deepEqual(await readdir(join(ws.root, 'opq/implicit')), ['f']);
  });

  test('a whiteout followed by a new entry of the same name (replace) leaves the new entry', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    await lowerTree(ws.root);
    await apply(await packTar([wh('.wh.d'), file('d', 'now a file')]), {
      root: ws.root,
      whiteouts: 'delete',
    });
    assert.ok((await lstat(join(ws.root, 'd'))).isFile());
  });
});

describe('whiteouts: overlay (overlayfs upper directory)', () => {
  test('.wh.x becomes a 0:0 character device; opaque sets trusted.overlay.opaque=y', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await packTar([
      dir('a'),
      wh('a/.wh.x'),
      wh('.wh.d', 1000),
      wh('.wh.e'),
      dir('opq'),
      wh('opq/.wh..wh..opq'),
      file('opq/new'),
      file('gone'),
      wh('.wh.gone'),
      wh('deep/er/.wh.y'),
      wh('a/.wh..wh.plnk'),
    ]);
    const r = await apply(layer, { root: ws.root, whiteouts: 'overlay', privileged: true });
    assert.deepEqual(r.warnings, []);
    for (const p of ['a/x', 'd', 'e', 'gone', 'deep/er/y']) {
      const st = await lstat(join(ws.root, p));
      assert.ok(st.isCharacterDevice(), `${p} is a whiteout device`);
      assert.equal(st.rdev, 0, `${p} is 0:0`);
      assert.equal(st.mode & 0o7777, 0, `${p} has mode 000`);
    }
    assert.equal((await lstat(join(ws.root, 'd'))).uid, 1000, 'whiteouts are owned as the header says');
    assert.equal((await lstat(join(ws.root, 'e'))).uid, 0);
    assert.equal(xattrOf(join(ws.root, 'opq'), 'trusted.overlay.opaque'), '0x79');
    assert.equal(xattrOf(join(ws.root, 'a'), 'trusted.overlay.opaque'), undefined);
    assert.ok((await lstat(join(ws.root, 'opq/new'))).isFile());
    const names = await readdir(ws.root);
    assert.ok(!names.some((n) => n.startsWith('.wh.') || n.startsWith('.hoist-')), names.join(' '));
  });

  test('without privileges the opaque marker uses user.overlay.opaque and says so once', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await packTar([dir('o1'), wh('o1/.wh..wh..opq'), dir('o2'), wh('o2/.wh..wh..opq')]);
    const r = await apply(layer, { root: ws.root, whiteouts: 'overlay', privileged: false });
    assert.equal(xattrOf(join(ws.root, 'o1'), 'user.overlay.opaque'), '0x79');
    assert.equal(xattrOf(join(ws.root, 'o2'), 'user.overlay.opaque'), '0x79');
    assert.equal(xattrOf(join(ws.root, 'o1'), 'trusted.overlay.opaque'), undefined);
    assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
    assert.match(r.warnings[0]!, /user\.overlay\.opaque.*userxattr/);
  });

  test('an opaque directory removed later in the same layer takes its pending xattr with it', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await packTar([dir('o'), wh('o/.wh..wh..opq'), wh('.wh.o'), file('o', 'file now')]);
    await apply(layer, { root: ws.root, whiteouts: 'overlay', privileged: true });
    assert.ok((await lstat(join(ws.root, 'o'))).isFile());
    assert.equal(xattrOf(join(ws.root, 'o'), 'trusted.overlay.opaque'), undefined);
  });
});
