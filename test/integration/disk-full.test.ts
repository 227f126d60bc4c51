// A full disk in the middle of pull, unpack, load and convert, on a small loop-mounted ext4 whose free space
// a filler file sets: one error that says the disk is full, what was being written and where (a fetch-only
// pull used to print only "database or disk is full"); the store stays consistent; `system prune` gives the
// space back (on the still-full disk); and once space is freed the same command succeeds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ConsistencyReport } from '../../src/api/maintenance.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { type LoopFs, loopFsUnavailable, mountLoopFs } from '../helpers/loop-fs.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { checkReport, type HoistStore, jsonLines, type RunResult, tempStore } from '../helpers/run-hoist.ts';

const skip = loopFsUnavailable();
const MiB = 1024 * 1024;
/** Room left for the operation: less than what it writes, more than the metadata needs. */
const ROOM = 12 * MiB;
let reg: TestRegistry;
let fs: LoopFs;
let work: string;
let built: BuiltEntry[];
let big: string;
let tree: string;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-disk-full-'));
  built = await writeOciLayout(join(work, 'layout'), [
    // 24 MiB that does not compress: the download does not fit.
    { tag: 'big', image: { layers: [{ 'etc/os-release': 'ID=full\n' }, { randomBytes: 24 * MiB }] } },
    // A tiny blob that unpacks (or converts to --uncompress) to 24 MiB.
    { tag: 'tree', image: { layers: [{ 'zeros/a.bin': Buffer.alloc(24 * MiB) }] } },
  ]);
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'full/big:1', reg.registryHost, { srcTag: 'big' });
  await pushLayout(join(work, 'layout'), 'full/tree:1', reg.registryHost, { srcTag: 'tree' });
  big = `${reg.registryHost}/full/big:1`;
  tree = `${reg.registryHost}/full/tree:1`;
  // 4 KiB blocks as on a node (with 1 KiB ones SQLite's shared-memory file can fault: SIGBUS), none
  // reserved for root (the tests run as root).
  fs = mountLoopFs({ sizeMiB: 96, mkfsArgs: ['-b', '4096', '-m', '0'], prefix: 'hoist-disk-full' });
});

after(async () => {
  fs?.cleanup();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const free = () => {
  const s = statfsSync(fs.dir);
  return s.bavail * s.bsize;
};

/** Fill the file system so that `room` bytes stay free; returns the filler's path. */
async function fillTo(room: number): Promise<string> {
  const filler = join(fs.dir, `filler-${Math.random().toString(36).slice(2)}`);
  execFileSync('fallocate', ['-l', String(Math.max(0, free() - room)), filler]);
  return filler;
}

async function check(s: HoistStore): Promise<ConsistencyReport> {
  const r = await s.run('system', 'check', '--verify', '--format', 'json');
  const report = checkReport<ConsistencyReport>(r.stdout);
  assert.equal(r.code, 0, `system check: ${JSON.stringify(report.problems)} ${r.stderr}`);
  return report;
}

function assertDiskFull(r: RunResult, s: HoistStore, what: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('hoist:') || l.startsWith('hint:'));
  assert.equal(lines.length, 2, `one error and its hint:\n${r.stderr}`);
  assert.match(lines[0]!, /disk full: no space left writing /);
  assert.match(lines[0]!, what);
  assert.ok(lines[0]!.includes(` to ${s.root}/`), `names where: ${lines[0]}`);
  assert.match(lines[0]!, /MiB free of [\d.]+ MiB on that file system/);
  assert.match(lines[1]!, /hint: free space .*hoist system prune/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

/**
 * Run `op` with ROOM bytes free: it fails with the disk-full error; the store is consistent; `system prune`
 * on the still-full disk gives back what the failed run wrote; with the filler gone `op` succeeds.
 */
async function faultAndRecover(s: HoistStore, op: string[], what: RegExp, room = ROOM): Promise<void> {
  const filler = await fillTo(room);
  try {
    const before = free();
    assertDiskFull(await s.run(...op), s, what);
    await check(s);
    await s.ok('system', 'prune');
    assert.ok(free() >= before - MiB, `prune gave the space back: ${free()} free, ${before} before the run`);
  } finally {
    await unlink(filler);
  }
  await s.ok(...op);
  await check(s);
}

test('pull (fetch only): the layer that did not fit is named, with its path; prune frees it; the pull then succeeds', {
  skip,
}, async () => {
  const s = await tempStore(fs.dir);
  try {
    const layer = built[0]!.images[0]!.layers[1]!.digest;
    await faultAndRecover(
      s,
      ['pull', '--plain-http', '--unpack=false', '-q', big],
      new RegExp(`layer ${layer} \\(namespace default\\) to .*/content/ingest/`),
    );
    assert.equal(JSON.parse(await s.ok('image', 'inspect', big))[0].Id, built[0]!.top.digest);
  } finally {
    await s.cleanup();
  }
});

test('pull with unpack: the file being unpacked is named; prune removes the partial snapshot; the pull then succeeds', {
  skip,
}, async () => {
  const s = await tempStore(fs.dir);
  try {
    await faultAndRecover(
      s,
      ['pull', '--plain-http', '--snapshotter', 'native', '-q', tree],
      /layer entry 'zeros\/a\.bin' to .*\/snapshots\/native\/snapshots\/\d+\/fs\/zeros\/a\.bin/,
    );
    const snaps = jsonLines(await s.ok('snapshot', '--snapshotter', 'native', 'ls', '--format', 'json'));
    assert.deepEqual(
      snaps.map((x) => x.Kind),
      ['committed'],
    );
  } finally {
    await s.cleanup();
  }
});

test('load: the blob being stored is named; the load then succeeds', { skip }, async () => {
  const src = await tempStore();
  const s = await tempStore(fs.dir);
  try {
    await src.ok('pull', '--plain-http', '--unpack=false', '-q', big);
    const tar = join(work, 'big.tar');
    await src.ok('save', '-q', '-o', tar, big);
    await faultAndRecover(s, ['load', '-q', '--no-unpack', '-i', tar], /content .* to .*\/content\/ingest\//);
    assert.equal(JSON.parse(await s.ok('image', 'inspect', big))[0].Id, built[0]!.top.digest);
  } finally {
    await src.cleanup();
    await s.cleanup();
  }
});

test('convert in place: the new layer is named; the source image is untouched; the convert then succeeds', {
  skip,
}, async () => {
  const s = await tempStore(fs.dir);
  try {
    await s.ok('pull', '--plain-http', '--unpack=false', '-q', tree);
    const filler = await fillTo(ROOM);
    try {
      const r = await s.run('image', 'convert', '--uncompress', tree, tree);
      const layer = built[1]!.images[0]!.layers[0]!.digest;
      assertDiskFull(
        r,
        s,
        new RegExp(
          `layer ${layer} converted to application/vnd\\.oci\\.image\\.layer\\.v1\\.tar .* to .*/content/ingest/`,
        ),
      );
      assert.equal(
        JSON.parse(await s.ok('image', 'inspect', tree))[0].Id,
        built[1]!.top.digest,
        'the name still points at the source',
      );
      await check(s);
      await s.ok('system', 'prune');
    } finally {
      await unlink(filler);
    }
    await s.ok('image', 'convert', '--uncompress', tree, tree);
    assert.notEqual(JSON.parse(await s.ok('image', 'inspect', tree))[0].Id, built[1]!.top.digest);
    await check(s);
  } finally {
    await s.cleanup();
  }
});

test('the metadata database cannot grow: named as such (SQLite said only "database or disk is full")', {
  skip,
}, async () => {
  const s = await tempStore(fs.dir);
  try {
    await s.ok('images'); // the store exists, its database is small
    await faultAndRecover(
      s,
      ['pull', '--plain-http', '--unpack=false', '-q', tree],
      new RegExp(`the metadata database to ${s.root}/metadata\\.db`),
      100 * 1024,
    );
  } finally {
    await s.cleanup();
  }
});
