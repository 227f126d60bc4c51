// Push to the real registry: plain, Basic and token auth; HEAD before upload; cross-repository mounts;
// chunked upload of a large layer (and a failed chunk resumed); missing blobs re-fetched from their source
// or named in the error; pull-only mirrors never pushed to; skopeo and ctr read what hoist pushed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { parseReference } from '../../src/core/reference.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { DEFAULT_CHUNK_SIZE } from '../../src/remotes/pusher.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { type FakeServer, startFakeServer } from '../helpers/fake-server.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { freePort, type RequestRecord, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, tempStore } from '../helpers/run-hoist.ts';

const run = promisify(execFile);

let src: TestRegistry;
let work: string;
let built: BuiltEntry[];

const layer = (name: string) => ({ [`etc/${name}`]: `${name}\n` });
const entry = (tag: string) => built.find((b) => b.tag === tag)!;

before(async () => {
  src = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-push-'));
  built = await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [layer('base'), layer('app'), { randomBytes: 40_000 }] } },
    { tag: 'app2', image: { layers: [layer('base'), layer('app2')] } },
    {
      tag: 'multi',
      platforms: [
        { platform: { architecture: 'amd64' }, layers: [layer('amd64')] },
        { platform: { architecture: 'arm64', variant: 'v8' }, layers: [layer('arm64')] },
      ],
    },
    { tag: 'big', image: { layers: [{ randomBytes: 20 * 1024 * 1024 }] } },
  ]);
  const layout = join(work, 'layout');
  await pushLayout(layout, 'src/app:1', src.host, { srcTag: 'app' });
  await pushLayout(layout, 'src/app2:1', src.host, { srcTag: 'app2' });
  await pushLayout(layout, 'src/multi:1', src.host, { srcTag: 'multi', all: true });
  await pushLayout(layout, 'src/big:1', src.host, { srcTag: 'big' });
});

after(async () => {
  await src?.stop();
  await rm(work, { recursive: true, force: true });
});

async function skopeoInspect(ref: string, creds?: string): Promise<{ Digest: string; raw: string }> {
  const args = ['inspect', '--tls-verify=false', ...(creds ? ['--creds', creds] : [])];
  const { stdout } = await run('skopeo', [...args, `docker://${ref}`]);
  const { stdout: raw } = await run('skopeo', [...args, '--raw', `docker://${ref}`]);
  return { Digest: (JSON.parse(stdout) as { Digest: string }).Digest, raw };
}

async function imageId(h: HoistStore, name: string): Promise<string> {
  return (JSON.parse(await h.ok('image', 'inspect', name)) as { Id: string }[])[0]!.Id;
}

/** Uploads that carried a blob's bytes: the closing PUT `?digest=` and every PATCH before it. */
function uploadsOf(requests: RequestRecord[], digest: string): RequestRecord[] {
  return requests.filter(
    (r) =>
      r.method === 'PUT' &&
      r.path.includes('/blobs/uploads/') &&
      r.path.includes(`digest=${encodeURIComponent(digest)}`),
  );
}

const patches = (requests: RequestRecord[]) =>
  requests.filter((r) => r.method === 'PATCH' && r.path.includes('/blobs/uploads/'));

test('push to a plain registry: HEAD first, upload, manifest under the tag; skopeo sees the same digest', async () => {
  const dst = await startRegistry();
  const h = await tempStore();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/app:1`);
    const id = await imageId(h, `${src.host}/src/app:1`);
    assert.equal(id, entry('app').top.digest);
    const out = await h.ok(
      'push',
      '--plain-http',
      '--progress',
      'plain',
      `${src.host}/src/app:1`,
      `${dst.host}/team/app:1`,
    );
    assert.equal(out, '');
    const seen = await skopeoInspect(`${dst.host}/team/app:1`);
    assert.equal(seen.Digest, id, 'the registry has the local manifest byte for byte');
    assert.equal(sha256(seen.raw), id);

    const reqs = dst.stats().requests;
    for (const l of entry('app').images[0]!.layers) {
      assert.ok(
        reqs.some((r) => r.method === 'HEAD' && r.path.endsWith(`/blobs/${l.digest}`)),
        'HEAD before upload',
      );
      assert.equal(uploadsOf(reqs, l.digest).length, 1, `layer ${l.digest} uploaded once`);
    }
    assert.equal(patches(reqs).length, 0, 'small blobs go up in one PUT');
    assert.ok(
      reqs.some((r) => r.method === 'PUT' && r.path === '/v2/team/app/manifests/1' && r.status === 201),
    );

    // The destination is now a source of every blob; a second push finds everything there.
    const store = await openLocalStore(h.root);
    try {
      const info = await store.content.info(
        { namespace: 'default' },
        entry('app').images[0]!.layers[0]!.digest as Digest,
      );
      assert.equal(info.labels[`containerd.io/distribution.source.${dst.host}`], 'team/app');
      assert.equal(info.labels[`containerd.io/distribution.source.${src.host}`], 'src/app');
    } finally {
      store.close();
    }
    dst.resetStats();
    await h.ok('push', '--plain-http', '-q', `${src.host}/src/app:1`, `${dst.host}/team/app:1`);
    const again = dst.stats().requests;
    assert.equal(
      again.filter((r) => r.method === 'POST' || r.method === 'PATCH').length,
      0,
      'nothing uploaded twice',
    );
  } finally {
    await h.cleanup();
    await dst.stop();
  }
});

test('a second image sharing layers with the first is mounted from the first repository, not uploaded', async () => {
  const dst = await startRegistry();
  const h = await tempStore();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/app:1`);
    await h.ok('pull', '--plain-http', `${src.host}/src/app2:1`);
    await h.ok('push', '--plain-http', '-q', `${src.host}/src/app:1`, `${dst.host}/team/app:1`);
    dst.resetStats();
    const out = await h.ok(
      'push',
      '--plain-http',
      '--progress',
      'plain',
      `${src.host}/src/app2:1`,
      `${dst.host}/team/app2:1`,
    );
    assert.equal(out, '');
    const base = entry('app2').images[0]!.layers[0]!.digest;
    assert.equal(base, entry('app').images[0]!.layers[0]!.digest, 'the images share their base layer');
    const reqs = dst.stats().requests;
    const mount = reqs.filter(
      (r) => r.method === 'POST' && r.path.includes(`mount=${encodeURIComponent(base)}`),
    );
    assert.equal(mount.length, 1);
    assert.match(mount[0]!.path, /from=team%2Fapp(&|$)/);
    assert.equal(mount[0]!.status, 201, 'mounted');
    assert.equal(uploadsOf(reqs, base).length, 0, 'the shared layer is not uploaded');
    const own = entry('app2').images[0]!.layers[1]!.digest;
    assert.equal(uploadsOf(reqs, own).length, 1, 'the layer of its own is uploaded');
    assert.equal((await skopeoInspect(`${dst.host}/team/app2:1`)).Digest, entry('app2').top.digest);
  } finally {
    await h.cleanup();
    await dst.stop();
  }
});

for (const auth of ['basic', 'token'] as const) {
  test(`${auth} auth: push needs a login, then succeeds with push and pull rights`, async () => {
    const dst = await startRegistry({ auth });
    const h = await tempStore();
    try {
      await h.ok('pull', '--plain-http', `${src.host}/src/app:1`);
      const target = `${dst.host}/secure/app:1`;
      const denied = await h.run('push', '--plain-http', `${src.host}/src/app:1`, target);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /hoist login/);
      await h.ok('login', '--plain-http', '-u', 'testuser', '-p', 'testpassword', dst.host);
      await h.ok('push', '--plain-http', '-q', `${src.host}/src/app:1`, target);
      const seen = await skopeoInspect(target, 'testuser:testpassword');
      assert.equal(seen.Digest, entry('app').top.digest);
      if (auth === 'token') {
        const scopes = dst.stats().tokenRequests.flatMap((t) => t.scopes);
        assert.ok(scopes.includes('repository:secure/app:pull,push'), `token scopes: ${scopes.join(' ')}`);
      }
      // A mount needs pull rights on the source repository as well.
      await h.ok('pull', '--plain-http', `${src.host}/src/app2:1`);
      dst.resetStats();
      await h.ok('push', '--plain-http', '-q', `${src.host}/src/app2:1`, `${dst.host}/secure/app2:1`);
      const base = entry('app2').images[0]!.layers[0]!.digest;
      const mount = dst
        .stats()
        .requests.filter((r) => r.method === 'POST' && r.path.includes(`mount=${encodeURIComponent(base)}`));
      assert.deepEqual(
        mount.map((r) => r.status),
        [201],
        'mounted at the first request',
      );
      if (auth === 'token') {
        const asked = dst.stats().tokenRequests.map((t) => t.scopes);
        assert.ok(
          asked.some(
            (s) => s.includes('repository:secure/app2:pull,push') && s.includes('repository:secure/app:pull'),
          ),
          `token requests: ${asked.map((s) => s.join(' ')).join(' | ')}`,
        );
      }
    } finally {
      await h.cleanup();
      await dst.stop();
    }
  });
}

test('a 20 MiB layer goes up in PATCH chunks and pulls back intact', async () => {
  const dst = await startRegistry();
  const h = await tempStore();
  const h2 = await tempStore();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/big:1`);
    await h.ok('push', '--plain-http', '-q', `${src.host}/src/big:1`, `${dst.host}/team/big:1`);
    const big = entry('big').images[0]!.layers[0]!;
    assert.ok(big.size > 20 * 1024 * 1024 - 1024, `layer of ${big.size} bytes`);
    const reqs = dst.stats().requests;
    const chunks = patches(reqs);
    assert.equal(chunks.length, Math.ceil(big.size / DEFAULT_CHUNK_SIZE), 'one PATCH per chunk');
    assert.ok(chunks.length >= 2);
    assert.ok(chunks.every((r) => r.status === 202));
    assert.equal(uploadsOf(reqs, big.digest).length, 1, 'closed by one PUT');
    assert.equal((await skopeoInspect(`${dst.host}/team/big:1`)).Digest, entry('big').top.digest);
    await h2.ok('pull', '--plain-http', `${dst.host}/team/big:1`); // verifies every digest
  } finally {
    await h.cleanup();
    await h2.cleanup();
    await dst.stop();
  }
});

/** Forward a request to the registry as it came (Host included, so upload Locations point back here). */
function forward(dst: TestRegistry, req: IncomingMessage, res: ServerResponse): ClientRequest {
  const up = httpRequest(
    {
      host: '127.0.0.1',
      port: Number(dst.host.split(':')[1]),
      method: req.method,
      path: req.url,
      headers: req.headers,
    },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  return up;
}

async function pushThrough(front: FakeServer, data: Buffer) {
  const resolver = createResolver({
    plainHttp: true,
    retryBaseDelayMs: 1,
    pushChunkSize: 1 << 20,
    pushMonolithicLimit: 1 << 20,
  });
  const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.byteLength };
  const pusher = resolver.pusher(parseReference(`${front.host}/resume/blob:1`));
  const opened: number[] = [];
  const progress: number[] = [];
  await pusher.pushBlob(
    desc,
    async (offset) => {
      opened.push(offset);
      return Readable.from([data.subarray(offset, offset + 100_000), data.subarray(offset + 100_000)]);
    },
    { onProgress: (n) => progress.push(n) },
  );
  assert.equal(progress.at(-1), desc.size);
  assert.equal(await pusher.exists(desc), true);
  const back = await resolver.fetcher(parseReference(`${front.host}/resume/blob:1`)).fetch(desc);
  const chunks: Buffer[] = [];
  for await (const c of back) chunks.push(c as Buffer);
  assert.equal(sha256(Buffer.concat(chunks)), desc.digest, 'the registry has the exact bytes');
  const ranges = front.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range']);
  return { opened, ranges, requests: front.requests };
}

test('a chunk the registry fails is re-sent from the offset the registry reports', async () => {
  const dst = await startRegistry();
  let patchCount = 0;
  // In front of the registry: the second PATCH is answered 503 without reaching it.
  const front = await startFakeServer(async (req, res) => {
    if (req.method === 'PATCH' && ++patchCount === 2) {
      req.resume();
      await new Promise((r) => req.on('end', r));
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('try again');
      return;
    }
    req.pipe(forward(dst, req, res));
  });
  try {
    const r = await pushThrough(front, randomBytes(3 * (1 << 20) + 12345));
    const M = 1 << 20;
    assert.deepEqual(r.ranges, [
      `0-${M - 1}`,
      `${M}-${2 * M - 1}`,
      `${M}-${2 * M - 1}`,
      `${2 * M}-${3 * M - 1}`,
      `${3 * M}-${3 * M + 12344}`,
    ]);
    const statusChecks = r.requests.filter((q) => q.method === 'GET' && q.url.includes('/blobs/uploads/'));
    assert.equal(statusChecks.length, 1, 'the upload status was asked once');
    assert.deepEqual(r.opened, [0], 'the chunk in memory was re-sent; the blob was not re-opened');
  } finally {
    await front.close();
    await dst.stop();
  }
});

test('a connection cut mid-chunk: the registry drops the session, the upload starts over', async () => {
  const dst = await startRegistry();
  let patchCount = 0;
  const front = await startFakeServer((req, res) => {
    const up = forward(dst, req, res);
    if (!(req.method === 'PATCH' && ++patchCount === 2)) {
      req.pipe(up);
      return;
    }
    // Forward part of the chunk, then drop both connections.
    let sent = 0;
    req.on('data', (c: Buffer) => {
      if (sent >= 300_000) return;
      sent += c.byteLength;
      up.write(c, () => {
        if (sent >= 300_000) {
          up.destroy();
          res.destroy();
        }
      });
    });
  });
  try {
    const r = await pushThrough(front, randomBytes(2 * (1 << 20) + 999));
    const sessions = r.requests.filter((q) => q.method === 'POST').length;
    const statusChecks = r.requests.filter((q) => q.method === 'GET' && q.url.includes('/blobs/uploads/'));
    assert.equal(statusChecks.length, 1, 'the pusher asked where the upload stands');
    // Distribution gives up a session that received part of a chunk (its offset no longer matches the
    // session state): then the upload starts over from byte 0. Had the cut come before any byte reached
    // it, the session stays and the chunk is re-sent in it.
    if (sessions === 2) assert.deepEqual(r.opened, [0, 0], 'the blob was read again from the start');
    else
      assert.deepEqual(r.ranges.slice(1, 3), [`${1 << 20}-${(2 << 20) - 1}`, `${1 << 20}-${(2 << 20) - 1}`]);
  } finally {
    await front.close();
    await dst.stop();
  }
});

test('a layer missing from the store is fetched from its source; --no-fetch and a stopped source name it', async () => {
  const origin = await startRegistry();
  const dst = await startRegistry();
  const third = await startRegistry();
  const h = await tempStore();
  try {
    await pushLayout(join(work, 'layout'), 'origin/app:1', origin.host, { srcTag: 'app' });
    const name = `${origin.host}/origin/app:1`;
    await h.ok('pull', '--plain-http', name);
    const gone = entry('app').images[0]!.layers[1]!.digest as Digest;
    const store = await openLocalStore(h.root);
    try {
      await store.content.delete({ namespace: 'default' }, gone);
      await store.gc.collect();
    } finally {
      store.close();
    }
    const blobFile = join(h.root, 'content', 'blobs', 'sha256', gone.slice(7));
    await assert.rejects(run('test', ['-e', blobFile]), 'the bytes are gone after GC');

    const refused = await h.run('push', '--plain-http', '--no-fetch', name, `${dst.host}/team/app:1`);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(gone));
    assert.match(refused.stderr, new RegExp(`${origin.host}/origin/app`));
    assert.match(refused.stderr, /remove --no-fetch/);
    assert.equal(
      dst.stats().requests.filter((r) => r.method !== 'GET' || r.path !== '/v2/').length,
      0,
      'nothing sent',
    );

    origin.resetStats();
    const pushed = await h.run('push', '--plain-http', '--progress', 'plain', name, `${dst.host}/team/app:1`);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /1 fetched first/);
    assert.ok(origin.stats().requests.some((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${gone}`)));
    assert.equal((await skopeoInspect(`${dst.host}/team/app:1`)).Digest, entry('app').top.digest);

    // Lose it again, with the source gone: the error names the digest and the source tried.
    const again = await openLocalStore(h.root);
    try {
      await again.content.delete({ namespace: 'default' }, gone);
      await again.gc.collect();
    } finally {
      again.close();
    }
    // Both places that have it are gone now (the first push made the destination a source too).
    await origin.stop();
    await dst.stop();
    const failed = await h.run('push', '--plain-http', name, `${third.host}/team/app:1`);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`${gone}.*${origin.host}/origin/app: cannot reach registry`, 's'));
    assert.match(failed.stderr, new RegExp(`sources tried: .*${dst.host}/team/app`));
    assert.match(failed.stderr, /hint: /);
    assert.equal(third.stats().requests.length, 0, 'nothing was pushed');
  } finally {
    await h.cleanup();
    await dst.stop();
    await origin.stop();
    await third.stop();
  }
});

test('push to an unreachable registry fails naming it', async () => {
  const h = await tempStore();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/app2:1`);
    const port = await freePort();
    const r = await h.run('push', '--plain-http', `${src.host}/src/app2:1`, `127.0.0.1:${port}/x/y:1`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    assert.match(r.stderr, /hint: /);
  } finally {
    await h.cleanup();
  }
});

test('multi-platform: --platform pushes that manifest under the tag, --all-platforms the index', async () => {
  const dst = await startRegistry();
  const h = await tempStore();
  try {
    const name = `${src.host}/src/multi:1`;
    const e = entry('multi');
    const arm = e.images.find((i) => i.platform.architecture === 'arm64')!;
    await h.ok('pull', '--plain-http', '--platform', 'linux/arm64', name);
    await h.ok('push', '--plain-http', '-q', '--platform', 'linux/arm64', name, `${dst.host}/m/one:1`);
    assert.equal((await skopeoInspect(`${dst.host}/m/one:1`)).Digest, arm.manifest.digest);

    const missing = await h.run(
      'push',
      '--plain-http',
      '--all-platforms',
      '--no-fetch',
      name,
      `${dst.host}/m/all:1`,
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /platforms not in the store: linux\/amd64/);

    await h.ok('push', '--plain-http', '-q', '--all-platforms', name, `${dst.host}/m/all:1`);
    const seen = await skopeoInspect(`${dst.host}/m/all:1`);
    assert.equal(seen.Digest, e.top.digest);
    assert.equal(sha256(seen.raw), e.top.digest);
  } finally {
    await h.cleanup();
    await dst.stop();
  }
});

test('push goes to the server of hosts.toml, never to a pull-only mirror', async () => {
  const dst = await startRegistry();
  const mirror = await startRegistry();
  const h = await tempStore();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/app2:1`);
    const hostsDir = join(h.home, 'certs.d');
    await mkdir(join(hostsDir, dst.host), { recursive: true });
    await writeFile(
      join(hostsDir, dst.host, 'hosts.toml'),
      `server = "http://${dst.host}"\n\n[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    await h.ok('push', '-q', '--hosts-dir', hostsDir, `${src.host}/src/app2:1`, `${dst.host}/team/app2:1`);
    assert.equal(mirror.stats().requests.length, 0, 'the mirror saw nothing');
    assert.equal((await skopeoInspect(`${dst.host}/team/app2:1`)).Digest, entry('app2').top.digest);
  } finally {
    await h.cleanup();
    await mirror.stop();
    await dst.stop();
  }
});

test('ctr images pull reads the image hoist pushed', async () => {
  const dst = await startRegistry();
  const h = await tempStore();
  const ctrd = await startContainerd();
  try {
    await h.ok('pull', '--plain-http', `${src.host}/src/app:1`);
    await h.ok('push', '--plain-http', '-q', `${src.host}/src/app:1`, `${dst.host}/team/app:1`);
    await ctrd.ctrOk('images', 'pull', '--plain-http', `${dst.host}/team/app:1`);
    const list = await ctrd.ctrOk('images', 'ls');
    assert.match(list, new RegExp(`${dst.host}/team/app:1\\s+\\S+\\s+${entry('app').top.digest}`));
  } finally {
    await ctrd.stop();
    await h.cleanup();
    await dst.stop();
  }
});
