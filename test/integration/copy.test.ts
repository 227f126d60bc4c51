// `hoist manifest inspect` and `hoist copy` against two Distribution registries with Basic auth: registry
// to registry (every platform by default, --platform to pick one, mounts within one registry), and
// through docker-archive, oci-archive and OCI layouts; skopeo reads every result and sees the digests the
// source has. The scratch namespace a copy uses is gone afterwards.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type RequestRecord, startCountingProxy } from '../helpers/counting-proxy.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { writeHostsDir } from '../helpers/peer-nodes.ts';
import { DEFAULT_USERS, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';

const run = promisify(execFile);
const [[USER, PASSWORD]] = Object.entries(DEFAULT_USERS) as [[string, string]];
const CREDS = `${USER}:${PASSWORD}`;

let a: TestRegistry;
let b: TestRegistry;
let h: HoistStore;
let work: string;
let built: BuiltEntry[];

before(async () => {
  [a, b] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'basic' })]);
  h = await tempStore();
  work = await mkdtemp(join(tmpdir(), 'hoist-copy-'));
  const layout = join(work, 'layout');
  built = await writeOciLayout(layout, [
    { tag: 'one', image: { layers: [{ 'etc/one': 'one\n' }, { randomBytes: 30_000 }] } },
    {
      tag: 'multi',
      platforms: [
        { platform: { os: 'linux', architecture: 'amd64' }, layers: [{ 'etc/amd64': 'amd64\n' }] },
        { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [{ 'etc/arm64': 'a\n' }] },
      ],
    },
  ]);
  const creds = { username: USER, password: PASSWORD };
  await pushLayout(layout, 'src/one:1', a.host, { srcTag: 'one', creds });
  await pushLayout(layout, 'src/multi:1', a.host, { srcTag: 'multi', all: true, creds });
  // The CLI's credentials for both registries, as `hoist login` writes them.
  const auth = Buffer.from(CREDS).toString('base64');
  await mkdir(join(h.home, '.docker'), { recursive: true });
  await writeFile(
    join(h.home, '.docker', 'config.json'),
    JSON.stringify({ auths: { [a.host]: { auth }, [b.host]: { auth } } }),
  );
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await h?.cleanup();
  await rm(work, { recursive: true, force: true });
});

async function skopeo(...args: string[]): Promise<string> {
  return (await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

async function digestAt(ref: string, ...extra: string[]): Promise<string> {
  const out = await skopeo(
    'inspect',
    '--tls-verify=false',
    '--creds',
    CREDS,
    ...extra,
    '--raw',
    `docker://${ref}`,
  );
  return `sha256:${(await import('node:crypto')).createHash('sha256').update(out).digest('hex')}`;
}

const multiDigest = () => built.find((e) => e.tag === 'multi')!.top.digest;

test('manifest inspect: the index, --raw bytes with the reference digest, --platform one manifest', async () => {
  const index = JSON.parse(await h.ok('manifest', 'inspect', `${a.host}/src/multi:1`)) as {
    manifests: { platform: { architecture: string } }[];
  };
  assert.deepEqual(
    index.manifests.map((m) => m.platform.architecture),
    ['amd64', 'arm64'],
  );
  const raw = await h.ok('manifest', 'inspect', '--raw', `${a.host}/src/multi:1`);
  const { createHash } = await import('node:crypto');
  assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, multiDigest());
  const arm = JSON.parse(
    await h.ok('manifest', 'inspect', '--platform', 'linux/arm64', `${a.host}/src/multi:1`),
  ) as { layers: unknown[]; config: unknown };
  assert.equal(arm.layers.length, 1);
  const missing = await h.run('manifest', 'inspect', `${a.host}/src/nothing:1`);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not found/);
});

test('copy between two registries with auth: every platform, digests kept (skopeo)', async () => {
  await h.ok('copy', `${a.host}/src/multi:1`, `docker://${b.host}/dst/multi:copied`);
  assert.equal(await digestAt(`${b.host}/dst/multi:copied`), multiDigest());
  for (const arch of ['amd64', 'arm64']) {
    const out = await skopeo(
      'inspect',
      '--tls-verify=false',
      '--creds',
      CREDS,
      '--override-arch',
      arch,
      `docker://${b.host}/dst/multi:copied`,
    );
    assert.equal((JSON.parse(out) as { Architecture: string }).Architecture, arch);
  }
  // Again: everything is there already.
  const again = await h.run('copy', `${a.host}/src/multi:1`, `${b.host}/dst/multi:copied`);
  assert.match(again.stderr, /0 copied, 0 mounted/);
});

test('copy --platform picks one manifest; within one registry blobs are mounted', async () => {
  const armDigest = await h.ok(
    'copy',
    '-q',
    '--platform',
    'linux/arm64',
    `${a.host}/src/multi:1`,
    `${b.host}/dst/arm:1`,
  );
  assert.equal(await digestAt(`${b.host}/dst/arm:1`), armDigest.trim());
  assert.notEqual(armDigest.trim(), multiDigest());
  const r = await h.run('copy', `${a.host}/src/one:1`, `${a.host}/other/one:1`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /0 copied, 3 mounted/);
  assert.equal(await digestAt(`${a.host}/other/one:1`), await digestAt(`${a.host}/src/one:1`));
});

test('copy to and from docker-archive, oci-archive and an OCI layout', async () => {
  const one = await digestAt(`${a.host}/src/one:1`);
  const docker = join(work, 'one-docker.tar');
  const oci = join(work, 'one-oci.tar');
  const dir = join(work, 'one-layout');
  await h.ok('copy', `${a.host}/src/one:1`, `docker-archive:${docker}`);
  await h.ok('copy', `${a.host}/src/multi:1`, `oci-archive:${oci}:v1`);
  await h.ok('copy', `docker-archive:${docker}`, `oci:${dir}:v2`);
  // skopeo reads what hoist wrote.
  const fromDocker = JSON.parse(await skopeo('inspect', `docker-archive:${docker}`)) as { Layers: string[] };
  assert.equal(fromDocker.Layers.length, 2);
  const fromOci = await skopeo('inspect', '--raw', `oci-archive:${oci}:v1`);
  const { createHash } = await import('node:crypto');
  assert.equal(`sha256:${createHash('sha256').update(fromOci).digest('hex')}`, multiDigest());
  assert.equal(
    `sha256:${createHash('sha256')
      .update(await skopeo('inspect', '--raw', `oci:${dir}:v2`))
      .digest('hex')}`,
    one,
  );
  // And back to a registry, with the same digests.
  await h.ok('copy', `oci-archive:${oci}:v1`, `${b.host}/from/oci-archive:1`);
  assert.equal(await digestAt(`${b.host}/from/oci-archive:1`), multiDigest());
  await h.ok('copy', `oci:${dir}:v2`, `${b.host}/from/layout:1`);
  assert.equal(await digestAt(`${b.host}/from/layout:1`), one);
  // No scratch namespace or image is left in the store.
  assert.doesNotMatch(await h.ok('namespace', 'ls'), /hoist-copy/);
  assert.equal((await h.ok('images', '-q')).trim(), '');
});

test('copy through a mirror that sends wrong bytes: the destination refuses them, the blob comes again from the upstream', async () => {
  const layer = built.find((e) => e.tag === 'one')!.images[0]!.layers[1]!;
  const seen: RequestRecord[] = [];
  const registryPort = Number(a.registryHost.split(':')[1]);
  const mirror = await startCountingProxy(registryPort, (r) => seen.push(r));
  try {
    mirror.serve(new RegExp(`/blobs/${layer.digest}`), {
      status: 200,
      headers: { 'content-type': 'application/octet-stream', 'docker-content-digest': layer.digest },
      body: Buffer.alloc(layer.size, 0x5a),
    });
    const hostsDir = await writeHostsDir(join(work, 'hosts-mirror'), a.host, [`127.0.0.1:${mirror.port}`]);
    a.resetStats();
    await h.ok('copy', '--hosts-dir', hostsDir, `${a.host}/src/one:1`, `${b.host}/dst/mirrored:1`);
    assert.ok(
      seen.some((r) => r.path.includes(`/blobs/${layer.digest}`) && r.bytes === layer.size),
      'the mirror was asked and sent its (wrong) bytes',
    );
    const upstream = a
      .stats()
      .requests.filter((r) => r.method === 'GET' && r.path.includes(`/blobs/${layer.digest}`));
    assert.equal(upstream.length, 1, 'fetched once more, from the upstream');
    assert.equal(await digestAt(`${b.host}/dst/mirrored:1`), await digestAt(`${a.host}/src/one:1`));
    // What the destination holds under the layer's digest is the layer.
    const blob = await skopeo(
      'inspect',
      '--tls-verify=false',
      '--creds',
      CREDS,
      `docker://${b.host}/dst/mirrored:1`,
    );
    assert.ok((JSON.parse(blob) as { Layers: string[] }).Layers.includes(layer.digest));
  } finally {
    mirror.server.close();
  }
});
