// Hosts, mirrors and HTTP edge cases: unreachable hosts, hosts.toml mirrors with fallback, redirects to
// another origin (no credentials carried), retries, servers that ignore Range, short and dropped bodies.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Descriptor } from '../../src/core/descriptor.ts';
import { parseDigest } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { parseReference } from '../../src/core/reference.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { startFakeServer } from '../helpers/fake-server.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function isCode(code: string, extra?: (err: HoistError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof HoistError, `expected a HoistError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.doesNotMatch(err.message, /\n/);
    extra?.(err);
    return true;
  };
}

function blobOf(bytes: Buffer): Descriptor {
  return {
    mediaType: MediaType.OciLayerGzip,
    digest: parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`),
    size: bytes.byteLength,
  };
}

describe('unreachable registries', () => {
  test('a closed port is HOIST_NETWORK naming the host, with a hint', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1 });
    await assert.rejects(
      resolver.resolve(parseReference(`${host}/a/b:c`)),
      isCode('HOIST_NETWORK', (err) => {
        assert.match(err.message, new RegExp(`cannot reach registry ${host}`));
        assert.match(err.message, /ECONNREFUSED/);
        assert.match(err.hint ?? '', /--plain-http/);
      }),
    );
  });

  test('an unknown host name is HOIST_NETWORK naming the host', async () => {
    const resolver = createResolver({ retries: 1 });
    await assert.rejects(
      resolver.resolve(parseReference('no-such-registry.invalid/a/b:c')),
      isCode('HOIST_NETWORK', (err) => assert.match(err.message, /no-such-registry\.invalid/)),
    );
  });
});

describe('hosts.toml mirrors', () => {
  let upstream: TestRegistry;
  let mirror: TestRegistry;
  let work: string;
  let digest: string;
  before(async () => {
    [upstream, mirror] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'hoist-mirror-'));
    const [built] = await writeOciLayout(join(work, 'layout'), [
      { tag: 'v1', image: { layers: [{ m: 'm' }] } },
    ]);
    digest = built!.top.digest;
    await pushLayout(join(work, 'layout'), 'test/app:v1', upstream.host);
    await pushLayout(join(work, 'layout'), 'test/app:v1', mirror.host);
    await pushLayout(join(work, 'layout'), 'test/upstream-only:v1', upstream.host);
  });
  after(async () => {
    await Promise.all([upstream.stop(), mirror.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  async function hostsDir(mirrorHost: string): Promise<string> {
    const dir = await mkdtemp(join(work, 'certs.d-'));
    await mkdir(join(dir, upstream.host));
    await writeFile(
      join(dir, upstream.host, 'hosts.toml'),
      [
        `server = "http://${upstream.host}"`,
        '',
        `[host."http://${mirrorHost}"]`,
        '  capabilities = ["pull", "resolve"]',
        '  [host."http://' + mirrorHost + '".header]',
        '    x-hoist-test = "mirror"',
      ].join('\n'),
    );
    return dir;
  }

  test('the mirror is tried first and used when it has the image', async () => {
    const resolver = createResolver({ hostsDir: await hostsDir(mirror.host) });
    const ref = parseReference(`${upstream.host}/test/app:v1`);
    assert.deepEqual(resolver.hostsFor(ref), [mirror.host, upstream.host]);
    upstream.resetStats();
    mirror.resetStats();
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(descriptor.digest, digest);
    await readAll(await resolver.fetcher(ref).fetch(descriptor));
    assert.equal(upstream.stats().requests.length, 0);
    const paths = mirror.stats().requests.map((r) => r.path);
    assert.ok(paths.length >= 2);
    assert.ok(
      paths.every((p) => p.endsWith(`?ns=${encodeURIComponent(upstream.host)}`)),
      paths.join(' '),
    );
  });

  test('falls back to the upstream when the mirror lacks the image', async () => {
    const resolver = createResolver({ hostsDir: await hostsDir(mirror.host) });
    const ref = parseReference(`${upstream.host}/test/upstream-only:v1`);
    mirror.resetStats();
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(descriptor.digest, digest);
    assert.equal(mirror.stats().requests[0]?.status, 404);
  });

  test('falls back to the upstream when the mirror is down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const resolver = createResolver({ hostsDir: await hostsDir(dead) });
    const { descriptor } = await resolver.resolve(parseReference(`${upstream.host}/test/app:v1`));
    assert.equal(descriptor.digest, digest);
  });

  test('when no host has it, the error names every host tried', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const resolver = createResolver({ hostsDir: await hostsDir(dead) });
    await assert.rejects(
      resolver.resolve(parseReference(`${upstream.host}/test/missing:v1`)),
      isCode('HOIST_NOT_FOUND', (err) => {
        assert.match(err.message, new RegExp(`^${upstream.host}/test/missing:v1: not found`));
        assert.ok(err.message.includes(dead) && err.message.includes(upstream.host), err.message);
      }),
    );
  });
});

describe('HTTP behaviour', () => {
  test('a redirect to another origin does not carry Authorization; same-origin does', async () => {
    const blob = randomBytes(1000);
    const cdn = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.end(blob);
    });
    const auth = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const origin = await startFakeServer((req, res) => {
      if (req.headers.authorization !== auth) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
        return void res.end();
      }
      const url = req.url ?? '/';
      if (!url.startsWith('/v2/hop/')) {
        res.writeHead(307, { location: `/v2/hop${url.slice(3)}` });
        return void res.end();
      }
      res.writeHead(302, { location: `http://${cdn.host}/storage/blob?sig=1` });
      res.end();
    });
    try {
      const resolver = createResolver({
        plainHttp: true,
        credentials: async () => ({ username: 'u', password: 'p' }),
      });
      const got = await readAll(
        await resolver.fetcher(parseReference(`${origin.host}/r/x:t`)).fetch(blobOf(blob)),
      );
      assert.ok(got.equals(blob));
      const hop = origin.requests.find((r) => r.url.startsWith('/v2/hop/'));
      assert.equal(hop?.headers.authorization, auth, 'same-origin redirect keeps credentials');
      assert.equal(cdn.requests.length, 1);
      assert.equal(cdn.requests[0]!.headers.authorization, undefined);
      assert.equal(cdn.requests[0]!.headers.cookie, undefined);
    } finally {
      await Promise.all([cdn.close(), origin.close()]);
    }
  });

  test('503 and 429 are retried, honouring Retry-After', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest }));
    const desc = blobOf(manifest);
    const server = await startFakeServer((_req, res, seen) => {
      if (seen.length === 1) res.writeHead(503, { 'retry-after': '0' });
      else if (seen.length === 2) res.writeHead(429, { 'retry-after': '0' });
      else
        res.writeHead(200, {
          'content-type': MediaType.OciManifest,
          'content-length': String(manifest.byteLength),
          'docker-content-digest': desc.digest,
        });
      res.end();
    });
    try {
      const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1 });
      const { descriptor } = await resolver.resolve(parseReference(`${server.host}/r/x:t`));
      assert.equal(descriptor.digest, desc.digest);
      assert.equal(server.requests.length, 3);
    } finally {
      await server.close();
    }
  });

  test('HEAD without Docker-Content-Digest falls back to GET and digests the body', async () => {
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }),
    );
    const server = await startFakeServer((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(manifest.byteLength),
      });
      res.end(req.method === 'GET' ? manifest : undefined);
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      const { descriptor } = await resolver.resolve(parseReference(`${server.host}/r/x:t`));
      assert.deepEqual(descriptor, { ...blobOf(manifest), mediaType: MediaType.OciIndex });
      assert.deepEqual(
        server.requests.map((r) => r.method),
        ['HEAD', 'GET'],
      );
    } finally {
      await server.close();
    }
  });

  test('a digest reference is verified: a registry answering with other content is HOIST_DIGEST_MISMATCH', async () => {
    const wanted = blobOf(Buffer.from('{"schemaVersion":2}'));
    const served = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest }));
    const server = await startFakeServer((req, res) => {
      // HEAD gives no digest, so the client must GET and hash the body
      res.writeHead(200, {
        'content-type': MediaType.OciManifest,
        'content-length': String(served.byteLength),
      });
      res.end(req.method === 'GET' ? served : undefined);
    });
    const lying = await startFakeServer((_req, res) => {
      res.writeHead(200, {
        'content-type': MediaType.OciManifest,
        'content-length': String(served.byteLength),
        'docker-content-digest': blobOf(served).digest,
      });
      res.end();
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      for (const host of [server.host, lying.host]) {
        await assert.rejects(
          resolver.resolve(parseReference(`${host}/r/x@${wanted.digest}`)),
          isCode('HOIST_DIGEST_MISMATCH', (e) => assert.ok(e.message.includes(wanted.digest))),
        );
      }
    } finally {
      await Promise.all([server.close(), lying.close()]);
    }
  });

  test('a server that ignores Range (200) has the first offset bytes skipped', async () => {
    const blob = randomBytes(200_000);
    const server = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.end(blob);
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      const tail = await readAll(
        await resolver
          .fetcher(parseReference(`${server.host}/r/x:t`))
          .fetch(blobOf(blob), { offset: 77_777 }),
      );
      assert.ok(tail.equals(blob.subarray(77_777)));
      assert.equal(server.requests[0]!.headers.range, 'bytes=77777-');
    } finally {
      await server.close();
    }
  });

  test('a short body is an error, not a silent truncation', async () => {
    const blob = randomBytes(5000);
    const server = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-length': '3000' });
      res.end(blob.subarray(0, 3000));
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      const stream = await resolver.fetcher(parseReference(`${server.host}/r/x:t`)).fetch(blobOf(blob));
      await assert.rejects(
        readAll(stream),
        isCode('HOIST_NETWORK', (e) => assert.match(e.message, /3000 of 5000/)),
      );
    } finally {
      await server.close();
    }
  });

  test('a connection dropped mid-body is resumed with a Range request', async () => {
    const blob = randomBytes(300_000);
    const server = await startFakeServer((req, res, seen) => {
      if (seen.length === 1) {
        res.writeHead(200, { 'content-length': String(blob.byteLength) });
        res.write(blob.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(206, {
        'content-length': String(blob.byteLength - start),
        'content-range': `bytes ${start}-${blob.byteLength - 1}/${blob.byteLength}`,
      });
      res.end(blob.subarray(start));
    });
    try {
      const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1 });
      const got = await readAll(
        await resolver.fetcher(parseReference(`${server.host}/r/x:t`)).fetch(blobOf(blob)),
      );
      assert.ok(got.equals(blob));
      assert.equal(server.requests.length, 2);
      assert.match(server.requests[1]!.headers.range ?? '', /^bytes=\d+-$/);
    } finally {
      await server.close();
    }
  });

  test('blob downloads are limited to `concurrency` open streams', async () => {
    const blobs = [randomBytes(100_000), randomBytes(100_000), randomBytes(100_000)];
    const server = await startFakeServer((req, res) => {
      const blob = blobs.find((b) => req.url?.includes(blobOf(b).digest))!;
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.end(blob);
    });
    try {
      const resolver = createResolver({ plainHttp: true, concurrency: 2 });
      const fetcher = resolver.fetcher(parseReference(`${server.host}/r/x:t`));
      const first = await fetcher.fetch(blobOf(blobs[0]!));
      const second = await fetcher.fetch(blobOf(blobs[1]!));
      let thirdStarted = false;
      const third = fetcher.fetch(blobOf(blobs[2]!)).then((s) => {
        thirdStarted = true;
        return s;
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(thirdStarted, false);
      assert.equal(server.requests.length, 2);
      assert.ok((await readAll(first)).equals(blobs[0]!));
      assert.ok((await readAll(await third)).equals(blobs[2]!));
      second.destroy();
      // the destroyed stream gave its slot back too
      assert.ok((await readAll(await fetcher.fetch(blobOf(blobs[1]!)))).equals(blobs[1]!));
    } finally {
      await server.close();
    }
  });

  test('aborting a download ends the stream with HOIST_CANCELLED', async () => {
    const blob = randomBytes(1 << 20);
    const server = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.write(blob.subarray(0, 1000)); // and then nothing: the client must give up itself
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      const ac = new AbortController();
      const stream = await resolver
        .fetcher(parseReference(`${server.host}/r/x:t`))
        .fetch(blobOf(blob), { signal: ac.signal });
      stream.once('data', () => ac.abort());
      await assert.rejects(readAll(stream), isCode('HOIST_CANCELLED'));
    } finally {
      await server.close();
    }
  });

  test('403 is HOIST_DENIED', async () => {
    const server = await startFakeServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }],
        }),
      );
    });
    try {
      const resolver = createResolver({ plainHttp: true });
      await assert.rejects(
        resolver.resolve(parseReference(`${server.host}/r/x:t`)),
        isCode('HOIST_DENIED', (e) => assert.match(e.message, /denied/)),
      );
    } finally {
      await server.close();
    }
  });
});
