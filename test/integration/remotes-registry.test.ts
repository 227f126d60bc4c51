// The registry client against a real distribution 2.8 registry: resolve + fetch of OCI and Docker schema 2
// images pushed by skopeo, multi-platform indexes, Range resume, not-found and corrupt content.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parseManifestOrIndex } from '../../src/core/descriptor.ts';
import { DigestVerifier, parseDigest } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { parseReference } from '../../src/core/reference.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import type { Resolver } from '../../src/remotes/types.ts';
import { pushBlob, pushLayout, pushManifest, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('registry client against docker-registry 2.8', () => {
  let registry: TestRegistry;
  let resolver: Resolver;
  let layoutDir: string;

  before(async () => {
    registry = await startRegistry();
    resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 10 });
    layoutDir = await mkdtemp(join(tmpdir(), 'hoist-remotes-layout-'));
  });
  after(async () => {
    await registry.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  test('resolves and fetches an OCI image pushed by skopeo', async () => {
    const dir = join(layoutDir, 'oci');
    const [built] = await writeOciLayout(dir, [
      { tag: 'v1', image: { layers: [{ 'etc/hello': 'hello\n' }, { 'usr/bin/tool': 'binary' }] } },
    ]);
    await pushLayout(dir, 'test/oci:v1', registry.host);
    registry.resetStats();
    const ref = parseReference(`${registry.host}/test/oci:v1`);
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(descriptor.mediaType, MediaType.OciManifest);
    assert.equal(descriptor.digest, built!.top.digest);
    assert.equal(descriptor.size, built!.top.size);
    const fetcher = resolver.fetcher(ref);
    const bytes = await readAll(await fetcher.fetch(descriptor));
    assert.deepEqual(bytes, built!.top.bytes);
    const parsed = parseManifestOrIndex(bytes, descriptor.mediaType);
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') return;
    for (const layer of [parsed.manifest.config, ...parsed.manifest.layers]) {
      const v = DigestVerifier.for(layer.digest);
      for await (const c of await fetcher.fetch(layer)) v.update(c as Buffer);
      assert.equal(v.verify(layer), layer.digest);
    }
    // resolve used HEAD, not GET
    const manifestRequests = registry.stats().requests.filter((r) => r.path === '/v2/test/oci/manifests/v1');
    assert.deepEqual(
      manifestRequests.map((r) => r.method),
      ['HEAD'],
    );
  });

  test('resolves and fetches a Docker schema 2 image (skopeo --format v2s2)', async () => {
    const dir = join(layoutDir, 'v2s2');
    await writeOciLayout(dir, [{ tag: 'v1', image: { layers: [{ a: 'docker' }] } }]);
    await pushLayout(dir, 'test/docker:v1', registry.host, { format: 'v2s2' });
    const ref = parseReference(`${registry.host}/test/docker:v1`);
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(descriptor.mediaType, MediaType.DockerManifest);
    const bytes = await readAll(await resolver.fetcher(ref).fetch(descriptor));
    const v = DigestVerifier.for(descriptor.digest);
    v.update(bytes);
    v.verify(descriptor);
    const parsed = parseManifestOrIndex(bytes, descriptor.mediaType);
    assert.equal(
      parsed.kind === 'manifest' && parsed.manifest.layers[0]?.mediaType,
      MediaType.DockerLayerGzip,
    );
  });

  test('resolves a multi-platform OCI index and a Docker manifest list', async () => {
    const dir = join(layoutDir, 'multi');
    const platforms = [
      { layers: [{ arch: 'amd64' }] },
      { layers: [{ arch: 'arm64' }], platform: { architecture: 'arm64', variant: 'v8' } },
    ];
    const built = await writeOciLayout(dir, [
      { tag: 'oci', platforms },
      { tag: 'docker', platforms, format: 'docker' },
    ]);
    await pushLayout(dir, 'test/multi:oci', registry.host, { all: true });
    await pushLayout(dir, 'test/multi:docker', registry.host);
    for (const [tag, type] of [
      ['oci', MediaType.OciIndex],
      ['docker', MediaType.DockerManifestList],
    ] as const) {
      const ref = parseReference(`${registry.host}/test/multi:${tag}`);
      const { descriptor } = await resolver.resolve(ref);
      assert.equal(descriptor.mediaType, type);
      assert.equal(descriptor.digest, built.find((b) => b.tag === tag)!.top.digest);
      const parsed = parseManifestOrIndex(await readAll(await resolver.fetcher(ref).fetch(descriptor)), type);
      assert.equal(parsed.kind, 'index');
      if (parsed.kind !== 'index') continue;
      assert.deepEqual(
        parsed.index.manifests.map((m) => m.platform?.architecture),
        ['amd64', 'arm64'],
      );
      // a child manifest by digest
      const child = parsed.index.manifests[1]!;
      const childBytes = await readAll(await resolver.fetcher(ref).fetch(child));
      assert.equal(childBytes.byteLength, child.size);
    }
  });

  test('resolves a digest reference, and refuses a digest the registry does not have', async () => {
    const dir = join(layoutDir, 'bydigest');
    const [built] = await writeOciLayout(dir, [{ tag: 'd', image: { layers: [{ f: 'by digest' }] } }]);
    await pushLayout(dir, 'test/bydigest:d', registry.host);
    const ref = parseReference(`${registry.host}/test/bydigest@${built!.top.digest}`);
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(descriptor.digest, built!.top.digest);
    assert.equal(descriptor.size, built!.top.size);
    const other = parseReference(`${registry.host}/test/bydigest@sha256:${'0'.repeat(64)}`);
    await assert.rejects(resolver.resolve(other), (err: unknown) => {
      assert.ok(err instanceof HoistError);
      assert.equal(err.code, 'HOIST_NOT_FOUND');
      return true;
    });
  });

  test('an unknown tag or repository is HOIST_NOT_FOUND "<ref>: not found"', async () => {
    const ref = parseReference(`${registry.host}/test/nothing:here`);
    await assert.rejects(resolver.resolve(ref), (err: unknown) => {
      assert.ok(err instanceof HoistError);
      assert.equal(err.code, 'HOIST_NOT_FOUND');
      assert.equal(err.message, `${registry.host}/test/nothing:here: not found`);
      return true;
    });
  });

  test('a missing blob is HOIST_NOT_FOUND naming the digest', async () => {
    const ref = parseReference(`${registry.host}/test/oci:v1`);
    const digest = parseDigest(`sha256:${'a'.repeat(64)}`);
    await assert.rejects(
      resolver.fetcher(ref).fetch({ mediaType: MediaType.OciLayerGzip, digest, size: 10 }),
      (err: unknown) => {
        assert.ok(err instanceof HoistError);
        assert.equal(err.code, 'HOIST_NOT_FOUND');
        assert.match(err.message, new RegExp(digest));
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
  });

  test('Range resume: fetching from an offset yields exactly the tail, with one ranged request', async () => {
    const dir = join(layoutDir, 'range');
    const [built] = await writeOciLayout(dir, [{ tag: 'r', image: { layers: [{ randomBytes: 3 << 20 }] } }]);
    await pushLayout(dir, 'test/range:r', registry.host);
    const ref = parseReference(`${registry.host}/test/range:r`);
    const layer = built!.images[0]!.layers[0]!;
    const desc = { mediaType: layer.mediaType, digest: parseDigest(layer.digest), size: layer.size };
    const full = await readAll(await resolver.fetcher(ref).fetch(desc));
    assert.equal(full.byteLength, layer.size);
    registry.resetStats();
    const offset = 1_234_567;
    const tail = await readAll(await resolver.fetcher(ref).fetch(desc, { offset }));
    assert.equal(tail.byteLength, layer.size - offset);
    assert.ok(tail.equals(full.subarray(offset)));
    const gets = registry.stats().requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    assert.equal(gets.length, 1);
    assert.equal(gets[0]!.range, `bytes=${offset}-`);
    assert.equal(gets[0]!.status, 206);
    assert.equal(registry.stats().blobBytes, layer.size - offset);
    // offset == size: nothing to fetch, no request
    registry.resetStats();
    assert.equal(
      (await readAll(await resolver.fetcher(ref).fetch(desc, { offset: layer.size }))).byteLength,
      0,
    );
    assert.equal(registry.stats().requests.length, 0);
  });

  test('a 100 MiB layer: a download stopped part-way resumes without re-downloading', async () => {
    const dir = join(layoutDir, 'large');
    const [built] = await writeOciLayout(dir, [
      { tag: 'l', image: { layers: [{ randomBytes: 100 << 20 }] } },
    ]);
    await pushLayout(dir, 'test/large:l', registry.host);
    const layer = built!.images[0]!.layers[0]!;
    const desc = { mediaType: layer.mediaType, digest: parseDigest(layer.digest), size: layer.size };
    const ref = parseReference(`${registry.host}/test/large:l`);
    registry.resetStats();
    const verifier = DigestVerifier.for(desc.digest);
    const first = await resolver.fetcher(ref).fetch(desc);
    for await (const c of first) {
      verifier.update(c as Buffer);
      if (verifier.bytes >= 30 << 20) break; // stops reading and destroys the stream
    }
    const rest = await resolver.fetcher(ref).fetch(desc, { offset: verifier.bytes });
    for await (const c of rest) verifier.update(c as Buffer);
    assert.equal(verifier.verify(desc), desc.digest);
    const gets = registry.stats().requests.filter((r) => r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.equal(gets[1]!.range?.startsWith('bytes='), true);
    // at most what was in flight when the first stream stopped is served twice
    assert.ok(registry.stats().blobBytes < desc.size + (20 << 20), `${registry.stats().blobBytes} served`);
  });

  test('corrupt bytes in the registry are streamed as-is; the DigestVerifier catches them', async () => {
    const dir = join(layoutDir, 'corrupt');
    const [built] = await writeOciLayout(dir, [{ tag: 'c', image: { layers: [{ f: 'x'.repeat(5000) }] } }]);
    await pushLayout(dir, 'test/corrupt:c', registry.host);
    const layer = built!.images[0]!.layers[0]!;
    await registry.corruptBlob(layer.digest);
    const ref = parseReference(`${registry.host}/test/corrupt:c`);
    const desc = { mediaType: layer.mediaType, digest: parseDigest(layer.digest), size: layer.size };
    const v = DigestVerifier.for(desc.digest);
    for await (const c of await resolver.fetcher(ref).fetch(desc)) v.update(c as Buffer);
    assert.throws(
      () => v.verify(desc),
      (err: unknown) => err instanceof HoistError && err.code === 'HOIST_DIGEST_MISMATCH',
    );
  });

  test('a raw-pushed manifest whose layer size is wrong: the fetcher refuses the extra bytes', async () => {
    const layerBytes = Buffer.from('not really a tarball, but the registry does not care');
    const configBytes = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
    const layerDigest = await pushBlob(registry.host, 'test/raw', layerBytes);
    const configDigest = await pushBlob(registry.host, 'test/raw', configBytes);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.byteLength },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: layerDigest, size: 10 }],
    });
    await pushManifest(registry.host, 'test/raw', 'wrongsize', manifest, MediaType.OciManifest);
    const ref = parseReference(`${registry.host}/test/raw:wrongsize`);
    const { descriptor } = await resolver.resolve(ref);
    const parsed = parseManifestOrIndex(
      await readAll(await resolver.fetcher(ref).fetch(descriptor)),
      descriptor.mediaType,
    );
    assert.equal(parsed.kind, 'manifest');
    if (parsed.kind !== 'manifest') return;
    const layer = parsed.manifest.layers[0]!;
    await assert.rejects(readAll(await resolver.fetcher(ref).fetch(layer)), (err: unknown) => {
      assert.ok(err instanceof HoistError);
      assert.equal(err.code, 'HOIST_SIZE_MISMATCH');
      return true;
    });
  });

  test('hostsFor names the registry', () => {
    assert.deepEqual(resolver.hostsFor(parseReference(`${registry.host}/a/b:c`)), [registry.host]);
    assert.deepEqual(createResolver().hostsFor(parseReference('alpine')), ['registry-1.docker.io']);
  });
});
