// Parallel unpack's promise: a layer applied ahead of its lowers (deferLowers) and settled against them
// afterwards leaves the same upper directory as one applied on top of its lowers, for every case where
// the lowers matter: parent directories the layer does not list, writes through a lower symlink, a
// hardlink to a lower file, whiteouts, a directory entry after its contents.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { applyLayer, settleLayer } from '../../src/diff/apply.ts';
import { isRoot, type PackEntry, packTar, TAR, workspace, xattrDump } from './diff-fixtures.ts';

const T1 = new Date('2020-05-06T07:08:09Z');
const T2 = new Date('2021-01-02T03:04:05Z');
const RECENT_MS = Date.now() - 3600_000;

/** Every path under `dir` with its type, mode, owner, times (old ones only: "now" differs), content. */
function describeTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const abs = join(dir, p);
      const st = lstatSync(abs);
      const kind = st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? `link->${readlinkSync(abs)}`
          : st.isCharacterDevice()
            ? `chr ${st.rdev}`
            : `file ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 12)} nlink=${st.nlink}`;
      const mtime = st.mtimeMs < RECENT_MS ? st.mtimeMs : 'now';
      out.push(`${p} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${mtime}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  out.push(xattrDump(dir, true).replaceAll(dir, '<root>'));
  return out;
}

async function tarOf(entries: PackEntry[]): Promise<Buffer> {
  return packTar(entries);
}

interface Case {
  name: string;
  lower: PackEntry[];
  upper: PackEntry[];
  /** What the ahead apply must report: settled in place, refused at settle, or stopped for its lowers. */
  expect: 'settled' | 'redo' | 'needs-lowers';
}

const cases: Case[] = [
  {
    name: 'parent directories the layer does not list take the lower ones metadata',
    lower: [
      { header: { name: 'opt', type: 'directory', mode: 0o750, uid: 7, gid: 8, mtime: T1 } },
      { header: { name: 'opt/a', mode: 0o644 }, body: 'a' },
    ],
    upper: [{ header: { name: 'opt/b/c', mode: 0o600, mtime: T2 }, body: 'c' }],
    expect: 'settled',
  },
  {
    name: 'a write through a lower symlink lands where the symlink points',
    lower: [
      { header: { name: 'run', type: 'directory', mode: 0o755 } },
      { header: { name: 'var', type: 'directory', mode: 0o755 } },
      { header: { name: 'var/run', type: 'symlink', linkname: '/run' } },
    ],
    upper: [{ header: { name: 'var/run/pid', mode: 0o644, mtime: T2 }, body: '1' }],
    expect: 'redo',
  },
  {
    name: 'a hardlink to a lower file copies it up',
    lower: [{ header: { name: 'bin/tool', mode: 0o755, mtime: T1 }, body: 'tool' }],
    upper: [{ header: { name: 'bin/tool2', type: 'link', linkname: 'bin/tool' } }],
    expect: 'needs-lowers',
  },
  {
    name: 'whiteouts and opaque directories',
    lower: [
      { header: { name: 'etc/a', mode: 0o644 }, body: 'a' },
      { header: { name: 'etc/b', mode: 0o644 }, body: 'b' },
      { header: { name: 'srv/x', mode: 0o644 }, body: 'x' },
    ],
    upper: [
      { header: { name: 'etc/.wh.a', mode: 0o600 }, body: '' },
      { header: { name: 'srv/.wh..wh..opq', mode: 0o600 }, body: '' },
      { header: { name: 'srv/y', mode: 0o644, mtime: T2 }, body: 'y' },
    ],
    expect: 'settled',
  },
  {
    name: 'a directory entry after its contents keeps the layer metadata',
    lower: [{ header: { name: 'etc', type: 'directory', mode: 0o700, uid: 3, gid: 3, mtime: T1 } }],
    upper: [
      { header: { name: 'etc/conf', mode: 0o644, mtime: T2 }, body: 'c' },
      { header: { name: 'etc', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: T2 } },
    ],
    expect: 'settled',
  },
];

describe('apply ahead of the lowers, then settle', {
  skip: !isRoot && 'needs root (owners, whiteouts)',
}, () => {
  for (const c of cases) {
    test(c.name, async (t) => {
      const ws = await workspace();
      t.after(ws.done);
      const lowerDir = join(ws.dir, 'lower');
      const onLowers = join(ws.dir, 'on-lowers');
      const ahead = join(ws.dir, 'ahead');
      for (const d of [lowerDir, onLowers, ahead]) mkdirSync(d);
      const lowerTar = await tarOf(c.lower);
      const upperTar = await tarOf(c.upper);
      await applyLayer(Readable.from([lowerTar]), { root: lowerDir, mediaType: TAR, whiteouts: 'delete' });
      const want = await applyLayer(Readable.from([upperTar]), {
        root: onLowers,
        mediaType: TAR,
        whiteouts: 'overlay',
        parents: [lowerDir],
      });

      const first = await applyLayer(Readable.from([upperTar]), {
        root: ahead,
        mediaType: TAR,
        whiteouts: 'overlay',
        deferLowers: true,
      });
      let outcome: Case['expect'];
      if (first.needsLowers) outcome = 'needs-lowers';
      else {
        assert.equal(first.diffId, want.diffId);
        outcome = settleLayer(ahead, [lowerDir], first.created) ? 'settled' : 'redo';
      }
      assert.equal(outcome, c.expect);
      if (outcome !== 'settled') {
        // What the unpacker does then: apply it again, on its lowers.
        await rm(ahead, { recursive: true });
        mkdirSync(ahead);
        await applyLayer(Readable.from([upperTar]), {
          root: ahead,
          mediaType: TAR,
          whiteouts: 'overlay',
          parents: [lowerDir],
        });
      }
      assert.deepEqual(describeTree(ahead), describeTree(onLowers));
    });
  }
});
