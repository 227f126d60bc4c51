// save and load against the real tools: containerd 1.6 (`ctr images import/check/export`) and skopeo
// (`docker-archive:` and `oci-archive:`, both directions), deterministic archives, compressed archives
// through -i and stdin.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, MAIN, NODE, tempStore } from '../helpers/run-hoist.ts';

const run = promisify(execFile);

let reg: TestRegistry;
let ctrd: Containerd;
let work: string;
let built: BuiltEntry[];
let h: HoistStore;
const name = (repo: string) => `${reg.host}/${repo}:1`;

before(async () => {
  reg = await startRegistry();
  ctrd = await startContainerd();
  work = await mkdtemp(join(tmpdir(), 'hoist-archive-it-'));
  built = await writeOciLayout(join(work, 'layout'), [
    { tag: 'oci', image: { layers: [{ 'etc/oci': 'oci\n' }, { randomBytes: 40_000 }] } },
    { tag: 'docker', format: 'docker', image: { format: 'docker', layers: [{ 'etc/docker': 'docker\n' }] } },
    {
      tag: 'multi',
      platforms: [
        { platform: { architecture: 'amd64' }, layers: [{ 'etc/amd64': 'amd64\n' }] },
        { platform: { architecture: 'arm64', variant: 'v8' }, layers: [{ 'etc/arm64': 'arm64\n' }] },
      ],
    },
  ]);
  await pushLayout(join(work, 'layout'), 'a/oci:1', reg.host, { srcTag: 'oci' });
  await pushLayout(join(work, 'layout'), 'a/docker:1', reg.host, { srcTag: 'docker' });
  await pushLayout(join(work, 'layout'), 'a/multi:1', reg.host, { srcTag: 'multi', all: true });
  h = await tempStore();
  for (const repo of ['a/oci', 'a/docker', 'a/multi']) await h.ok('pull', '--plain-http', name(repo));
});

after(async () => {
  await h?.cleanup();
  await ctrd?.stop();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const entry = (tag: string) => built.find((b) => b.tag === tag)!;
const sha = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

async function skopeo(...args: string[]): Promise<string> {
  try {
    return (await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    throw new Error(`skopeo ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? err}`);
  }
}

interface Inspect {
  Id: string;
  Platforms: { Platform: string; Config: string; Layers: { Digest: string }[] }[];
}
const inspect = async (s: HoistStore, n: string) =>
  JSON.parse(await s.ok('image', 'inspect', n))[0] as Inspect;

test('hoist save → ctr images import → ctr images check: every image complete, same digests', async () => {
  const file = join(work, 'all.tar');
  await h.ok('save', '-o', file, name('a/oci'), name('a/docker'), name('a/multi'));
  await ctrd.ctrOk('images', 'import', '--no-unpack', file);
  const check = await ctrd.ctrOk('images', 'check');
  for (const [repo, tag] of [
    ['a/oci', 'oci'],
    ['a/docker', 'docker'],
    ['a/multi', 'multi'],
  ] as const) {
    const line = check.split('\n').find((l) => l.startsWith(`${name(repo)} `));
    assert.ok(line, `ctr lists ${name(repo)}:\n${check}`);
    assert.match(line, /complete \(\d+\/\d+\)/, line);
    assert.ok(line.includes(entry(tag).top.digest), `${repo} keeps its digest: ${line}`);
  }
});

test('ctr images export → hoist load: the same digests in hoist image inspect', async () => {
  const file = join(work, 'ctr-export.tar');
  await ctrd.ctrOk('images', 'export', file, name('a/oci'), name('a/docker'), name('a/multi'));
  const s = await tempStore();
  try {
    const out = await s.ok('load', '--snapshotter', 'native', '-i', file);
    assert.match(out, new RegExp(`Loaded image: ${name('a/oci')}`));
    for (const [repo, tag] of [
      ['a/oci', 'oci'],
      ['a/docker', 'docker'],
      ['a/multi', 'multi'],
    ] as const) {
      const img = await inspect(s, name(repo));
      const e = entry(tag);
      assert.equal(img.Id, e.top.digest, repo);
      const amd64 = e.images.find((i) => i.platform.architecture === 'amd64')!;
      assert.equal(img.Platforms[0]!.Config, amd64.config.digest, repo);
      assert.deepEqual(
        img.Platforms[0]!.Layers.map((l) => l.Digest),
        amd64.layers.map((l) => l.digest),
        repo,
      );
    }
  } finally {
    await s.cleanup();
  }
});

test('skopeo reads hoist archives as docker-archive: and oci-archive:', async () => {
  for (const [repo, tag] of [
    ['a/oci', 'oci'],
    ['a/docker', 'docker'],
  ] as const) {
    const file = join(work, `${tag}-single.tar`);
    await h.ok('save', '-o', file, name(repo));
    const e = entry(tag);
    const viaDocker = join(work, `skopeo-da-${tag}`);
    await skopeo('copy', '--quiet', `docker-archive:${file}`, `oci:${viaDocker}:x`);
    const daInspect = JSON.parse(await skopeo('inspect', '--config', `oci:${viaDocker}:x`));
    assert.deepEqual(
      daInspect.rootfs.diff_ids,
      e.images[0]!.layers.map((l) => l.diffId),
      `${tag} via docker-archive`,
    );
    const viaOci = join(work, `skopeo-oa-${tag}`);
    await skopeo('copy', '--quiet', `oci-archive:${file}`, `oci:${viaOci}:x`);
    const ociInspect = JSON.parse(await skopeo('inspect', '--config', `oci:${viaOci}:x`));
    assert.deepEqual(
      ociInspect.rootfs.diff_ids,
      e.images[0]!.layers.map((l) => l.diffId),
      `${tag} via oci-archive`,
    );
    if (tag === 'oci') {
      const index = JSON.parse(await readFile(join(viaOci, 'index.json'), 'utf8'));
      assert.equal(index.manifests[0].digest, e.top.digest, 'oci-archive: the manifest arrives unchanged');
    }
  }
  // A multi-image archive: skopeo picks one by its RepoTag.
  const both = join(work, 'both.tar');
  await h.ok('save', '-o', both, name('a/oci'), name('a/docker'));
  const picked = join(work, 'skopeo-picked');
  await skopeo('copy', '--quiet', `docker-archive:${both}:${name('a/docker')}`, `oci:${picked}:x`);
  const cfg = JSON.parse(await skopeo('inspect', '--config', `oci:${picked}:x`));
  assert.deepEqual(
    cfg.rootfs.diff_ids,
    entry('docker').images[0]!.layers.map((l) => l.diffId),
  );
});

test('archives skopeo writes (docker-archive: and oci-archive:) load in hoist; containerd agrees on the digest', async () => {
  const e = entry('oci');
  const da = join(work, 'skopeo.docker-archive.tar');
  const oa = join(work, 'skopeo.oci-archive.tar');
  await skopeo('copy', '--quiet', `oci:${join(work, 'layout')}:oci`, `docker-archive:${da}:from/skopeo:da`);
  await skopeo('copy', '--quiet', `oci:${join(work, 'layout')}:oci`, `oci-archive:${oa}:from/skopeo:oa`);
  const s = await tempStore();
  try {
    assert.match(await s.ok('load', '--unpack=false', '-i', da), /Loaded image: from\/skopeo:da/);
    assert.match(await s.ok('load', '--unpack=false', '-i', oa), /Loaded image: from\/skopeo:oa/);
    const fromDa = await inspect(s, 'from/skopeo:da');
    assert.equal(fromDa.Platforms[0]!.Config, e.images[0]!.config.digest, 'docker-archive keeps the config');
    const fromOa = await inspect(s, 'from/skopeo:oa');
    assert.equal(fromOa.Id, e.top.digest, 'oci-archive keeps the manifest');
    // docker-archive has no manifest: hoist writes the one containerd's importer writes.
    await ctrd.ctrOk('images', 'import', '--no-unpack', da);
    const ls = await ctrd.ctrOk('images', 'ls');
    const line = ls.split('\n').find((l) => l.startsWith('docker.io/from/skopeo:da '));
    assert.ok(line?.includes(fromDa.Id), `containerd: ${line}`);
  } finally {
    await s.cleanup();
  }
});

test('deterministic: saving twice, or after a load into another store, gives byte-identical archives', async () => {
  const one = join(work, 'det-1.tar');
  const two = join(work, 'det-2.tar');
  const three = join(work, 'det-3.tar');
  const names = [name('a/multi'), name('a/oci'), name('a/docker')];
  await h.ok('save', '-o', one, ...names);
  await h.ok('save', '-o', two, ...names);
  assert.equal(await sha(two), await sha(one));
  const s = await tempStore();
  try {
    await s.ok('load', '--unpack=false', '-i', one);
    await s.ok('save', '-o', three, ...names);
    assert.equal(await sha(three), await sha(one));
  } finally {
    await s.cleanup();
  }
});

test('gzip (-i) and zstd (stdin) compressed archives load', async () => {
  const plain = join(work, 'compress.tar');
  await h.ok('save', '-o', plain, name('a/oci'));
  await run('sh', ['-c', `gzip -1 -c '${plain}' > '${plain}.gz' && zstd -q -c '${plain}' > '${plain}.zst'`]);
  const s = await tempStore();
  try {
    assert.match(await s.ok('load', '--unpack=false', '-i', `${plain}.gz`), /Loaded image/);
    assert.equal((await inspect(s, name('a/oci'))).Id, entry('oci').top.digest);
    await s.ok('rmi', name('a/oci'));
    const { stdout } = await run(
      'sh',
      ['-c', `'${NODE}' '${MAIN}' --root '${s.root}' load --no-unpack < '${plain}.zst'`],
      {
        env: { ...process.env, HOME: s.home },
      },
    );
    assert.match(stdout, /Loaded image/);
    assert.equal((await inspect(s, name('a/oci'))).Id, entry('oci').top.digest);
    // And save to stdout when there is no -o.
    const { stdout: hex } = await run('sh', [
      '-c',
      `'${NODE}' '${MAIN}' --root '${s.root}' save -q '${name('a/oci')}' | sha256sum`,
    ]);
    assert.equal(hex.split(' ')[0], await sha(plain));
  } finally {
    await s.cleanup();
  }
});

test('seed 003: save re-fetches discarded layers; with the registry gone it names each missing digest, writes nothing', async () => {
  const r2 = await startRegistry();
  const s = await tempStore();
  const out = join(work, 'seed003');
  try {
    await mkdir(out);
    await pushLayout(join(work, 'layout'), 'seed/003:1', r2.host, { srcTag: 'oci' });
    const ref = `${r2.host}/seed/003:1`;
    // The real thing: pull unpacks and, with --discard-unpacked-layers, drops the compressed layers.
    await s.ok('pull', '--plain-http', '--snapshotter', 'native', '--discard-unpacked-layers', ref);
    const e = entry('oci');
    const layers = e.images[0]!.layers.map((l) => l.digest);
    const gone = () => {
      for (const d of layers)
        assert.ok(!existsSync(join(s.root, 'content', 'blobs', 'sha256', d.slice(7))), `${d} discarded`);
    };
    gone();
    const saved = await s.run('save', '--plain-http', '-o', join(out, 'refetched.tar'), ref);
    assert.equal(saved.code, 0, saved.stderr);
    for (const d of layers.map((x) => x.slice(7, 19)))
      assert.ok(saved.stderr.includes(d), `progress shows ${d}`);
    const other = await tempStore();
    try {
      await other.ok('load', '--unpack=false', '-i', join(out, 'refetched.tar'));
      const img = await inspect(other, ref);
      assert.equal(img.Id, e.top.digest);
      assert.deepEqual(
        img.Platforms[0]!.Layers.map((l) => l.Digest),
        layers,
      );
    } finally {
      await other.cleanup();
    }
    // … and elsewhere: containerd imports it and finds it complete.
    await ctrd.ctrOk('-n', 'seed003', 'images', 'import', '--no-unpack', join(out, 'refetched.tar'));
    const check = await ctrd.ctrOk('-n', 'seed003', 'images', 'check');
    assert.match(check.split('\n').find((l) => l.startsWith(ref)) ?? '', /\scomplete\s/, check);

    // The re-fetched layers were only needed for the save: collected again, as discard asks.
    await s.ok('system', 'prune');
    gone();
    await r2.stop();
    const r = await s.run('save', '--plain-http', '-o', join(out, 'offline.tar'), ref);
    assert.equal(r.code, 1, r.stderr);
    for (const d of layers) assert.ok(r.stderr.includes(d), `names ${d}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${r2.host}/seed/003`), 'names the source tried');
    assert.deepEqual(await readdir(out), ['refetched.tar'], 'no offline.tar, no temp file');
  } finally {
    await s.cleanup();
    await r2.stop();
  }
});
