// Pulls (with unpack) of images whose index, manifest or config a hostile registry mutated: wrong types,
// missing fields, huge numbers, bad digests, unknown media types, deep nesting, invalid UTF-8, duplicate
// keys (test/helpers/hostile-documents.ts). Each pull succeeds (the mutation was harmless) or fails with a
// HoistError that is not an internal one; either way, once its lease is gone and GC has run, the store
// holds nothing: no image, no blob, no partial download, no snapshot. fast-check prints a failure's seed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { pullImage } from '../../src/images/pull.ts';
import { ALL_PLATFORMS } from '../../src/images/walk.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.ts';
import { type Mutation, mutate, mutationArb } from '../helpers/hostile-documents.ts';
import { tarOf } from '../helpers/image-builder.ts';
import { type ScratchStore, scratchStore } from '../helpers/scratch-store.ts';

let reg: FakeRegistry;
let store: ScratchStore;
let layer: { gz: Buffer; diffId: string };

before(async () => {
  reg = await startFakeRegistry();
  store = await scratchStore();
  const chunks: Buffer[] = [];
  for await (const c of tarOf({ 'etc/hello': 'hello\n', 'bin/': { dir: true } })) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  layer = { gz: gzipSync(tar), diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` };
});

after(async () => {
  await store?.close();
  await reg?.close();
});

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const desc = (mediaType: string, body: Buffer, extra: object = {}) => ({
  mediaType,
  digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
  size: body.byteLength,
  ...extra,
});

/**
 * Serve an image (index → manifest → config, layer) with `m` applied to one document; the documents
 * above it name it by its mutated bytes' digest, as a registry serving it would.
 */
function serve(repo: string, target: 'index' | 'manifest' | 'config', m: Mutation): void {
  reg.blob(repo, layer.gz);
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } };
  const configBytes = target === 'config' ? mutate(config, m) : json(config);
  reg.blob(repo, configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: desc(MediaType.OciConfig, configBytes),
    layers: [desc(MediaType.OciLayerGzip, layer.gz)],
  };
  const manifestBytes = target === 'manifest' ? mutate(manifest, m) : json(manifest);
  reg.manifest(repo, { mediaType: MediaType.OciManifest, body: manifestBytes });
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      desc(MediaType.OciManifest, manifestBytes, { platform: { os: 'linux', architecture: 'amd64' } }),
    ],
  };
  const indexBytes = target === 'index' ? mutate(index, m) : json(index);
  reg.manifest(repo, { mediaType: MediaType.OciIndex, body: indexBytes }, 'v1');
}

test('mutated indexes, manifests and configs: a clean pull or a HoistError, and nothing stored', async (t) => {
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('index', 'manifest', 'config' as const),
      mutationArb,
      async (target, m) => {
        reg.reset();
        serve('hostile/app', target, m);
        const resolver = createResolver({ plainHttp: true, retries: 1 });
        try {
          await pullImage(store.backend, resolver, store.ctx, `${reg.host}/hostile/app:v1`, {
            platforms: ALL_PLATFORMS,
            leaseExpiryMs: 3_600_000,
            unpack: { snapshotter: 'native', platforms: ALL_PLATFORMS, discardLayers: false },
          });
          outcomes.set('pulled', (outcomes.get('pulled') ?? 0) + 1);
          for (const img of await store.backend.images.list(store.ctx))
            await store.backend.images.delete(store.ctx, img.name);
        } catch (err) {
          assert.ok(err instanceof HoistError, `a HoistError, not ${(err as Error)?.stack ?? String(err)}`);
          assert.notEqual(err.code, 'HOIST_INTERNAL', err.message);
          assert.ok(err.message.length > 0 && !err.message.includes('\n'), err.message);
          outcomes.set(err.code, (outcomes.get(err.code) ?? 0) + 1);
        }
        await store.assertNothingStored();
      },
    ),
    { numRuns: 40 },
  );
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  // The generator reaches both sides: harmless mutations pull, hostile ones are refused.
  assert.ok((outcomes.get('pulled') ?? 0) > 0, JSON.stringify([...outcomes]));
  assert.ok(outcomes.size > 1, JSON.stringify([...outcomes]));
});
