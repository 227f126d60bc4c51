// Pull from the real registry: OCI and Docker schema 2, multi-platform indexes, Basic and Bearer-token
// auth through `hoist login`, and a large layer streamed in bounded memory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { MAIN, NODE, tableRows, tempStore } from '../helpers/run-hoist.ts';

let reg: TestRegistry;
let work: string;
let built: BuiltEntry[];

const layer = (name: string) => ({ [`etc/${name}`]: `${name}\n` });

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-formats-'));
  built = await writeOciLayout(join(work, 'layout'), [
    { tag: 'oci', image: { layers: [layer('oci'), { randomBytes: 50_000 }] } },
    { tag: 'docker', format: 'docker', image: { format: 'docker', layers: [layer('docker')] } },
    {
      tag: 'multi',
      platforms: [
        { platform: { architecture: 'amd64' }, layers: [layer('amd64')] },
        { platform: { architecture: 'arm64', variant: 'v8' }, layers: [layer('arm64')] },
        { platform: { architecture: 'arm', variant: 'v7' }, layers: [layer('armv7')] },
      ],
    },
  ]);
  await pushLayout(join(work, 'layout'), 'f/oci:1', reg.host, { srcTag: 'oci' });
  await pushLayout(join(work, 'layout'), 'f/docker:1', reg.host, { srcTag: 'docker' });
  await pushLayout(join(work, 'layout'), 'f/multi:1', reg.host, { srcTag: 'multi', all: true });
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const entry = (tag: string) => built.find((b) => b.tag === tag)!;

async function inspect(h: Awaited<ReturnType<typeof tempStore>>, name: string) {
  return JSON.parse(await h.ok('image', 'inspect', name))[0] as {
    Id: string;
    Target: { mediaType: string };
    Platforms: { Platform: string; Config: string }[];
  };
}

test('OCI and Docker schema 2 images pull with their media types and digests', async () => {
  const h = await tempStore();
  try {
    for (const [repo, tag, mt] of [
      ['f/oci', 'oci', 'application/vnd.oci.image.manifest.v1+json'],
      ['f/docker', 'docker', 'application/vnd.docker.distribution.manifest.v2+json'],
    ] as const) {
      const name = `${reg.host}/${repo}:1`;
      await h.ok('pull', '--plain-http', name);
      const img = await inspect(h, name);
      assert.equal(img.Id, entry(tag).top.digest);
      assert.equal(img.Target.mediaType, mt);
      assert.equal(img.Platforms[0]!.Config, entry(tag).images[0]!.config.digest);
    }
    assert.equal(tableRows(await h.ok('images')).length, 2);
  } finally {
    await h.cleanup();
  }
});

test('multi-platform: host platform by default, --platform linux/arm64 (v8 default), --all-platforms', async () => {
  const h = await tempStore();
  try {
    const name = `${reg.host}/f/multi:1`;
    const e = entry('multi');
    const cfg = (arch: string) => e.images.find((i) => i.platform.architecture === arch)!.config.digest;
    const blob = (d: string) => join(h.root, 'content', 'blobs', 'sha256', d.slice(7));

    await h.ok('pull', '--plain-http', '--platform', 'linux/arm64', name);
    let img = await inspect(h, name);
    assert.equal(img.Id, e.top.digest, 'the image is the index');
    assert.deepEqual(
      img.Platforms.map((p) => p.Platform),
      ['linux/arm64/v8'],
    );
    assert.ok(existsSync(blob(cfg('arm64'))));
    assert.ok(!existsSync(blob(cfg('amd64'))), 'other platforms are not fetched');

    await h.ok('pull', '--plain-http', '--all-platforms', name);
    img = await inspect(h, name);
    assert.deepEqual(img.Platforms.map((p) => p.Platform).sort(), [
      'linux/amd64',
      'linux/arm/v7',
      'linux/arm64/v8',
    ]);

    const none = await h.run('pull', '--plain-http', '--platform', 'linux/s390x', name);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /no manifest for the requested platform \(image has: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)/,
    );
  } finally {
    await h.cleanup();
  }
});

for (const auth of ['basic', 'token'] as const) {
  test(`${auth} auth: pull fails without login, hoist login checks and stores credentials, pull works`, async () => {
    const r = await startRegistry({ auth });
    const h = await tempStore();
    try {
      await pushLayout(join(work, 'layout'), 'secure/app:1', r.host, {
        srcTag: 'oci',
        creds: { username: 'testuser', password: 'testpassword' },
      });
      const name = `${r.host}/secure/app:1`;
      const denied = await h.run('pull', '--plain-http', name);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /hoist login/);

      const bad = await h.run('login', '--plain-http', '-u', 'testuser', '-p', 'wrong', r.host);
      assert.equal(bad.code, 1);
      assert.ok(!existsSync(join(h.home, '.docker', 'config.json')), 'bad credentials are not stored');

      assert.match(
        await h.ok('login', '--plain-http', '-u', 'testuser', '-p', 'testpassword', r.host),
        /Login Succeeded/,
      );
      const cfg = JSON.parse(await readFile(join(h.home, '.docker', 'config.json'), 'utf8'));
      assert.ok(cfg.auths[r.host].auth, 'credentials written to config.json');

      await h.ok('pull', '--plain-http', name);
      assert.equal((await inspect(h, name)).Id, entry('oci').top.digest);
      if (auth === 'token')
        assert.ok(r.stats().tokenRequests.length > 0, 'a token was fetched from the issuer');
      await h.ok('logout', r.host);
    } finally {
      await h.cleanup();
      await r.stop();
    }
  });
}

test('a layer over 100 MB is streamed: peak memory stays bounded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-big-'));
  const h = await tempStore();
  try {
    const big = await writeOciLayout(join(dir, 'layout'), [
      { tag: 'big', image: { layers: [{ randomBytes: 120 * 1024 * 1024 }] } },
    ]);
    await pushLayout(join(dir, 'layout'), 'big/layer:1', reg.host, { srcTag: 'big' });
    const child = spawn(
      '/usr/bin/time',
      [
        '-f',
        'maxrss_kb=%M',
        NODE,
        MAIN,
        '--root',
        h.root,
        'pull',
        '-q',
        '--plain-http',
        `${reg.host}/big/layer:1`,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 0, stderr);
    const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1]);
    assert.ok(kb > 0, 'measured');
    assert.ok(kb < 200 * 1024, `peak RSS ${Math.round(kb / 1024)} MiB for a 120 MiB layer`);
    const layerDigest = big[0]!.images[0]!.layers[0]!.digest;
    assert.ok(existsSync(join(h.root, 'content', 'blobs', 'sha256', layerDigest.slice(7))));
  } finally {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
