// One image, many names: the CRI's three names plus a second tag list as two rows, --all as four, and one
// `rmi <short id>` removes every name and (after GC) the blobs from disk. Against the real registry.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openLocalStore } from '../../src/embedded/store.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tableRows, tempStore } from '../helpers/run-hoist.ts';

let reg: TestRegistry;
let work: string;
let built: BuiltEntry[];

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-names-'));
  built = await writeOciLayout(join(work, 'layout'), [
    { tag: 'v1', image: { layers: [{ 'etc/os-release': 'ID=test\n' }, { randomBytes: 300_000 }] } },
  ]);
  await pushLayout(join(work, 'layout'), 'team/r:1', reg.host, { srcTag: 'v1' });
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

function blobPath(h: HoistStore, digest: string): string {
  return join(h.root, 'content', 'blobs', 'sha256', digest.slice('sha256:'.length));
}

test('k8s.io: four names on one image list as two rows, --all as four; rmi <short id> removes all and the blobs', async () => {
  const h = await tempStore();
  try {
    const repo = `${reg.host}/team/r`;
    await h.ok('-n', 'k8s.io', 'pull', '-q', '--plain-http', `${repo}:1`);
    await h.ok('-n', 'k8s.io', 'tag', `${repo}:1`, `${repo}:2`);
    const all = tableRows(await h.ok('-n', 'k8s.io', 'images', '--all'));
    assert.equal(all.length, 4, 'r:1, r:2, r@sha256 and sha256:<id>');
    const rows = tableRows(await h.ok('-n', 'k8s.io', 'images'));
    assert.deepEqual(rows.map((r) => `${r[0]}:${r[1]}`).sort(), [`${repo}:1`, `${repo}:2`]);
    const ids = new Set(rows.map((r) => r[2]));
    assert.equal(ids.size, 1, 'both rows show the same IMAGE ID');
    const id = [...ids][0]!;
    assert.match(id, /^[a-f0-9]{12}$/);
    assert.equal(`sha256:${id}`, built[0]!.top.digest.slice(0, 19), 'IMAGE ID is the target digest');
    // --no-trunc: the whole ID, as docker prints it.
    const full = (await h.ok('-n', 'k8s.io', 'images', '-q', '--no-trunc')).trim();
    assert.equal(full, built[0]!.top.digest);
    // The same image is not in the default namespace.
    assert.equal(tableRows(await h.ok('images')).length, 0);

    const img = built[0]!.images[0]!;
    const blobs = [built[0]!.top.digest, img.config.digest, ...img.layers.map((l) => l.digest)];
    for (const b of blobs) assert.ok(existsSync(blobPath(h, b)), `blob ${b} on disk after pull`);

    // Removing one tag of two untags it and deletes nothing (docker: `Deleted:` only when the image goes).
    const one = await h.ok('-n', 'k8s.io', 'rmi', `${repo}:2`);
    assert.deepEqual(one.trim().split('\n'), [`Untagged: ${repo}:2`]);
    await h.ok('-n', 'k8s.io', 'tag', `${repo}:1`, `${repo}:2`);
    const out = await h.ok('-n', 'k8s.io', 'rmi', id);
    const lines = out.trim().split('\n');
    assert.deepEqual(
      lines.filter((l) => l.startsWith('Untagged: ')).sort(),
      [
        `Untagged: ${repo}:1`,
        `Untagged: ${repo}:2`,
        `Untagged: ${repo}@${built[0]!.top.digest}`,
        `Untagged: ${built[0]!.images[0]!.config.digest}`,
      ].sort(),
      'one Untagged line per name, the CRI ID alias too',
    );
    assert.deepEqual(
      lines.filter((l) => l.startsWith('Deleted: ')),
      [`Deleted: ${built[0]!.top.digest}`],
      'the image is deleted once',
    );
    assert.equal(tableRows(await h.ok('-n', 'k8s.io', 'images', '--all')).length, 0, 'every name removed');
    for (const b of blobs) assert.ok(!existsSync(blobPath(h, b)), `blob ${b} removed from disk by GC`);
  } finally {
    await h.cleanup();
  }
});

test('an ID tagged in two repositories is refused without -f, removed with -f', async () => {
  const h = await tempStore();
  try {
    const repo = `${reg.host}/team/r`;
    await h.ok('pull', '-q', '--plain-http', `${repo}:1`);
    await h.ok('tag', `${repo}:1`, 'other/copy:latest');
    const rows = tableRows(await h.ok('images'));
    assert.equal(rows.length, 2);
    const id = rows[0]![2]!;
    const refused = await h.run('rmi', id);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /referenced in multiple repositories/);
    assert.match(refused.stderr, /other\/copy/);
    assert.equal(tableRows(await h.ok('images')).length, 2, 'nothing removed');
    // Removing one name removes only that name.
    await h.ok('rmi', 'other/copy');
    assert.equal(tableRows(await h.ok('images')).length, 1);
    await h.ok('tag', `${repo}:1`, 'other/copy:latest');
    await h.ok('rmi', '-f', id);
    assert.equal(tableRows(await h.ok('images', '--all')).length, 0);
  } finally {
    await h.cleanup();
  }
});

test('ambiguous ID prefixes list the candidates; unknown names fail clearly', async () => {
  const h = await tempStore();
  try {
    const store = await openLocalStore(h.root);
    const ctx = { namespace: 'default' };
    const mk = (n: number) => ({
      name: `example.com/x/img${n}:1`,
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:abcabc${String(n).repeat(58)}` as never,
        size: 10,
      },
      labels: {},
    });
    await store.images.create(ctx, mk(1));
    await store.images.create(ctx, mk(2));
    store.close();
    const amb = await h.run('rmi', 'abcabc');
    assert.equal(amb.code, 1);
    assert.match(amb.stderr, /matches 2 images/);
    assert.match(amb.stderr, /img1/);
    assert.match(amb.stderr, /img2/);
    // A longer prefix is unique and removes that image only.
    await h.ok('rmi', '--async', 'abcabc1111');
    const left = (await h.ok('images', '--all', '--format', 'json'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      left.map((r) => r.Name),
      ['example.com/x/img2:1'],
    );
    const missing = await h.run('rmi', 'nope:1');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^hoist: image "nope:1": not found$/m);
  } finally {
    await h.cleanup();
  }
});

test('filters: reference glob and dangling', async () => {
  const h = await tempStore();
  try {
    const repo = `${reg.host}/team/r`;
    await h.ok('pull', '-q', '--plain-http', `${repo}:1`);
    await h.ok('tag', `${repo}:1`, 'mine/app:stable');
    const byRef = tableRows(await h.ok('images', '--filter', 'reference=mine/*'));
    assert.deepEqual(
      byRef.map((r) => r[0]),
      ['mine/app'],
    );
    assert.equal(tableRows(await h.ok('images', '--filter', 'dangling=true')).length, 0);
    // `images REPOSITORY[:TAG]`, as docker's.
    await h.ok('tag', `${repo}:1`, 'mine/app:old');
    const repoRows = tableRows(await h.ok('images', 'mine/app'));
    assert.deepEqual(repoRows.map((r) => `${r[0]}:${r[1]}`).sort(), ['mine/app:old', 'mine/app:stable']);
    const tagRows = tableRows(await h.ok('images', 'mine/app:old'));
    assert.deepEqual(
      tagRows.map((r) => `${r[0]}:${r[1]}`),
      ['mine/app:old'],
    );
    assert.equal(tableRows(await h.ok('images', 'mine/other')).length, 0);
    const bad = await h.run('images', '--filter', 'colour=blue');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid filter "colour"/);
  } finally {
    await h.cleanup();
  }
});
