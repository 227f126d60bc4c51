// A pull names its image last; an rmi in another process may remove that name between the pull's
// create (refused: the name exists) and its update. The pull then creates it again instead of failing
// with "not found" after having done its work (seen 3 times in 97 pulls racing rmi).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Backend } from '../../src/api/backend.ts';
import type { Digest } from '../../src/core/digest.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { upsertImage } from '../../src/images/pull.ts';

test('a name removed between create and update is created again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-upsert-'));
  const backend = await openEmbedded(dir);
  try {
    const ctx = { namespace: 'default' };
    const target = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'a'.repeat(64)}` as Digest,
      size: 10,
    };
    const name = 'example.com/app:1';
    await backend.images.create(ctx, {
      name,
      target: { ...target, digest: `sha256:${'b'.repeat(64)}` as Digest },
      labels: {},
    });
    // The real store, with an rmi (another connection's delete) landing just before the update.
    const images = backend.images;
    let raced = 0;
    const racing: Backend = {
      ...backend,
      images: {
        get: images.get.bind(images),
        list: images.list.bind(images),
        listByTarget: images.listByTarget.bind(images),
        create: images.create.bind(images),
        delete: images.delete.bind(images),
        version: images.version.bind(images),
        update: async (...args: Parameters<typeof images.update>) => {
          if (raced++ === 0) await images.delete(ctx, name);
          return images.update(...args);
        },
      },
    };
    const r = await upsertImage(racing, ctx, { name, target, labels: { a: 'b' } });
    assert.equal(raced, 1, 'the update met the removal');
    assert.equal(r.target.digest, target.digest);
    assert.equal((await images.get(ctx, name)).target.digest, target.digest, 'the name points at the pull');
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
