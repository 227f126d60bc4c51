// Hostile layers: no entry may create, modify or follow anything outside the snapshot root. Every case
// runs next to a sentinel directory whose complete state (names, modes, owners, times, contents,
// xattrs) must be identical afterwards. Escapes by name, and writes through a symlink that climbs above
// the root, are refused with an error naming the entry; absolute symlink targets are resolved inside the
// root, as a chroot would (images rely on `var/run -> /run`), so writes through them stay inside.
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isHoistError } from '../../src/core/errors.ts';
import {
  apply,
  gzip,
  outsideState,
  type PackEntry,
  packTar,
  rawEntry,
  rawTar,
  TGZ,
  workspace,
  xattrOf,
} from './diff-fixtures.ts';

type Ws = Awaited<ReturnType<typeof workspace>>;

interface Case {
  /** The layer, built once the workspace (and so the sentinel's absolute path) is known. */
  layer: (ws: Ws) => Promise<Buffer> | Buffer;
  whiteouts?: 'delete' | 'overlay';
  /** Expected refusal message; without it the layer must apply (contained). */
  refused?: RegExp;
}

async function hostile(t: { after: (fn: () => Promise<void>) => void }, c: Case): Promise<Ws> {
  const ws = await workspace();
  t.after(ws.done);
  const layer = await c.layer(ws);
  const before = await outsideState(ws.dir);
  let error: unknown;
  try {
    await apply(layer, { root: ws.root, whiteouts: c.whiteouts ?? 'delete', privileged: true });
  } catch (err) {
    error = err;
  }
  assert.equal(await outsideState(ws.dir), before, 'nothing outside the root changed');
  if (c.refused) {
    assert.ok(isHoistError(error, 'HOIST_INVALID_ARGUMENT'), `expected a refusal, got ${error}`);
    assert.match(error.message, c.refused);
    assert.match(error.message, /the layer is refused/);
  } else {
    assert.equal(error, undefined, `expected the layer to apply, got ${error}`);
  }
  return ws;
}

const file = (name: string, body = 'pwned'): PackEntry => ({ header: { name }, body });
const link = (name: string, linkname: string): PackEntry => ({ header: { name, type: 'symlink', linkname } });
const hard = (name: string, linkname: string): PackEntry => ({ header: { name, type: 'link', linkname } });
const dir = (name: string, mode = 0o755): PackEntry => ({ header: { name, type: 'directory', mode } });
const inRoot = (ws: Ws, abs: string) => join(ws.root, abs);

describe('hostile layers: names', () => {
  for (const name of [
    '../escape',
    'a/../../escape',
    './../sentinel/secret',
    '/../sentinel/secret',
    'a/b/../../../x',
  ]) {
    test(`'${name}' is refused`, async (t) => {
      const quoted = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      await hostile(t, {
        layer: () => packTar([file(name)]),
        refused: new RegExp(`layer entry '${quoted}' escapes the snapshot root; the layer is refused`),
      });
    });
  }

  test('the same refusal through gzip, after good entries', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const before = await outsideState(ws.dir);
    const layer = gzip(await packTar([file('ok'), file('../sentinel/secret')]));
    await assert.rejects(
      apply(layer, { root: ws.root, whiteouts: 'delete', mediaType: TGZ }),
      /escapes the snapshot root/,
    );
    assert.equal(await outsideState(ws.dir), before);
  });

  test('an absolute name is applied inside the root', async (t) => {
    const ws = await hostile(t, { layer: (w) => packTar([file(`${w.sentinel}/secret`)]) });
    assert.equal(await readFile(inRoot(ws, `${ws.sentinel}/secret`), 'utf8'), 'pwned');
  });

  test('a whiteout or opaque marker with an escaping name is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([file('../sentinel/.wh.secret', '')]),
      refused: /escapes the snapshot root/,
    });
    await hostile(t, {
      layer: () => packTar([file('../.wh..wh..opq', '')]),
      refused: /escapes the snapshot root/,
    });
    await hostile(t, { layer: () => packTar([file('a/.wh...', '')]), refused: /is not a valid whiteout/ });
    await hostile(t, { layer: () => packTar([file('.wh..', '')]), refused: /is not a valid whiteout/ });
  });
});

describe('hostile layers: symlinks', () => {
  test('writing through a planted absolute symlink stays inside the root', async (t) => {
    const ws = await hostile(t, { layer: (w) => packTar([link('evil', w.sentinel), file('evil/secret')]) });
    assert.equal(await readFile(inRoot(ws, `${ws.sentinel}/secret`), 'utf8'), 'pwned');
    assert.equal(await readlink(join(ws.root, 'evil')), ws.sentinel, 'the symlink itself is kept as written');
  });

  test('writing through a relative symlink that climbs above the root is refused', async (t) => {
    const ws = await hostile(t, {
      layer: () => packTar([dir('a'), link('a/up', '../../../../../../../../sentinel'), file('a/up/secret')]),
      refused:
        /'a\/up\/secret' goes through symlink 'a\/up' -> '\.\.\/\.\.\/.*', which points above the root/,
    });
    await assert.rejects(lstat(join(ws.root, 'sentinel')), /ENOENT/);
  });

  test('a hardlink through a symlink that climbs above the root is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([link('up', '../..'), hard('h', 'up/etc/passwd')]),
      refused: /goes through symlink 'up' -> '\.\.\/\.\.', which points above the root/,
    });
  });

  test('chained symlinks, a symlink to /, and a directory entry through a symlink stay inside', async (t) => {
    const ws = await hostile(t, {
      layer: (w) =>
        packTar([
          link('a', 'b'),
          link('b', w.sentinel),
          file('a/secret'),
          link('top', '/'),
          file('top/etc/passwd'),
          link('d', `${w.sentinel}/..`),
          dir('d/sentinel/sub', 0o777),
        ]),
    });
    assert.equal(await readFile(inRoot(ws, `${ws.sentinel}/secret`), 'utf8'), 'pwned');
    assert.equal(await readFile(join(ws.root, 'etc/passwd'), 'utf8'), 'pwned');
    assert.ok((await lstat(inRoot(ws, `${ws.sentinel}/sub`))).isDirectory());
  });

  test('an entry over a planted symlink replaces the symlink instead of following it', async (t) => {
    for (const over of [
      file('s', 'replaced'),
      dir('s', 0o777),
      link('s', 'elsewhere'),
      { header: { name: 's', type: 'fifo' } } as PackEntry,
      { header: { name: 's', type: 'character-device', devmajor: 1, devminor: 3 } } as PackEntry,
      { header: { name: 's', mode: 0o777, mtime: new Date(0) }, body: '' } as PackEntry,
    ]) {
      const ws = await hostile(t, { layer: (w) => packTar([link('s', `${w.sentinel}/secret`), over]) });
      const st = await lstat(join(ws.root, 's'));
      assert.equal(st.isSymbolicLink(), over.header.type === 'symlink', `${over.header.type}`);
    }
  });

  test('xattrs and times on a symlink to outside land on the symlink', async (t) => {
    const ws = await hostile(t, {
      layer: (w) =>
        rawTar(
          rawEntry({
            name: 's',
            type: '2',
            linkname: `${w.sentinel}/secret`,
            mtime: 12345,
            pax: { 'SCHILY.xattr.trusted.evil': 'x' },
          }),
        ),
    });
    assert.equal(xattrOf(join(ws.root, 's'), 'trusted.evil'), '0x78');
    assert.equal((await lstat(join(ws.root, 's'))).mtimeMs, 12345000);
  });

  test('a symlink loop is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([link('l1', 'l2'), link('l2', 'l1'), file('l1/x')]),
      refused: /layer entry 'l1\/x' goes through too many levels of symbolic links/,
    });
  });

  test('a parent that is a file is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([file('f'), file('f/x')]),
      refused: /needs 'f' to be a directory/,
    });
  });
});

describe('hostile layers: hardlinks', () => {
  test('a hardlink target that climbs out is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([hard('h', '../sentinel/secret')]),
      refused: /layer entry 'h' is a hardlink to '..\/sentinel\/secret', outside the snapshot root/,
    });
  });

  test('absolute and symlinked hardlink targets resolve inside the root (and are missing there)', async (t) => {
    await hostile(t, {
      layer: (w) => packTar([hard('h', `${w.sentinel}/secret`)]),
      refused: /which is not in the snapshot/,
    });
    await hostile(t, {
      layer: (w) => packTar([link('s', w.sentinel), hard('h', 's/secret')]),
      refused: /which is not in the snapshot/,
    });
    await hostile(t, {
      layer: (w) => packTar([link('s', `${w.sentinel}/secret`), hard('h', 's')]),
      refused: /which is not in the snapshot/,
    });
  });

  test('a hardlink to a directory or a device is refused', async (t) => {
    await hostile(t, {
      layer: () => packTar([dir('d'), hard('h', 'd')]),
      refused: /which is not a regular file/,
    });
    await hostile(t, {
      layer: () => packTar([{ header: { name: 'p', type: 'fifo' } }, hard('h', 'p')]),
      refused: /which is not a regular file/,
    });
  });

  test('a hardlink through an in-root symlink links the in-root file', async (t) => {
    const ws = await hostile(t, {
      layer: (w) =>
        packTar([file(`${w.sentinel}/secret`, 'inner'), link('s', w.sentinel), hard('h', 's/secret')]),
    });
    const h = await lstat(join(ws.root, 'h'));
    assert.equal(h.ino, (await lstat(inRoot(ws, `${ws.sentinel}/secret`))).ino);
    assert.equal(await readFile(join(ws.root, 'h'), 'utf8'), 'inner');
  });

  test('a hardlink over a symlink replaces the symlink', async (t) => {
    const ws = await hostile(t, {
      layer: (w) => packTar([file('f', 'f'), link('s', `${w.sentinel}/secret`), hard('s', 'f')]),
    });
    assert.equal((await lstat(join(ws.root, 's'))).ino, (await lstat(join(ws.root, 'f'))).ino);
  });
});

describe('hostile layers: whiteouts through symlinks', () => {
  for (const whiteouts of ['delete', 'overlay'] as const) {
    test(`${whiteouts}: whiteouts and opaque markers under a symlink to outside stay inside`, async (t) => {
      const ws = await hostile(t, {
        whiteouts,
        layer: (w) =>
          packTar([link('evil', w.sentinel), file('evil/.wh.secret', ''), file('evil/.wh..wh..opq', '')]),
      });
      if (whiteouts === 'overlay') {
        const st = await lstat(inRoot(ws, `${ws.sentinel}/secret`));
        assert.ok(st.isCharacterDevice());
        assert.equal(xattrOf(inRoot(ws, ws.sentinel), 'trusted.overlay.opaque'), '0x79');
      }
    });
  }

  test('delete: a whiteout of a symlink removes the symlink, not its target', async (t) => {
    const ws = await hostile(t, {
      layer: (w) =>
        packTar([
          link('s', w.sentinel),
          link('t', `${w.sentinel}/secret`),
          file('.wh.s', ''),
          file('.wh.t', ''),
        ]),
    });
    await assert.rejects(lstat(join(ws.root, 's')), { code: 'ENOENT' });
    await assert.rejects(lstat(join(ws.root, 't')), { code: 'ENOENT' });
  });
});

describe('hostile layers: property', () => {
  // Random layers made of names drawn from a hostile alphabet, with symlinks pointing everywhere.
  const part = fc.constantFrom('a', 'b', '..', '.', '', 'sentinel', 'secret', '.wh.a', '.wh..wh..opq');
  const path = fc
    .tuple(fc.boolean(), fc.array(part, { minLength: 1, maxLength: 4 }))
    .map(([abs, parts]) => `${abs ? '/' : ''}${parts.join('/')}`);
  const target = fc.oneof(
    path,
    fc.constantFrom('SENTINEL', 'SENTINEL/secret', '/', '../../../../..', '../sentinel'),
  );
  const entry = fc.oneof(
    path.map((name) => ({ kind: 'file' as const, name, target: '' })),
    path.map((name) => ({ kind: 'dir' as const, name, target: '' })),
    fc.tuple(path, target).map(([name, t]) => ({ kind: 'symlink' as const, name, target: t })),
    fc.tuple(path, target).map(([name, t]) => ({ kind: 'link' as const, name, target: t })),
  );

  for (const whiteouts of ['delete', 'overlay'] as const) {
    test(`${whiteouts}: any layer either applies inside the root or is refused`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 8 }), async (entries) => {
          const ws = await workspace();
          try {
            const fill = (s: string) => s.replace('SENTINEL', ws.sentinel);
            // Overlay: lower layers with hostile symlinks of their own; they are outside the root, so
            // the state check also proves they are never modified.
            const parents: string[] = [];
            if (whiteouts === 'overlay') {
              const lower = join(ws.dir, 'lower');
              await mkdir(join(lower, 'sentinel'), { recursive: true });
              await writeFile(join(lower, 'secret'), 'lower');
              await symlink(ws.sentinel, join(lower, 'a'));
              await symlink('../../../..', join(lower, 'b'));
              await symlink(`${ws.sentinel}/secret`, join(lower, 'sentinel/secret'));
              parents.push(lower);
            }
            const layer = await packTar(
              entries.map((e): PackEntry => {
                if (e.kind === 'file') return file(e.name);
                if (e.kind === 'dir') return dir(e.name, 0o777);
                return { header: { name: e.name, type: e.kind, linkname: fill(e.target) } };
              }),
            );
            const before = await outsideState(ws.dir);
            try {
              await apply(layer, { root: ws.root, whiteouts, privileged: true, parents });
            } catch (err) {
              assert.ok(isHoistError(err), `not a HoistError: ${(err as Error).stack}`);
            }
            assert.equal(await outsideState(ws.dir), before);
          } finally {
            await ws.done();
          }
        }),
        { numRuns: 60 },
      );
    });
  }
});
