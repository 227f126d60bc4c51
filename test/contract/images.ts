// The image store's contract (containerd's images.Store: names pointing at targets), run on every backend
// (test/integration/contracts.test.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import type { Descriptor } from '../../src/core/descriptor.ts';
import type { Digest } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { type ContractBackend, type OpenBackend, rejectsWith } from './backend.ts';

const target = (): Descriptor => ({
  mediaType: MediaType.OciManifest,
  digest: `sha256:${randomBytes(32).toString('hex')}` as Digest,
  size: 1234,
});

export function imagesContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  const ctx: Context = { namespace: 'contract-images' };
  test(`${label}: open`, async () => {
    b = await open();
  });

  test(`${label}: names are created, read, listed by filter and by target; a second create is refused`, async () => {
    const t = target();
    const a = await b.backend.images.create(ctx, {
      name: 'example.test/app:1',
      target: t,
      labels: { tier: 'x' },
    });
    assert.equal(a.target.digest, t.digest);
    await b.backend.images.create(ctx, { name: 'example.test/app:latest', target: t, labels: {} });
    const got = await b.backend.images.get(ctx, 'example.test/app:1');
    assert.equal(got.target.digest, t.digest);
    assert.equal(got.target.size, t.size);
    assert.equal(got.labels.tier, 'x');
    const byLabel = await b.backend.images.list(ctx, ['labels.tier==x']);
    assert.deepEqual(
      byLabel.map((i) => i.name),
      ['example.test/app:1'],
    );
    const byName = await b.backend.images.list(ctx, ['name~=app:latest']);
    assert.deepEqual(
      byName.map((i) => i.name),
      ['example.test/app:latest'],
    );
    const sharing = await b.backend.images.listByTarget(ctx, t.digest);
    assert.deepEqual(sharing.map((i) => i.name).sort(), ['example.test/app:1', 'example.test/app:latest']);
    await rejectsWith(
      b.backend.images.create(ctx, { name: 'example.test/app:1', target: target(), labels: {} }),
      'HOIST_ALREADY_EXISTS',
    );
  });

  test(`${label}: update moves the target and sets labels by field path`, async () => {
    const t = target();
    await b.backend.images.create(ctx, {
      name: 'example.test/move:1',
      target: target(),
      labels: { keep: 'y' },
    });
    await b.backend.images.update(ctx, { name: 'example.test/move:1', target: t, labels: {} }, ['target']);
    await b.backend.images.update(ctx, { name: 'example.test/move:1', target: t, labels: { added: 'z' } }, [
      'labels.added',
    ]);
    const got = await b.backend.images.get(ctx, 'example.test/move:1');
    assert.equal(got.target.digest, t.digest);
    assert.deepEqual(got.labels, { keep: 'y', added: 'z' });
  });

  test(`${label}: a deleted name is not found, nor a name that never was`, async () => {
    await b.backend.images.create(ctx, { name: 'example.test/gone:1', target: target(), labels: {} });
    await b.backend.images.delete(ctx, 'example.test/gone:1');
    await rejectsWith(b.backend.images.get(ctx, 'example.test/gone:1'), 'HOIST_NOT_FOUND');
    await rejectsWith(b.backend.images.delete(ctx, 'example.test/never:1'), 'HOIST_NOT_FOUND');
  });

  test(`${label}: close`, async () => {
    await b.close();
  });
}
