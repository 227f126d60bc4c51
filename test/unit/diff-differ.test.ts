// The differ is the applier's inverse: the layer it computes for a snapshot, applied onto the parent's
// tree, must give back the snapshot's tree exactly (types, modes, owners, links, contents, xattrs,
// mtimes), for full trees (native) and for overlay upper directories, and the same changes always give
// the same bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { MediaType } from '../../src/core/mediatypes.ts';
import { applyLayer } from '../../src/diff/apply.ts';
import { diffDirs } from '../../src/diff/differ.ts';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { describeTree, diffTrees } from '../helpers/tree.ts';
import { apply } from './diff-fixtures.ts';

const isRoot = process.getuid?.() === 0;
const opts = { mtimes: true };
let dir: string;
/** Full trees after layer 1, 2 and 3 (native). */
const full: string[] = [];

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const cp = (from: string, to: string) => execFileSync('cp', ['-a', '--reflink=auto', from, to]);

async function assertRoundTrip(
  layer: Buffer,
  lower: string | undefined,
  expected: string,
  what: string,
  hardlinks = true,
) {
  const target = join(dir, `rt-${Math.random().toString(36).slice(2)}`);
  if (lower) cp(lower, target);
  else await mkdir(target);
  await applyLayer(Readable.from([layer]), {
    root: target,
    whiteouts: 'delete',
    mediaType: MediaType.OciLayer,
  });
  const want = await describeTree(expected, { ...opts, hardlinks });
  const got = await describeTree(target, { ...opts, hardlinks });
  const diff = diffTrees(want, got, ['snapshot', `${what} re-applied`]);
  assert.deepEqual(diff, [], diff.join('\n'));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-differ-'));
  const layers = [await layer1(), await layer2(), await layer3()];
  for (const [i, l] of layers.entries()) {
    const d = join(dir, `full${i}`);
    if (i === 0) await mkdir(d);
    else cp(full[i - 1]!, d);
    await apply(l, { root: d, whiteouts: 'delete' });
    full.push(d);
  }
});

after(() => rm(dir, { recursive: true, force: true }));

describe('differ', { skip: !isRoot && 'the fixture needs root (devices, ownership)' }, () => {
  test('native: each layer of the fixture chain, recomputed by a double walk, re-applies exactly', async () => {
    for (let i = 0; i < full.length; i++) {
      const tar = await collect(
        diffDirs({ dir: full[i]!, parents: i ? [full[i - 1]!] : [], layered: false }),
      );
      await assertRoundTrip(tar, full[i - 1], full[i]!, `native layer ${i + 1}`);
    }
  });

  test('overlayfs: an upper directory (whiteout devices, opaque dirs) becomes an OCI layer', async () => {
    const layers = [await layer1(), await layer2(), await layer3()];
    const uppers: string[] = [];
    for (const [i, l] of layers.entries()) {
      const u = join(dir, `upper${i}`);
      await mkdir(u);
      await apply(l, {
        root: u,
        whiteouts: i === 0 ? 'delete' : 'overlay',
        parents: uppers.slice().reverse(),
      });
      uppers.push(u);
      const tar = await collect(diffDirs({ dir: u, parents: uppers.slice(0, -1).reverse(), layered: true }));
      // A link to a lower file is a copied-up pair in overlayfs (as with containerd): compare without groups.
      await assertRoundTrip(tar, full[i - 1], full[i]!, `overlay layer ${i + 1}`, false);
    }
  });

  test('changes made by hand: added, changed, deleted, replaced, hardlinked, xattrs; deterministic', async () => {
    const lower = full[2]!;
    const upper = join(dir, 'edited');
    cp(lower, upper);
    await writeFile(join(upper, 'etc/new.conf'), 'new\n');
    await writeFile(join(upper, 'etc/motd'), 'changed motd\n');
    await chmod(join(upper, 'usr/bin/busybox'), 0o700);
    await unlink(join(upper, 'usr/lib/libc.so'));
    await rm(join(upper, 'opt/new'), { recursive: true });
    await writeFile(join(upper, 'opt/new'), 'a file where a directory was\n');
    await mkdir(join(upper, 'srv/data'), { recursive: true });
    await writeFile(join(upper, 'srv/data/a'), 'a\n');
    await link(join(upper, 'srv/data/a'), join(upper, 'srv/data/b'));
    await symlink('../etc/new.conf', join(upper, 'srv/conf'));
    execFileSync('setfattr', ['-n', 'user.note', '-v', '0xff00fe', join(upper, 'etc/new.conf')]);
    await writeFile(join(upper, `${'n'.repeat(150)}.txt`), 'long name\n');
    await utimes(join(upper, 'etc/new.conf'), 1_600_000_000, 1_600_000_000);
    const first = await collect(diffDirs({ dir: upper, parents: [lower], layered: false }));
    const second = await collect(diffDirs({ dir: upper, parents: [lower], layered: false }));
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(digest(first), digest(second), 'the same changes give the same bytes');
    await assertRoundTrip(first, lower, upper, 'edited tree');
    // Nothing unchanged is archived; chmod on busybox changed its inode, so its links come along.
    const names = execFileSync('tar', ['-t'], { input: first }).toString().split('\n');
    assert.ok(!names.some((n) => n.startsWith('etc/replace-me')), names.join(','));
    assert.ok(names.includes('usr/bin/cat'), names.join(','));
    assert.ok(names.includes('usr/lib/.wh.libc.so'), names.join(','));
  });

  test('no changes: an empty layer (two zero blocks)', async () => {
    const tar = await collect(diffDirs({ dir: full[2]!, parents: [full[2]!], layered: false }));
    assert.equal(tar.length, 1024);
    assert.ok(tar.every((b) => b === 0));
  });
});
