// Manifests, indexes and configs are read whole into memory, so they have a cap (4 MiB, as containerd's):
// a document that declares more (Content-Length, or the descriptor that names it) is refused before its
// body is read; one that runs past the cap without declaring it is cut off there. Either way one
// HOIST_TOO_LARGE error, and nothing is stored.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { pullImage } from '../../src/images/pull.ts';
import { ALL_PLATFORMS } from '../../src/images/walk.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.ts';
import { type ScratchStore, scratchStore } from '../helpers/scratch-store.ts';

const HUGE = 50 * 1024 * 1024;
const CAP = 4 * 1024 * 1024;

let reg: FakeRegistry;
let store: ScratchStore;
before(async () => {
  reg = await startFakeRegistry();
});
after(async () => {
  await reg.close();
});
beforeEach(() => reg.reset());

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

/** A valid image: a config and one layer blob under `repo`, and its manifest tagged `tag`. */
function image(repo: string, configSize?: number) {
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const configDigest = reg.blob(repo, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configSize ?? config.byteLength },
    layers: [],
  };
  return { manifest, configDigest };
}

async function pull(ref: string): Promise<unknown> {
  const resolver = createResolver({ plainHttp: true, retries: 1 });
  return pullImage(store.backend, resolver, store.ctx, `${reg.host}/${ref}`, {
    platforms: ALL_PLATFORMS,
    leaseExpiryMs: 3_600_000,
  });
}

function tooLarge(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof HoistError, `a HoistError, not ${String(err)}`);
    assert.equal(err.code, 'HOIST_TOO_LARGE', err.message);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /: (failed precondition|invalid argument)$/);
    return true;
  };
}

const gets = (path: string) => reg.requests.filter((r) => r.method === 'GET' && r.url.startsWith(path));

describe('manifest, index and config cap', () => {
  beforeEach(async () => {
    store = await scratchStore();
  });
  afterEach(() => store.close());

  test('a manifest whose HEAD declares 50 MiB is refused before any GET', async () => {
    reg.generate('/v2/big/head/manifests/1', {
      size: HUGE,
      fill: 0x20,
      mediaType: MediaType.OciManifest,
      digest: `sha256:${'b'.repeat(64)}`,
    });
    await assert.rejects(pull('big/head:1'), tooLarge(/declares 52428800 bytes/));
    assert.equal(gets('/v2/big/head/manifests/').length, 0, 'the body was never asked for');
    await store.assertNothingStored();
  });

  test('a manifest whose GET declares 50 MiB is refused from its Content-Length', async () => {
    reg.noHead = true;
    reg.generate('/v2/big/get/manifests/1', { size: HUGE, fill: 0x20, mediaType: MediaType.OciManifest });
    await assert.rejects(pull('big/get:1'), tooLarge(/declares 52428800 bytes/));
    await store.assertNothingStored();
  });

  test('a manifest that runs past the cap without declaring its length is cut off at the cap', async () => {
    reg.noHead = true;
    reg.generate('/v2/big/chunked/manifests/1', {
      size: HUGE,
      fill: 0x20,
      mediaType: MediaType.OciManifest,
      undeclared: true,
    });
    await assert.rejects(pull('big/chunked:1'), tooLarge(/is larger than 4 MiB/));
    const sent = reg.sent.get('/v2/big/chunked/manifests/1') ?? 0;
    assert.ok(sent < HUGE / 2, `reading stopped near the cap (${sent} bytes sent)`);
    await store.assertNothingStored();
  });

  test("an index naming a 50 MiB manifest: refused from the descriptor's size, never fetched", async () => {
    const child = '/v2/big/index/manifests/sha256:' + 'a'.repeat(64);
    reg.generate(child, { size: HUGE, fill: 0x20, mediaType: MediaType.OciManifest });
    reg.manifest(
      'big/index',
      {
        mediaType: MediaType.OciIndex,
        body: json({
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: [
            {
              mediaType: MediaType.OciManifest,
              digest: `sha256:${'a'.repeat(64)}`,
              size: HUGE,
              platform: { os: 'linux', architecture: 'amd64' },
            },
          ],
        }),
      },
      '1',
    );
    await assert.rejects(pull('big/index:1'), tooLarge(/manifest sha256:a{64}.*52428800 bytes/));
    assert.equal(gets(child).length, 0, 'the child was never fetched');
    await store.assertNothingStored();
  });

  test("a manifest naming a 50 MiB config: refused from the descriptor's size, never fetched", async () => {
    const { manifest, configDigest } = image('big/config', HUGE);
    reg.manifest('big/config', { mediaType: MediaType.OciManifest, body: json(manifest) }, '1');
    await assert.rejects(pull('big/config:1'), tooLarge(/config .*52428800 bytes/));
    assert.equal(gets(`/v2/big/config/blobs/${configDigest}`).length, 0, 'the config was never fetched');
    await store.assertNothingStored();
  });

  test('a document at the cap is fine', async () => {
    const { manifest } = image('big/ok');
    const padded = { ...manifest, annotations: { pad: '' } };
    const base = json(padded).byteLength;
    padded.annotations.pad = 'x'.repeat(CAP - base);
    const body = json(padded);
    assert.equal(body.byteLength, CAP);
    reg.manifest('big/ok', { mediaType: MediaType.OciManifest, body }, '1');
    await pull('big/ok:1');
    assert.equal((await store.backend.images.list(store.ctx)).length, 1);
  });
});
