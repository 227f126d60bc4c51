// loadArchive and saveImages on the embedded store, with archives built in memory: every layout the loader
// must read (OCI, Docker legacy with manifest.json, pre-1.10 repositories-only, skopeo-style links), the
// naming rules, and that any bad archive leaves no names and (after GC) no content.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Backend } from '../../src/api/backend.ts';
import { loadArchive } from '../../src/archive/load.ts';
import { saveImages } from '../../src/archive/save.ts';
import type { Context } from '../../src/core/context.ts';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { ALL_PLATFORMS } from '../../src/images/walk.ts';
import { tarOf } from '../helpers/image-builder.ts';

const ctx: Context = { namespace: 'default' };
const dirs: string[] = [];
const backends: Backend[] = [];
after(async () => {
  for (const b of backends) await b.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function store(): Promise<Backend> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-archive-'));
  dirs.push(d);
  const b = await openEmbedded(d);
  backends.push(b);
  return b;
}

interface Entry {
  name: string;
  data?: Buffer | string;
  type?: 'symlink' | 'link' | 'directory' | 'fifo';
  linkname?: string;
}

async function collect(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function tarBuffer(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = collect(pack as unknown as AsyncIterable<Uint8Array>);
  for (const e of entries) {
    if (e.type) pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? '' });
    else pack.entry({ name: e.name }, Buffer.from(e.data ?? ''));
  }
  pack.finalize();
  return done;
}

const blobEntry = (b: Buffer): Entry => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, data: b });
const desc = (mediaType: string, b: Buffer) => ({ mediaType, digest: sha256(b), size: b.length });

interface TestImage {
  layerTar: Buffer;
  layer: Buffer;
  config: Buffer;
  manifest: Buffer;
  blobs: Entry[];
  target: { mediaType: string; digest: Digest; size: number };
}

async function image(files: Record<string, string>, gzip = true): Promise<TestImage> {
  const layerTar = await collect(tarOf(files));
  const layer = gzip ? gzipSync(layerTar) : layerTar;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['A=1'] },
      rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: desc(MediaType.OciConfig, config),
      layers: [desc(gzip ? MediaType.OciLayerGzip : MediaType.OciLayer, layer)],
    }),
  );
  return {
    layerTar,
    layer,
    config,
    manifest,
    blobs: [blobEntry(layer), blobEntry(config), blobEntry(manifest)],
    target: desc(MediaType.OciManifest, manifest),
  };
}

function indexJson(manifests: Record<string, unknown>[]): Entry {
  return { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests }) };
}

const load = (b: Backend, bytes: Buffer, opts = {}) => loadArchive(b, ctx, Readable.from([bytes]), opts);

async function names(b: Backend): Promise<string[]> {
  return (await b.images.list(ctx)).map((r) => r.name).sort();
}

/** A failed load leaves no names, no lease, and nothing once GC ran (loadArchive runs it). */
async function assertNothingLoaded(b: Backend): Promise<void> {
  assert.deepEqual(await names(b), []);
  assert.deepEqual(await b.leases.list(ctx), []);
  await b.collectGarbage();
  assert.deepEqual(await b.content.list(ctx), []);
  assert.deepEqual(await b.content.listStatuses(ctx), []);
}

test('OCI layout: names from io.containerd.image.name, GC labels, no lease left', async () => {
  const b = await store();
  const img = await image({ 'etc/a': 'a' });
  const archive = await tarBuffer([
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    ...img.blobs,
    indexJson([{ ...img.target, annotations: { 'io.containerd.image.name': 'example.com/app:1' } }]),
  ]);
  const r = await load(b, archive);
  assert.deepEqual(await names(b), ['example.com/app:1']);
  assert.equal(r.images[0]!.target.digest, img.target.digest);
  assert.deepEqual(r.images[0]!.configs, [sha256(img.config)]);
  const info = await b.content.info(ctx, img.target.digest);
  assert.equal(info.labels['containerd.io/gc.ref.content.config'], sha256(img.config));
  assert.equal(info.labels['containerd.io/gc.ref.content.l.0'], sha256(img.layer));
  assert.deepEqual(await b.leases.list(ctx), []);
  await b.collectGarbage();
  assert.equal((await b.content.list(ctx)).length, 3, 'the image keeps all its blobs through GC');
});

test('names: ref.name with a repository is a name, a bare tag is not (unless a base name), nameless kept by ID', async () => {
  const b = await store();
  const one = await image({ one: '1' });
  const two = await image({ two: '2' });
  const three = await image({ three: '3' });
  const archive = await tarBuffer([
    ...one.blobs,
    ...two.blobs,
    ...three.blobs,
    indexJson([
      { ...one.target, annotations: { 'org.opencontainers.image.ref.name': 'foo/bar:3' } },
      { ...two.target, annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
      three.target,
    ]),
  ]);
  const r = await load(b, archive);
  assert.deepEqual(await names(b), ['docker.io/foo/bar:3', two.target.digest, three.target.digest].sort());
  assert.deepEqual(
    r.images.map((i) => i.nameless),
    [false, true, true],
  );

  const c = await store();
  await load(c, archive, { baseName: 'registry.example/base' });
  assert.ok((await names(c)).includes('registry.example/base:v1'), 'the bare tag joins the base name');

  // Loading nameless images whose target already has a name adds no ID record.
  await b.images.create(ctx, { name: 'x.io/three:1', target: three.target, labels: {} });
  await b.images.delete(ctx, three.target.digest);
  await load(b, archive);
  assert.ok(!(await names(b)).includes(three.target.digest));
});

test('Docker legacy archive (VERSION/json/layer.tar per layer + manifest.json + repositories)', async () => {
  const b = await store();
  const base = await collect(tarOf({ 'etc/base': 'base' }));
  const top = await collect(tarOf({ 'etc/top': 'top' }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(base), sha256(top)] },
    }),
  );
  const id1 = 'a'.repeat(64);
  const id2 = 'b'.repeat(64);
  const configName = `${sha256(config).slice(7)}.json`;
  const archive = await tarBuffer([
    { name: `${id1}/VERSION`, data: '1.0' },
    { name: `${id1}/json`, data: JSON.stringify({ id: id1 }) },
    { name: `${id1}/layer.tar`, data: base },
    { name: `${id2}/VERSION`, data: '1.0' },
    { name: `${id2}/json`, data: JSON.stringify({ id: id2, parent: id1 }) },
    { name: `${id2}/layer.tar`, data: top },
    { name: configName, data: config },
    {
      name: 'manifest.json',
      data: JSON.stringify([
        { Config: configName, RepoTags: ['legacy/app:1'], Layers: [`${id1}/layer.tar`, `${id2}/layer.tar`] },
      ]),
    },
    { name: 'repositories', data: JSON.stringify({ 'legacy/app': { '1': id2 } }) },
  ]);
  const r = await load(b, archive);
  assert.deepEqual(await names(b), ['docker.io/legacy/app:1']);
  // The manifest hoist writes is byte-for-byte what containerd's importer makes for the same archive.
  const expected = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: desc(MediaType.DockerConfig, config),
      layers: [desc(MediaType.DockerLayer, base), desc(MediaType.DockerLayer, top)],
    }),
  );
  assert.equal(r.images[0]!.target.digest, sha256(expected));
  assert.equal(r.images[0]!.target.mediaType, MediaType.DockerManifest);
  assert.deepEqual(await b.content.readBlob(ctx, sha256(expected)), expected);
});

test('pre-1.10 Docker archive (repositories + layer dirs only): config made from the v1 json chain', async () => {
  const b = await store();
  const base = await collect(tarOf({ 'etc/base': 'base' }));
  const top = await collect(tarOf({ 'etc/top': 'top' }));
  const id1 = '1'.repeat(64);
  const id2 = '2'.repeat(64);
  const archive = await tarBuffer([
    { name: 'repositories', data: JSON.stringify({ old: { latest: id2 } }) },
    {
      name: `${id2}/json`,
      data: JSON.stringify({ id: id2, parent: id1, os: 'linux', architecture: 'amd64' }),
    },
    { name: `${id2}/layer.tar`, data: top },
    { name: `${id1}/json`, data: JSON.stringify({ id: id1, created: '2015-01-01T00:00:00Z' }) },
    { name: `${id1}/layer.tar`, data: base },
  ]);
  const r = await load(b, archive);
  assert.deepEqual(await names(b), ['docker.io/library/old:latest']);
  const cfg = JSON.parse((await b.content.readBlob(ctx, r.images[0]!.configs[0]!)).toString());
  assert.deepEqual(cfg.rootfs.diff_ids, [sha256(base), sha256(top)]);
  assert.equal(cfg.id, undefined, 'v1 chain fields are dropped');
  assert.equal(cfg.history.length, 2);
});

test('in-archive links (skopeo docker-archive style) are aliases; a gzip layer gets the gzip media type', async () => {
  const b = await store();
  const layerTar = await collect(tarOf({ 'etc/z': 'z' }));
  const gz = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({
      os: 'linux',
      architecture: 'amd64',
      rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    }),
  );
  const archive = await tarBuffer([
    { name: 'L1/layer.tar', type: 'symlink', linkname: '../layer.tgz' },
    { name: 'layer.tgz', data: gz },
    { name: 'c.json', data: config },
    {
      name: 'manifest.json',
      data: JSON.stringify([{ Config: 'c.json', RepoTags: ['z:1'], Layers: ['L1/layer.tar'] }]),
    },
  ]);
  const r = await load(b, archive);
  const m = JSON.parse((await b.content.readBlob(ctx, r.images[0]!.target.digest)).toString());
  assert.equal(m.layers[0].mediaType, MediaType.DockerLayerGzip);
  assert.equal(m.layers[0].digest, sha256(gz));
});

test('bad archives load nothing: missing blob, bad digest, diffID mismatch, hostile names and links, truncation', async () => {
  const img = await image({ 'etc/a': 'a' });
  const named = [{ ...img.target, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }];
  const cases: { what: string; entries: Entry[] | (() => Promise<Buffer>); code: string; message: RegExp }[] =
    [
      {
        what: 'manifest points at a missing layer',
        entries: [blobEntry(img.config), blobEntry(img.manifest), indexJson(named)],
        code: 'HOIST_NOT_FOUND',
        message: new RegExp(`incomplete.*\\n.*${sha256(img.layer)}`),
      },
      {
        what: 'blob content does not match its name',
        entries: [
          {
            name: `blobs/sha256/${sha256(img.layer).slice(7)}`,
            data: Buffer.concat([img.layer, Buffer.from('x')]),
          },
          blobEntry(img.config),
          blobEntry(img.manifest),
          indexJson(named),
        ],
        code: 'HOIST_DIGEST_MISMATCH',
        message: /archive entry blobs\/sha256\//,
      },
      {
        what: 'descriptor size differs from the blob',
        entries: (() => {
          const m = JSON.parse(img.manifest.toString());
          m.layers[0].size += 1;
          const manifest = Buffer.from(JSON.stringify(m));
          return [
            blobEntry(img.layer),
            blobEntry(img.config),
            blobEntry(manifest),
            indexJson([
              {
                ...desc(MediaType.OciManifest, manifest),
                annotations: { 'io.containerd.image.name': 'x.io/a:1' },
              },
            ]),
          ];
        })(),
        code: 'HOIST_SIZE_MISMATCH',
        message: /size of \d+ bytes, but the archive holds/,
      },
      {
        what: 'same size, wrong bytes',
        entries: [
          { name: `blobs/sha256/${sha256(img.layer).slice(7)}`, data: Buffer.alloc(img.layer.length, 1) },
          blobEntry(img.config),
          blobEntry(img.manifest),
          indexJson(named),
        ],
        code: 'HOIST_DIGEST_MISMATCH',
        message: /digest mismatch/,
      },
      {
        what: '../ entry',
        entries: [...img.blobs, { name: '../x', data: 'x' }, indexJson(named)],
        code: 'HOIST_INVALID_ARGUMENT',
        message: /climbs out/,
      },
      {
        what: 'absolute entry',
        entries: [{ name: '/etc/x', data: 'x' }, ...img.blobs, indexJson(named)],
        code: 'HOIST_INVALID_ARGUMENT',
        message: /absolute path/,
      },
      {
        what: 'symlink out of the archive',
        entries: [
          ...img.blobs,
          { name: 'blobs/sha256/evil', type: 'symlink', linkname: '../../../etc/passwd' },
        ],
        code: 'HOIST_INVALID_ARGUMENT',
        message: /points outside the archive/,
      },
      {
        what: 'absolute symlink',
        entries: [...img.blobs, { name: 'x', type: 'symlink', linkname: '/etc/passwd' }, indexJson(named)],
        code: 'HOIST_INVALID_ARGUMENT',
        message: /absolute path/,
      },
      {
        what: 'fifo entry',
        entries: [...img.blobs, { name: 'pipe', type: 'fifo' }, indexJson(named)],
        code: 'HOIST_INVALID_ARGUMENT',
        message: /is a fifo/,
      },
      {
        what: 'truncated',
        entries: async () => {
          const whole = await tarBuffer([...img.blobs, indexJson(named)]);
          return whole.subarray(0, 700);
        },
        code: 'HOIST_INVALID_ARGUMENT',
        message: /truncated/,
      },
      {
        what: 'legacy layer does not match its diffID',
        entries: [
          { name: 'L/layer.tar', data: img.layerTar.subarray(0, 1024) },
          { name: 'c.json', data: img.config },
          {
            name: 'manifest.json',
            data: JSON.stringify([{ Config: 'c.json', RepoTags: ['a:1'], Layers: ['L/layer.tar'] }]),
          },
        ],
        code: 'HOIST_DIGEST_MISMATCH',
        message: /config expects/,
      },
    ];
  for (const c of cases) {
    const b = await store();
    const bytes = typeof c.entries === 'function' ? await c.entries() : await tarBuffer(c.entries);
    await assert.rejects(
      load(b, bytes),
      (err: unknown) => {
        assert.ok(err instanceof HoistError, `${c.what}: ${String(err)}`);
        assert.equal(err.code, c.code, `${c.what}: ${err.message}`);
        assert.match(err.message, c.message, c.what);
        return true;
      },
      c.what,
    );
    await assertNothingLoaded(b);
  }
});

test('a blob the store already has is still checked against the archive copy', async () => {
  const b = await store();
  const img = await image({ 'etc/a': 'a' });
  const named = [{ ...img.target, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }];
  await load(b, await tarBuffer([...img.blobs, indexJson(named)]));
  const bad = await tarBuffer([
    { name: `blobs/sha256/${sha256(img.layer).slice(7)}`, data: Buffer.alloc(img.layer.length, 7) },
    blobEntry(img.config),
    blobEntry(img.manifest),
    indexJson([{ ...img.target, annotations: { 'io.containerd.image.name': 'x.io/other:1' } }]),
  ]);
  await assert.rejects(load(b, bad), /digest mismatch/);
  assert.deepEqual(await names(b), ['x.io/a:1']);
});

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

test('save → load → save gives the same bytes; an incomplete image writes nothing unless ensure fixes it', async () => {
  const a = await store();
  const img = await image({ 'etc/a': 'a', 'etc/b': 'b' });
  await load(
    a,
    await tarBuffer([
      ...img.blobs,
      indexJson([{ ...img.target, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }]),
    ]),
  );
  const first = new Sink();
  await saveImages(a, ctx, ['x.io/a:1'], first, { platforms: ALL_PLATFORMS });
  const b = await store();
  await loadArchive(b, ctx, Readable.from([first.bytes]));
  const second = new Sink();
  await saveImages(b, ctx, ['x.io/a:1'], second, { platforms: ALL_PLATFORMS });
  assert.ok(first.bytes.length > 0);
  assert.equal(sha256(second.bytes), sha256(first.bytes));

  // Make the image incomplete: drop the layer's record.
  await a.content.delete(ctx, sha256(img.layer));
  const out = new Sink();
  await assert.rejects(
    saveImages(a, ctx, ['x.io/a:1'], out, { platforms: ALL_PLATFORMS, noFetch: true }),
    (err: unknown) => err instanceof HoistError && err.message.includes(sha256(img.layer)),
  );
  assert.equal(out.bytes.length, 0, 'nothing written');
  const ensured: string[] = [];
  const fixed = new Sink();
  await saveImages(a, ctx, ['x.io/a:1'], fixed, {
    platforms: ALL_PLATFORMS,
    ensure: async (target) => {
      ensured.push(target.digest);
      const { writeBlob } = await import('../../src/metadata/write-blob.ts');
      await writeBlob(a.content, ctx, 'refetch', Readable.from([img.layer]), desc('x', img.layer));
    },
  });
  assert.deepEqual(ensured, [img.target.digest]);
  assert.equal(sha256(fixed.bytes), sha256(first.bytes));
});

test('gzip and zstd archives are sniffed and decompressed', async () => {
  const { zstdCompressSync } = await import('node:zlib');
  const img = await image({ 'etc/a': 'a' });
  const plain = await tarBuffer([
    ...img.blobs,
    indexJson([{ ...img.target, annotations: { 'io.containerd.image.name': 'x.io/a:1' } }]),
  ]);
  for (const [kind, bytes] of [
    ['gzip', gzipSync(plain)],
    ['zstd', zstdCompressSync(plain)],
  ] as const) {
    const b = await store();
    const input = new PassThrough();
    const loading = loadArchive(b, ctx, input);
    // Feed in small pieces: sniffing must not depend on the first chunk's size.
    for (let i = 0; i < bytes.length; i += 3) input.write(bytes.subarray(i, i + 3));
    input.end();
    const r = await loading;
    assert.equal(r.compression, kind);
    assert.deepEqual(await names(b), ['x.io/a:1']);
  }
});
