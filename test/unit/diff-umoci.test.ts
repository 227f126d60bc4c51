// The applier against an independent one: the three-layer fixture (whiteouts, opaque dirs, hardlinks
// within and across layers, symlinks, a write through a lower symlink, long names, devices, setuid,
// xattrs) applied by hoist equals `umoci unpack` path by path — as one directory ('delete' whiteouts)
// and as per-layer overlay upper directories (with `parents`) mounted as overlayfs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { applyLayer } from '../../src/diff/apply.ts';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { writeOciLayout } from '../helpers/image-builder.ts';
import { describeTree, diffTrees } from '../helpers/tree.ts';
import { isRoot, TAR } from './diff-fixtures.ts';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = !isRoot
  ? 'needs root (devices, ownership, overlay mount)'
  : !has('umoci')
    ? 'umoci is not installed'
    : false;

test('hoist applies the fixture image exactly as umoci unpacks it', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-diff-umoci-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const layers = [await layer1(), await layer2(), await layer3()];
  await writeOciLayout(join(dir, 'layout'), [{ tag: 'v1', image: { layers } }]);
  execFileSync('umoci', ['unpack', '--image', `${join(dir, 'layout')}:v1`, join(dir, 'umoci')]);
  const umoci = join(dir, 'umoci', 'rootfs');

  const flat = join(dir, 'flat');
  await mkdir(flat);
  for (const l of layers) {
    const r = await applyLayer(Readable.from([l]), { root: flat, mediaType: TAR, whiteouts: 'delete' });
    assert.deepEqual(r.warnings, []);
  }
  const reference = await describeTree(umoci, { mtimes: true });
  assert.ok(reference.size > 30, 'the fixture is not trivially small');
  const flatDiff = diffTrees(reference, await describeTree(flat, { mtimes: true }), ['umoci', 'hoist']);
  assert.deepEqual(flatDiff, [], flatDiff.join('\n'));

  // Overlay: one upper directory per layer, each applied with the ones below as parents.
  const uppers: string[] = [];
  for (const [i, l] of layers.entries()) {
    const upper = join(dir, `upper${i}`);
    await mkdir(upper);
    await applyLayer(Readable.from([l]), {
      root: upper,
      mediaType: TAR,
      whiteouts: 'overlay',
      parents: [...uppers].reverse(),
    });
    uppers.push(upper);
  }
  const mnt = join(dir, 'mnt');
  await mkdir(mnt);
  const lowerdir = [...uppers].reverse().join(':');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowerdir}`, mnt]);
  try {
    // An overlay mount reports a hardlink made across layers as separate inodes; compare the rest.
    const opts = { mtimes: true, hardlinks: false };
    const overlayDiff = diffTrees(await describeTree(umoci, opts), await describeTree(mnt, opts), [
      'umoci',
      'overlay',
    ]);
    assert.deepEqual(overlayDiff, [], overlayDiff.join('\n'));
  } finally {
    execFileSync('umount', [mnt]);
  }
});
