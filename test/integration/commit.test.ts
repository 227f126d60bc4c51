// `hoist snapshot prepare --from` + `hoist commit`, and seed 002's scenario: a base pulled with
// --discard-unpacked-layers, a local commit on top, then `image convert --zstd`: with the registry up the
// base layers are fetched; with it down the error names every missing digest and the source tried and
// nothing changes; with --rebuild-from-snapshots it succeeds without the registry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tableRows, tempStore } from '../helpers/run-hoist.ts';
import { describeTree, diffTrees, type TreeEntry } from '../helpers/tree.ts';

const isRoot = process.getuid?.() === 0;
const opts = { mtimes: true };
let reg: TestRegistry;
let dir: string;
let layout: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-commit-'));
  layout = join(dir, 'layout');
  await writeOciLayout(layout, [
    { tag: 'v1', image: { layers: [await layer1(), await layer2(), await layer3()] } },
  ]);
  reg = await startRegistry();
  await pushLayout(layout, 'commit/base:v1', reg.registryHost);
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Prepare a native snapshot from `base`, change files in it, return the directory. */
async function prepareAndEdit(store: HoistStore, base: string, key: string): Promise<string> {
  const work = (await store.ok('snapshot', '--snapshotter', 'native', 'prepare', key, '--from', base)).trim();
  await writeFile(join(work, 'etc/added.conf'), 'added by hand\n');
  await writeFile(join(work, 'etc/motd'), 'changed\n');
  await unlink(join(work, 'usr/lib/libc.so'));
  return work;
}

function assertSameTree(want: Map<string, TreeEntry>, got: Map<string, TreeEntry>, what: string): void {
  const diff = diffTrees(want, got, ['edited snapshot', what]);
  assert.deepEqual(diff, [], diff.join('\n'));
}

test('commit: a new image from a changed snapshot; whole, unpacked, same tree, pushed and read back by skopeo', {
  skip: !isRoot && 'needs root (fixture ownership, devices)',
}, async () => {
  const store = await tempStore();
  try {
    const base = `${reg.registryHost}/commit/base:v1`;
    await store.ok('pull', '--plain-http', '--snapshotter', 'native', base);
    const work = await prepareAndEdit(store, base, 'work');
    const edited = await describeTree(work, opts);
    const out = await store.ok(
      'commit',
      '--snapshotter',
      'native',
      '-m',
      'my change',
      'work',
      `${reg.registryHost}/commit/new:1`,
    );
    assert.match(out, /commit\/new:1 sha256:[0-9a-f]{64}/);
    const name = `${reg.registryHost}/commit/new:1`;
    const row = tableRows(await store.ok('image', 'check', name))[0]!;
    assert.equal(row[3], 'complete');
    assert.match(row[5]!, /native=true/, 'the committed snapshot is the new image unpacked');
    const inspect = JSON.parse(await store.ok('image', 'inspect', name)) as
      | { RootFS: { diff_ids: string[] } }[]
      | { RootFS: { diff_ids: string[] } };
    const rootfs = (Array.isArray(inspect) ? inspect[0]! : inspect).RootFS;
    assert.equal(rootfs.diff_ids.length, 4);
    const plain = join(dir, 'new1');
    await store.ok('image', 'unpack', name, '--to', plain);
    assertSameTree(edited, await describeTree(plain, opts), 'image unpack --to of the commit');
    await store.ok('push', '--plain-http', name);
    const raw = JSON.parse(
      execFileSync('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${name}`]).toString(),
    ) as {
      history: { comment?: string; created_by?: string }[];
    };
    assert.equal(raw.history.at(-1)?.comment, 'my change');
    assert.equal(raw.history.at(-1)?.created_by, 'hoist commit');
  } finally {
    await store.cleanup();
  }
});

test('seed 002: discarded base + local commit + convert --zstd: fetched, or named, or rebuilt from snapshots', {
  skip: !isRoot && 'needs root (fixture ownership, devices)',
}, async () => {
  const reg2 = await startRegistry();
  const up = await tempStore();
  const down = await tempStore();
  try {
    await pushLayout(layout, 'seed/base:v1', reg2.registryHost);
    const base = `${reg2.registryHost}/seed/base:v1`;
    const trees: Map<string, TreeEntry>[] = [];
    for (const s of [up, down]) {
      await s.ok('pull', '--plain-http', '--snapshotter', 'native', '--discard-unpacked-layers', base);
      trees.push(await describeTree(await prepareAndEdit(s, base, 'work'), opts));
      await s.ok('commit', '--snapshotter', 'native', 'work', 'local/app:1');
      assert.match(
        await s.ok('image', 'check', 'local/app:1'),
        /incomplete \(3\/6\)/,
        'base layers are missing',
      );
    }

    // Registry up: the base layers come from the base image's source; the result is whole.
    await up.ok('image', 'convert', '--plain-http', '--zstd', 'local/app:1', 'local/app:zstd');
    assert.match(await up.ok('image', 'check', 'local/app:zstd'), /\scomplete\s/);
    const outUp = join(dir, 'seed-up');
    await up.ok('image', 'unpack', 'local/app:zstd', '--to', outUp);
    assertSameTree(trees[0]!, await describeTree(outUp, opts), 'converted (fetched)');

    // Registry down: the error names every missing base layer and the source; nothing changes.
    await reg2.stop();
    const missing = (
      (await down.ok('image', 'check', '-v', 'local/app:1')).match(/sha256:[0-9a-f]{64}/g) ?? []
    ).filter((d, i, a) => a.indexOf(d) === i && i > 0);
    const names = async () =>
      (await down.ok('images', '--all', '--format', 'json')).replace(/"CreatedSince":"[^"]*"/g, '');
    const before = await names();
    const r = await down.run('image', 'convert', '--plain-http', '--zstd', 'local/app:1', 'local/app:zstd');
    assert.notEqual(r.code, 0);
    for (const d of missing) assert.ok(r.stderr.includes(d), `the error names ${d}:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${reg2.registryHost}/seed/base`), 'and the source tried');
    assert.equal(await names(), before, 'nothing changed');

    // --rebuild-from-snapshots: the base layers are regenerated from their unpacked snapshots.
    const rb = await down.run(
      'image',
      'convert',
      '--plain-http',
      '--zstd',
      '--rebuild-from-snapshots',
      'local/app:1',
      'local/app:zstd',
    );
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(
      rb.stderr,
      /rebuilt layer sha256:[0-9a-f]{64} from its snapshot: diffID sha256:[0-9a-f]{64} is now sha256:[0-9a-f]{64}/,
    );
    assert.match(await down.ok('image', 'check', 'local/app:zstd'), /\scomplete\s/);
    const outDown = join(dir, 'seed-down');
    await down.ok('image', 'unpack', 'local/app:zstd', '--to', outDown);
    assertSameTree(trees[1]!, await describeTree(outDown, opts), 'converted (rebuilt)');
  } finally {
    await reg2.stop().catch(() => undefined);
    await up.cleanup();
    await down.cleanup();
  }
});
