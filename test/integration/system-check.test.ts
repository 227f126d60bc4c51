// `hoist system check`: a consistent store passes; each kind of damage a crash, a disk error or a hand
// edit can cause is found, named, and fails the command; what is accounted for (discarded layers with a
// source, leftovers GC reclaims) is a note, not a failure.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ConsistencyReport } from '../../src/api/maintenance.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { checkReport, type HoistStore, tempStore } from '../helpers/run-hoist.ts';

const isRoot = process.getuid?.() === 0;
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-check-'));
  built = await writeOciLayout(join(dir, 'layout'), [
    {
      tag: 'v1',
      image: { layers: [{ 'etc/os-release': 'ID=check\n' }, { randomBytes: 64 * 1024, path: 'data/x.bin' }] },
    },
  ]);
  reg = await startRegistry();
  await pushLayout(join(dir, 'layout'), 'check/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/check/app:v1`;
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const blobPath = (s: HoistStore, d: string) => join(s.root, 'content', 'blobs', 'sha256', d.slice(7));

async function check(s: HoistStore, ...args: string[]): Promise<{ code: number; report: ConsistencyReport }> {
  const r = await s.run('system', 'check', '--format', 'json', ...args);
  return { code: r.code, report: checkReport<ConsistencyReport>(r.stdout) };
}

test('a freshly pulled store is consistent; damaged blobs are found and fail the check', async () => {
  const s = await tempStore();
  try {
    await s.ok('pull', '--plain-http', '--unpack=false', ref);
    let r = await check(s, '--verify');
    assert.equal(r.code, 0, JSON.stringify(r.report));
    assert.deepEqual(r.report.problems, []);
    assert.equal(r.report.checked.images, 1);
    assert.equal(r.report.checked.verifiedBlobs, 4, 'index-less image: manifest, config, two layers');
    assert.match((await s.ok('system', 'check')).trim(), /The store is consistent\.$/);

    const img = built[0]!.images[0]!;
    const [l0, l1] = img.layers.map((l) => l.digest);
    // Same size, other bytes: only --verify can see it.
    await writeFile(blobPath(s, l1!), Buffer.alloc(img.layers[1]!.size, 7));
    r = await check(s);
    assert.equal(r.code, 0, 'sizes still match');
    r = await check(s, '--verify');
    assert.equal(r.code, 1);
    assert.deepEqual(
      r.report.problems.map((p) => [p.kind, p.subject]),
      [['blob-digest-mismatch', l1]],
    );
    // A record whose file is gone; the image that needs it has no other copy... but it has a source.
    await unlink(blobPath(s, l0!));
    r = await check(s);
    assert.equal(r.code, 1);
    const kinds = r.report.problems.map((p) => `${p.kind} ${p.subject}`);
    assert.ok(kinds.includes(`blob-missing ${l0}`), kinds.join('\n'));
    // A stray file in blobs/ is a leftover GC reclaims, not a failure.
    const stray = `sha256:${'ab'.repeat(32)}`;
    await writeFile(blobPath(s, stray), 'stray');
    r = await check(s);
    assert.ok(r.report.notes.some((n) => n.kind === 'unrecorded-blob' && n.subject === stray));
    const text = await s.run('system', 'check');
    assert.equal(text.code, 1);
    assert.match(text.stdout, /NOT consistent/);
    assert.ok(text.stdout.includes(l0!));
  } finally {
    await s.cleanup();
  }
});

test('discarded layers with a source are accounted for; a lost snapshot directory is a problem', {
  skip: !isRoot && 'needs root (snapshots)',
}, async () => {
  const s = await tempStore();
  try {
    await s.ok('pull', '--plain-http', '--snapshotter', 'native', '--discard-unpacked-layers', ref);
    let r = await check(s);
    assert.equal(r.code, 0, JSON.stringify(r.report, null, 2));
    const fetchable = r.report.notes.filter((n) => n.kind === 'image-content-fetchable');
    assert.equal(fetchable.length, 1);
    assert.ok(fetchable[0]!.detail.includes(`${reg.registryHost}/check/app`), fetchable[0]!.detail);
    assert.equal(r.report.checked.snapshots, 2);

    const snaps = join(s.root, 'snapshots', 'native', 'snapshots');
    const ids = await readdir(snaps);
    await rm(join(snaps, ids[0]!, 'fs'), { recursive: true });
    r = await check(s);
    assert.equal(r.code, 1);
    assert.deepEqual(
      r.report.problems.map((p) => p.kind),
      ['snapshot-dir-missing'],
    );
  } finally {
    await s.cleanup();
  }
});

test('an image whose layers are gone with no source to fetch them from is a problem', async () => {
  const s = await tempStore();
  try {
    const tar = join(dir, 'saved.tar');
    const src = await tempStore();
    try {
      await src.ok('pull', '--plain-http', '--unpack=false', ref);
      await src.ok('save', '-o', tar, ref);
    } finally {
      await src.cleanup();
    }
    await s.ok('load', '--unpack=false', '-i', tar); // a loaded image records no registry
    const layer = built[0]!.images[0]!.layers[0]!.digest;
    await unlink(blobPath(s, layer));
    const r = await check(s);
    assert.equal(r.code, 1);
    const missing = r.report.problems.find((p) => p.kind === 'image-content-missing');
    assert.ok(missing?.detail.includes(layer), JSON.stringify(r.report.problems, null, 2));
  } finally {
    await s.cleanup();
  }
});
