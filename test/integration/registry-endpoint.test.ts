// The pull side of the OCI Distribution spec on hoist serve's peer endpoint (src/server/registry): /v2/,
// GET and HEAD on manifests by tag (with containerd's ?ns=) and digest, blobs whole and by Range (206,
// Content-Range, 416), tags/list, the spec's error bodies, 405 for every write, and only committed content.
// Then real clients: skopeo inspect and skopeo copy read it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { sha256 } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { type PeerStore, type StoredImage, startPeerStore } from '../helpers/peer-store.ts';
import { startServe } from '../helpers/serve.ts';

const run = promisify(execFile);
let peer: PeerStore;
let app: StoredImage;
let other: StoredImage;

before(async () => {
  peer = await startPeerStore();
  app = await peer.addImage('k8s.io', 'docker.io/library/app:1', 300_000);
  other = await peer.addImage('default', '127.0.0.1:5000/team/tool:v2', 1000);
});
after(() => peer.close());

async function call(path: string, init: RequestInit = {}) {
  const res = await fetch(`http://${peer.host}${path}`, init);
  const body = Buffer.from(await res.arrayBuffer());
  return { res, body, h: (k: string) => res.headers.get(k) };
}

async function errorCode(path: string, init: RequestInit = {}): Promise<[number, string]> {
  const { res, body } = await call(path, init);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const doc = JSON.parse(body.toString()) as { errors: { code: string; message: string }[] };
  assert.equal(doc.errors.length, 1);
  assert.ok(doc.errors[0]!.message);
  return [res.status, doc.errors[0]!.code];
}

test('/v2/ answers 200 with the API version header, GET and HEAD', async () => {
  for (const method of ['GET', 'HEAD']) {
    const { res, h } = await call('/v2/', { method });
    assert.equal(res.status, 200);
    assert.equal(h('docker-distribution-api-version'), 'registry/2.0');
  }
});

test('manifests by tag: ?ns=<registry> as containerd asks a mirror, and the full name without it', async () => {
  for (const path of [
    '/v2/library/app/manifests/1?ns=docker.io',
    '/v2/docker.io/library/app/manifests/1',
    '/v2/team/tool/manifests/v2?ns=127.0.0.1:5000',
  ]) {
    const want = path.includes('tool') ? other : app;
    const { res, body, h } = await call(path);
    assert.equal(res.status, 200, path);
    assert.equal(h('content-type'), MediaType.OciManifest);
    assert.equal(h('docker-content-digest'), want.manifestDigest);
    assert.equal(Number(h('content-length')), want.manifest.byteLength);
    assert.deepEqual(body, want.manifest);
    const head = await call(path, { method: 'HEAD' });
    assert.equal(head.res.status, 200);
    assert.equal(head.h('docker-content-digest'), want.manifestDigest);
    assert.equal(Number(head.h('content-length')), want.manifest.byteLength);
    assert.equal(head.body.byteLength, 0);
  }
});

test('manifests by digest: media type from the document; a layer is not a manifest', async () => {
  const { res, body, h } = await call(`/v2/library/app/manifests/${app.manifestDigest}?ns=docker.io`);
  assert.equal(res.status, 200);
  assert.equal(h('content-type'), MediaType.OciManifest);
  assert.equal(h('docker-content-digest'), app.manifestDigest);
  assert.deepEqual(body, app.manifest);
  assert.deepEqual(await errorCode(`/v2/library/app/manifests/${app.layerDigest}`), [
    404,
    'MANIFEST_UNKNOWN',
  ]);
});

test('404s and 400s carry the spec error codes', async () => {
  assert.deepEqual(await errorCode('/v2/library/app/manifests/nope?ns=docker.io'), [404, 'MANIFEST_UNKNOWN']);
  assert.deepEqual(await errorCode('/v2/library/absent/manifests/1?ns=docker.io'), [404, 'NAME_UNKNOWN']);
  assert.deepEqual(await errorCode(`/v2/library/app/blobs/${sha256('absent')}`), [404, 'BLOB_UNKNOWN']);
  assert.deepEqual(await errorCode('/v2/library/app/blobs/sha256:xyz'), [400, 'DIGEST_INVALID']);
  assert.deepEqual(await errorCode('/v2/Bad..Name/manifests/1'), [400, 'NAME_INVALID']);
  assert.deepEqual(await errorCode('/v2/library/app/blobs/sha256%3Zz'), [400, 'DIGEST_INVALID']);
  // An escaped colon is the same digest.
  assert.equal((await call(`/v2/library/app/blobs/${app.layerDigest.replace(':', '%3A')}`)).res.status, 200);
  // HEAD: the status alone (no body), as the spec has it.
  const head = await call(`/v2/library/app/blobs/${sha256('absent')}`, { method: 'HEAD' });
  assert.equal(head.res.status, 404);
  assert.equal(head.body.byteLength, 0);
});

test('blobs: whole, HEAD, Range 206 with Content-Range, suffix and open ranges, 416 past the end', async () => {
  const path = `/v2/library/app/blobs/${app.layerDigest}?ns=docker.io`;
  const size = app.layer.byteLength;
  const whole = await call(path);
  assert.equal(whole.res.status, 200);
  assert.equal(whole.h('docker-content-digest'), app.layerDigest);
  assert.equal(whole.h('content-type'), 'application/octet-stream');
  assert.equal(Number(whole.h('content-length')), size);
  assert.equal(whole.h('accept-ranges'), 'bytes');
  assert.deepEqual(whole.body, app.layer);
  const head = await call(path, { method: 'HEAD' });
  assert.equal(head.res.status, 200);
  assert.equal(Number(head.h('content-length')), size);
  assert.equal(head.body.byteLength, 0);
  const cases: [string, number, number][] = [
    ['bytes=100-199', 100, 199],
    ['bytes=1000-', 1000, size - 1],
    ['bytes=-10', size - 10, size - 1],
    [`bytes=5-${size + 50}`, 5, size - 1],
  ];
  for (const [range, start, end] of cases) {
    const part = await call(path, { headers: { range } });
    assert.equal(part.res.status, 206, range);
    assert.equal(part.h('content-range'), `bytes ${start}-${end}/${size}`);
    assert.equal(Number(part.h('content-length')), end - start + 1);
    assert.deepEqual(part.body, app.layer.subarray(start, end + 1));
  }
  const past = await call(path, { headers: { range: `bytes=${size}-` } });
  assert.equal(past.res.status, 416);
  assert.equal(past.h('content-range'), `bytes */${size}`);
  // A blob is found by digest in any served namespace, under any repository name.
  const elsewhere = await call(`/v2/team/tool/blobs/${app.layerDigest}`);
  assert.deepEqual(elsewhere.body, app.layer);
});

test('writes are 405 UNSUPPORTED; tags/list lists the tags', async () => {
  for (const [method, path] of [
    ['POST', '/v2/library/app/blobs/uploads/'],
    ['PUT', '/v2/library/app/manifests/2'],
    ['PATCH', '/v2/library/app/blobs/uploads/x'],
    ['DELETE', `/v2/library/app/manifests/${app.manifestDigest}`],
  ] as const) {
    const { res, body } = await call(path, { method, body: method === 'DELETE' ? null : 'x' });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    assert.equal(
      (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code,
      'UNSUPPORTED',
    );
  }
  const tags = await call('/v2/library/app/tags/list?ns=docker.io');
  assert.deepEqual(JSON.parse(tags.body.toString()), { name: 'library/app', tags: ['1'] });
});

test('an ingest in progress is not served; the same blob once committed is', async () => {
  const bytes = Buffer.alloc(4096, 7);
  const digest = sha256(bytes);
  const writer = await peer.backend.content.writer(
    { namespace: 'k8s.io' },
    { ref: 'partial', expected: { digest, size: bytes.byteLength } },
  );
  await writer.write(bytes.subarray(0, 2048));
  assert.deepEqual(await errorCode(`/v2/library/app/blobs/${digest}`), [404, 'BLOB_UNKNOWN']);
  // The open writer (holding its ref's lock) does not stop reads of other blobs.
  assert.equal((await call(`/v2/library/app/blobs/${app.layerDigest}`)).res.status, 200);
  await writer.write(bytes.subarray(2048));
  await writer.commit(bytes.byteLength, digest);
  assert.deepEqual((await call(`/v2/library/app/blobs/${digest}`)).body, bytes);
});

test('skopeo inspect and skopeo copy read the endpoint', {
  skip: !existsSync('/usr/bin/skopeo'),
}, async () => {
  const ref = `docker://${peer.host}/docker.io/library/app:1`;
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', ref]);
  const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; RepoTags: string[] };
  assert.equal(info.Digest, app.manifestDigest);
  assert.deepEqual(info.Layers, [app.layerDigest]);
  assert.deepEqual(info.RepoTags, ['1']);
  const dir = await mkdtemp(join(tmpdir(), 'hoist-skopeo-'));
  try {
    // dir: keeps blobs as they came (oci: would compress the uncompressed layer), named by their hex.
    await run('skopeo', ['copy', '--src-tls-verify=false', ref, `dir:${dir}`]);
    const layer = await readFile(join(dir, app.layerDigest.slice(7)));
    assert.deepEqual(layer, app.layer);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hoist serve takes the endpoint from the [serve] table of its config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-registry-cfg-'));
  const config = join(dir, 'config.toml');
  await writeFile(config, '[serve]\nregistry_address = "127.0.0.1:0"\nregistry_namespaces = ["default"]\n');
  const served = await startServe({ dir, args: ['--config', config] });
  try {
    const at = /"registry":"(127\.0\.0\.1:\d+)"/.exec(served.log())?.[1];
    assert.ok(at, served.log());
    const res = await fetch(`http://${at}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  } finally {
    await served.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
