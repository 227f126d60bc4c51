// Overlay mode with the lower layers given (`parents`): the upper directory alone must make the merged
// view right when the layer writes through a lower symlink, links to a lower file, or creates files in a
// directory only a lower layer has.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isHoistError } from '../../src/core/errors.ts';
import { apply, isRoot, outsideState, type PackEntry, packTar, workspace, xattrOf } from './diff-fixtures.ts';

const file = (name: string, body = 'new'): PackEntry => ({ header: { name }, body });
const hard = (name: string, linkname: string): PackEntry => ({ header: { name, type: 'link', linkname } });

async function withLower(t: { after: (fn: () => Promise<void>) => void }) {
  const ws = await workspace();
  t.after(ws.done);
  const lower = join(ws.dir, 'lower'); // next to root, inside the workspace: part of the watched state
  await mkdir(lower);
  return { ws, lower };
}

describe('overlay with parents', () => {
  test('a hardlink to a lower file copies it up (content, owner, mode, times, xattrs) and links it', async (t) => {
    const { ws, lower } = await withLower(t);
    await mkdir(join(lower, 'bin'));
    await writeFile(join(lower, 'bin/busybox'), 'ELF busybox', { mode: 0o755 });
    if (isRoot) execFileSync('chown', ['1000:1001', join(lower, 'bin/busybox')]);
    execFileSync('chmod', ['4755', join(lower, 'bin/busybox')]); // after chown, which clears setuid
    execFileSync('setfattr', ['-n', 'user.origin', '-v', 'lower', join(lower, 'bin/busybox')]);
    await utimes(join(lower, 'bin/busybox'), 1_500_000_000, 1_500_000_000);
    const before = await lstat(join(lower, 'bin/busybox'));

    const r = await apply(await packTar([hard('bin/cat', 'bin/busybox')]), {
      root: ws.root,
      whiteouts: 'overlay',
      parents: [lower],
    });
    assert.deepEqual(r.warnings, []);
    const up = await lstat(join(ws.root, 'bin/busybox'));
    const cat = await lstat(join(ws.root, 'bin/cat'));
    assert.equal(cat.ino, up.ino, 'the link is to the copied-up file');
    assert.notEqual(up.ino, before.ino, 'the lower file is not linked into the upper directory');
    assert.equal(await readFile(join(ws.root, 'bin/cat'), 'utf8'), 'ELF busybox');
    assert.equal(up.mode & 0o7777, 0o4755);
    assert.equal(up.mtimeMs, 1_500_000_000_000);
    if (isRoot) assert.deepEqual([up.uid, up.gid], [1000, 1001]);
    assert.equal(xattrOf(join(ws.root, 'bin/busybox'), 'user.origin'), '0x6c6f776572');
    assert.equal((await lstat(join(lower, 'bin/busybox'))).nlink, 1, 'the lower layer is not modified');
  });

  test('a parent directory only a lower layer has is created with its owner and mode', async (t) => {
    const { ws, lower } = await withLower(t);
    await mkdir(join(lower, 'opt/app'), { recursive: true });
    execFileSync('chmod', ['0711', join(lower, 'opt')]);
    if (isRoot) execFileSync('chown', ['1000:1000', join(lower, 'opt')]);
    await apply(await packTar([file('opt/app/x')]), {
      root: ws.root,
      whiteouts: 'overlay',
      parents: [lower],
    });
    const opt = await lstat(join(ws.root, 'opt'));
    assert.equal(opt.mode & 0o7777, 0o711);
    if (isRoot) assert.equal(opt.uid, 1000);
    // Without parents the same layer gets a default directory.
    const plain = await workspace();
    t.after(plain.done);
    await apply(await packTar([file('opt/app/x')]), { root: plain.root, whiteouts: 'overlay' });
    assert.equal((await lstat(join(plain.root, 'opt'))).mode & 0o7777, 0o755);
  });

  test('a write through a lower symlink lands where the symlink points, nearest layer first', async (t) => {
    const { ws, lower } = await withLower(t);
    const deeper = join(ws.dir, 'deeper');
    await mkdir(join(deeper, 'usr/lib'), { recursive: true });
    await mkdir(join(deeper, 'lib')); // hidden by the nearer layer's symlink
    await mkdir(join(lower, 'usr'));
    await symlink('usr/lib', join(lower, 'lib'));
    await apply(await packTar([file('lib/libfoo.so', 'so')]), {
      root: ws.root,
      whiteouts: 'overlay',
      parents: [lower, deeper],
    });
    assert.equal(await readFile(join(ws.root, 'usr/lib/libfoo.so'), 'utf8'), 'so');
    await assert.rejects(lstat(join(ws.root, 'lib')), { code: 'ENOENT' }, 'no directory hides the symlink');
  });

  test('a lower whiteout hides what is below it', async (t) => {
    const { ws, lower } = await withLower(t);
    const deeper = join(ws.dir, 'deeper');
    await mkdir(join(deeper, 'a'), { recursive: true });
    await writeFile(join(deeper, 'a/f'), 'deleted above');
    execFileSync('mknod', ['-m', '000', join(lower, 'a'), 'c', '0', '0']);
    await assert.rejects(
      apply(await packTar([hard('h', 'a/f')]), {
        root: ws.root,
        whiteouts: 'overlay',
        parents: [lower, deeper],
      }),
      (err) => isHoistError(err, 'HOIST_INVALID_ARGUMENT') && /not in the snapshot/.test(err.message),
    );
  });

  test('lower symlinks: absolute targets resolve inside the root, climbing ones are refused; nothing outside changes', async (t) => {
    const { ws, lower } = await withLower(t);
    await symlink(ws.sentinel, join(lower, 'abs'));
    await symlink('../../../../../../../../sentinel', join(lower, 'rel'));
    await symlink(join(ws.sentinel, 'secret'), join(lower, 'file'));
    const before = await outsideState(ws.dir);
    await assert.rejects(
      apply(await packTar([hard('h', 'file')]), { root: ws.root, whiteouts: 'overlay', parents: [lower] }),
      /not in the snapshot/,
    );
    await apply(await packTar([file('abs/secret', 'a')]), {
      root: ws.root,
      whiteouts: 'overlay',
      parents: [lower],
    });
    await assert.rejects(
      apply(await packTar([file('rel/secret', 'r')]), {
        root: ws.root,
        whiteouts: 'overlay',
        parents: [lower],
      }),
      /goes through symlink 'rel' -> .*, which points above the root/,
    );
    assert.equal(await outsideState(ws.dir), before);
    assert.equal(await readFile(join(ws.root, ws.sentinel, 'secret'), 'utf8'), 'a');
    assert.equal(await readlink(join(lower, 'abs')), ws.sentinel);
  });
});
