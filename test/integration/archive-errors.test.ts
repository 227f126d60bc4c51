// Bad archives through the CLI: truncated, corrupt, hostile (`../`, absolute names, links out) or
// incomplete ones fail with a clear message and a non-zero exit, and leave no names and (after prune) no
// content. A save that cannot complete leaves no output file. Also: nameless images list as <none>, a
// legacy docker archive written here loads (and unpacks), and a large layer passes through save and load in bounded memory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { type BuiltEntry, tarOf, writeOciLayout } from '../helpers/image-builder.ts';
import { type HoistStore, MAIN, NODE, tableRows, tempStore } from '../helpers/run-hoist.ts';

let work: string;
let layout: string;
let built: BuiltEntry[];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-archive-err-'));
  layout = join(work, 'layout');
  built = await writeOciLayout(layout, [
    { tag: 'app', image: { layers: [{ 'etc/app': 'app\n' }, { 'etc/more': 'more\n' }] } },
    {
      tag: 'multi',
      platforms: [
        { platform: { architecture: 'amd64' }, layers: [{ 'etc/amd64': 'amd64\n' }] },
        { platform: { architecture: 'arm64', variant: 'v8' }, layers: [{ 'etc/arm64': 'arm64\n' }] },
      ],
    },
  ]);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Entry {
  name: string;
  data?: Buffer | string;
  type?: 'symlink' | 'link';
  linkname?: string;
}

const blob = async (digest: string) => readFile(join(layout, 'blobs', 'sha256', digest.slice(7)));
const blobEntry = async (digest: string): Promise<Entry> => ({
  name: `blobs/sha256/${digest.slice(7)}`,
  data: await blob(digest),
});

/** The 'app' image as OCI layout entries (layer blobs can be left out). */
async function appEntries(opts: { withoutLayer?: number } = {}): Promise<Entry[]> {
  const img = built[0]!.images[0]!;
  const entries: Entry[] = [{ name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' }];
  for (const [i, l] of img.layers.entries())
    if (i !== opts.withoutLayer) entries.push(await blobEntry(l.digest));
  entries.push(await blobEntry(img.config.digest), await blobEntry(img.manifest.digest));
  entries.push({
    name: 'index.json',
    data: JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: img.manifest.mediaType,
          digest: img.manifest.digest,
          size: img.manifest.size,
          annotations: { 'io.containerd.image.name': 'example.com/app:1' },
        },
      ],
    }),
  });
  return entries;
}

async function writeTar(file: string, entries: Entry[]): Promise<string> {
  const pack = tar.pack();
  const done = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(file));
  for (const e of entries) {
    if (e.type) pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? '' });
    else pack.entry({ name: e.name }, Buffer.from(e.data ?? ''));
  }
  pack.finalize();
  await done;
  return file;
}

/** A failed load: exit 1, the message, no image names, no content once pruned. */
async function assertRefused(s: HoistStore, file: string, message: RegExp): Promise<void> {
  const r = await s.run('load', '-i', file);
  assert.equal(r.code, 1, `exit code for ${file}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.equal((await s.ok('images', '--all', '-q')).trim(), '', 'no image names');
  await s.ok('system', 'prune');
  const df = JSON.parse(await s.ok('system', 'df', '-v', '--format', 'json'));
  assert.equal(df.Blobs.Files, 0, `no content left: ${JSON.stringify(df.Blobs)}`);
  assert.equal(df.Ingests.Count, 0, 'no partial ingests left');
}

test('hostile, corrupt, truncated and incomplete archives: clear error, exit 1, nothing half-loaded', async () => {
  const img = built[0]!.images[0]!;
  const good = await writeTar(join(work, 'good.tar'), await appEntries());
  const goodBytes = await readFile(good);
  const cases: [string, string, RegExp][] = [
    [
      'dotdot',
      await writeTar(join(work, 'dotdot.tar'), [...(await appEntries()), { name: '../x', data: 'x' }]),
      /refusing archive: entry "\.\.\/x" climbs out of the archive/,
    ],
    [
      'absolute',
      await writeTar(join(work, 'absolute.tar'), [
        { name: '/etc/cron.d/x', data: 'x' },
        ...(await appEntries()),
      ]),
      /refusing archive: entry "\/etc\/cron.d\/x" has an absolute path/,
    ],
    [
      'symlink',
      await writeTar(join(work, 'symlink.tar'), [
        ...(await appEntries()),
        { name: 'blobs/sha256/evil', type: 'symlink', linkname: '../../../etc/passwd' },
      ]),
      /refusing archive: link "blobs\/sha256\/evil" points outside the archive/,
    ],
    [
      'bad digest',
      await writeTar(join(work, 'corrupt.tar'), [
        {
          name: `blobs/sha256/${img.layers[0]!.digest.slice(7)}`,
          data: Buffer.alloc(img.layers[0]!.size, 0x55),
        },
        ...(await appEntries({ withoutLayer: 0 })),
      ]),
      new RegExp(`digest mismatch: expected ${img.layers[0]!.digest}`),
    ],
    [
      'missing blob',
      await writeTar(join(work, 'missing.tar'), await appEntries({ withoutLayer: 1 })),
      new RegExp(`archive is incomplete, 1 blob is missing:\\n\\s+${img.layers[1]!.digest}`),
    ],
    ['truncated', join(work, 'truncated.tar'), /truncated or not a valid tar/],
    [
      'truncated gzip',
      join(work, 'truncated.tar.gz'),
      /truncated or not a valid tar: unexpected end of file/,
    ],
  ];
  await writeFile(join(work, 'truncated.tar'), goodBytes.subarray(0, Math.floor(goodBytes.length / 2)));
  const gz = gzipSync(goodBytes);
  await writeFile(join(work, 'truncated.tar.gz'), gz.subarray(0, gz.length - 100));
  for (const [what, file, message] of cases) {
    const s = await tempStore();
    try {
      await assertRefused(s, file, message);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    } finally {
      await s.cleanup();
    }
  }
  const s = await tempStore();
  try {
    assert.match(
      await s.ok('load', '-i', good),
      /Loaded image: example.com\/app:1/,
      'the intact archive loads',
    );
  } finally {
    await s.cleanup();
  }
});

test('save that cannot complete leaves no output file; --no-fetch names every missing digest', async () => {
  const s = await tempStore();
  const out = join(work, 'out');
  await mkdir(out);
  try {
    const missingImage = await s.run('save', '-o', join(out, 'x.tar'), 'nothing:here');
    assert.equal(missingImage.code, 1);
    assert.match(missingImage.stderr, /not found/);
    // An index whose arm64 manifest is not in the store: load the amd64 platform only, as ctr exports it.
    const multi = built[1]!;
    const amd64 = multi.images.find((i) => i.platform.architecture === 'amd64')!;
    const arm64 = multi.images.find((i) => i.platform.architecture === 'arm64')!;
    const entries: Entry[] = [
      { name: `blobs/sha256/${multi.top.digest.slice(7)}`, data: multi.top.bytes },
      await blobEntry(amd64.manifest.digest),
      await blobEntry(amd64.config.digest),
      await blobEntry(amd64.layers[0]!.digest),
      {
        name: 'index.json',
        data: JSON.stringify({
          schemaVersion: 2,
          manifests: [
            {
              mediaType: multi.top.mediaType,
              digest: multi.top.digest,
              size: multi.top.size,
              annotations: { 'io.containerd.image.name': 'example.com/multi:1' },
            },
          ],
        }),
      },
    ];
    await s.ok('load', '--unpack=false', '-i', await writeTar(join(work, 'amd64-only.tar'), entries));
    await s.ok('save', '-o', join(out, 'host.tar'), 'example.com/multi:1');
    const r = await s.run(
      'save',
      '--all-platforms',
      '--no-fetch',
      '-o',
      join(out, 'all.tar'),
      'example.com/multi:1',
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`cannot save: 1 blob is missing from the store:\\n\\s+${arm64.manifest.digest}`),
    );
    assert.match(r.stderr, /no distribution source is recorded/);
    assert.deepEqual(await readdir(out), ['host.tar'], 'no all.tar and no temp file');
  } finally {
    await s.cleanup();
  }
});

test('images without a name load and list as <none>; a hand-written legacy docker archive loads', async () => {
  const s = await tempStore();
  try {
    const entries = (await appEntries()).map((e) =>
      e.name === 'index.json'
        ? {
            ...e,
            data: String(e.data).replace(
              /"annotations":\{[^}]*\}/,
              '"annotations":{"org.opencontainers.image.ref.name":"v1"}',
            ),
          }
        : e,
    );
    const out = await s.ok('load', '--no-unpack', '-i', await writeTar(join(work, 'nameless.tar'), entries));
    assert.match(out, new RegExp(`Loaded image ID: ${built[0]!.top.digest}`));
    const rows = tableRows(await s.ok('images'));
    assert.deepEqual(
      rows.map((r) => r.slice(0, 3)),
      [['<none>', '<none>', built[0]!.top.digest.slice(7, 19)]],
    );

    // Docker ≤ 24 `docker save`: a directory per layer, uncompressed layer.tar, config at the root.
    const collect = async (r: NodeJS.ReadableStream) => {
      const parts: Buffer[] = [];
      for await (const c of r) parts.push(Buffer.from(c as Buffer));
      return Buffer.concat(parts);
    };
    const l1 = await collect(tarOf({ 'etc/one': '1\n' }));
    const l2 = await collect(tarOf({ 'etc/two': '2\n' }));
    const { createHash } = await import('node:crypto');
    const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${hex(l1)}`, `sha256:${hex(l2)}`] },
      }),
    );
    const [id1, id2] = ['1', '2'].map((c) => c.repeat(64)) as [string, string];
    const legacy = await writeTar(join(work, 'legacy.tar'), [
      { name: `${id1}/VERSION`, data: '1.0' },
      { name: `${id1}/json`, data: JSON.stringify({ id: id1, created: '2020-01-01T00:00:00Z' }) },
      { name: `${id1}/layer.tar`, data: l1 },
      { name: `${id2}/VERSION`, data: '1.0' },
      { name: `${id2}/json`, data: JSON.stringify({ id: id2, parent: id1 }) },
      { name: `${id2}/layer.tar`, data: l2 },
      { name: `${hex(config)}.json`, data: config },
      {
        name: 'manifest.json',
        data: JSON.stringify([
          {
            Config: `${hex(config)}.json`,
            RepoTags: ['legacy:old'],
            Layers: [`${id1}/layer.tar`, `${id2}/layer.tar`],
          },
        ]),
      },
      { name: 'repositories', data: JSON.stringify({ legacy: { old: id2 } }) },
    ]);
    // Loading unpacks by default, here into the native snapshotter.
    assert.match(await s.ok('load', '--snapshotter', 'native', '-i', legacy), /Loaded image: legacy:old/);
    const img = JSON.parse(await s.ok('image', 'inspect', 'legacy:old'))[0];
    const b = await openEmbedded(s.root);
    try {
      const labels = (await b.content.info({ namespace: 'default' }, img.Platforms[0].Config)).labels;
      assert.ok(labels['containerd.io/gc.ref.snapshot.native'], `unpacked: ${JSON.stringify(labels)}`);
    } finally {
      await b.close();
    }
    assert.equal(img.Platforms[0].Config, `sha256:${hex(config)}`);
    assert.deepEqual(
      img.Platforms[0].Layers.map((l: { MediaType: string; Digest: string }) => [l.MediaType, l.Digest]),
      [
        ['application/vnd.docker.image.rootfs.diff.tar', `sha256:${hex(l1)}`],
        ['application/vnd.docker.image.rootfs.diff.tar', `sha256:${hex(l2)}`],
      ],
    );
  } finally {
    await s.cleanup();
  }
});

/** Run hoist under /usr/bin/time; returns peak RSS in KiB. */
async function peakRss(root: string, args: string[], stdoutFile?: string): Promise<number> {
  const child = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', NODE, MAIN, '--root', root, ...args], {
    stdio: ['ignore', stdoutFile ? 'pipe' : 'ignore', 'pipe'],
  });
  const writing =
    stdoutFile && child.stdout ? pipeline(child.stdout, createWriteStream(stdoutFile)) : undefined;
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((res) => child.on('close', res));
  await writing;
  assert.equal(code, 0, stderr);
  const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1]);
  assert.ok(kb > 0, 'measured');
  return kb;
}

test('a 256 MiB layer passes through load and save (to a file and to stdout) in bounded memory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-archive-big-'));
  const s = await tempStore();
  try {
    const big = await writeOciLayout(join(dir, 'layout'), [
      { tag: 'big', image: { layers: [{ randomBytes: 256 * 1024 * 1024 }], compression: 'none' } },
    ]);
    const index = join(dir, 'layout', 'index.json');
    const doc = JSON.parse(await readFile(index, 'utf8'));
    doc.manifests[0].annotations = { 'io.containerd.image.name': 'big/layer:1' };
    await writeFile(index, JSON.stringify(doc));
    const { execFileSync } = await import('node:child_process');
    execFileSync('tar', ['-C', join(dir, 'layout'), '-cf', join(dir, 'in.tar'), '.']);
    const limit = 200 * 1024;
    const loadKb = await peakRss(s.root, ['load', '--unpack=false', '-i', join(dir, 'in.tar')]);
    assert.ok(loadKb < limit, `load peak RSS ${Math.round(loadKb / 1024)} MiB for a 256 MiB layer`);
    const saveKb = await peakRss(s.root, ['save', '-o', join(dir, 'out.tar'), 'big/layer:1']);
    assert.ok(saveKb < limit, `save peak RSS ${Math.round(saveKb / 1024)} MiB for a 256 MiB layer`);
    const pipeKb = await peakRss(s.root, ['save', 'big/layer:1'], join(dir, 'stdout.tar'));
    assert.ok(pipeKb < limit, `save to stdout peak RSS ${Math.round(pipeKb / 1024)} MiB`);
    const { createHash } = await import('node:crypto');
    const hashFile = async (f: string) => {
      const h = createHash('sha256');
      await pipeline(createReadStream(f), h);
      return h.digest('hex');
    };
    assert.equal(await hashFile(join(dir, 'stdout.tar')), await hashFile(join(dir, 'out.tar')));
    const img = JSON.parse(await s.ok('image', 'inspect', 'big/layer:1'))[0];
    assert.equal(img.Id, big[0]!.top.digest);
  } finally {
    await s.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
