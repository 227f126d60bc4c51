// The diff port's contract (containerd's diff.Applier and diff.Comparer over mounts), run on the embedded
// store and through hoist serve (test/integration/contracts.test.ts). The snapshots' directories are on
// this machine either way, so the test writes a change straight into the active snapshot's directory.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Mount } from '../../src/api/snapshots.ts';
import type { Context } from '../../src/core/context.ts';
import type { Digest } from '../../src/core/digest.ts';
import { Labels } from '../../src/core/labels.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { packTar } from '../unit/diff-fixtures.ts';
import type { ContractBackend, OpenBackend } from './backend.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

function entryNames(tarBytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const names: string[] = [];
    const ex = tar.extract();
    ex.on('entry', (h, stream, next) => {
      names.push(h.name);
      stream.resume();
      stream.on('end', next);
    });
    ex.on('finish', () => resolve(names));
    ex.on('error', reject);
    ex.end(tarBytes);
  });
}

/** The writable directory of an active snapshot's mounts (bind source, or overlay upperdir). */
function writableDir(mounts: Mount[]): string {
  const m = mounts[0]!;
  const upper = m.options.find((o) => o.startsWith('upperdir='));
  return upper ? upper.slice('upperdir='.length) : m.source;
}

export function diffContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  test(`${label}: open`, async () => {
    b = await open();
  });

  for (const name of ['overlayfs', 'native']) {
    test(`${label} (${name}): apply gives the layer's diffID; compare gives back what changed, stored with its diffID`, async () => {
      const lease = await b.backend.leases.create({ namespace: 'contract-diff' }, {});
      const ctx: Context = { namespace: 'contract-diff', lease: lease.id };
      const sn = b.backend.snapshotters.get(name)!;
      // Its own content per run: a blob already committed would make the writer say "already exists".
      const layerTar = await packTar([
        {
          header: { name: 'etc/base.conf', mode: 0o644 },
          body: `base ${name} ${randomBytes(8).toString('hex')}\n`,
        },
      ]);
      const blob = gzipSync(layerTar);
      const digest = sha(blob);
      const w = await b.backend.content.writer(ctx, {
        ref: `l-${digest}`,
        expected: { digest, size: blob.length },
      });
      await w.write(blob);
      await w.commit(blob.length, digest);
      const id = randomBytes(4).toString('hex');

      const mounts = await sn.prepare(ctx, `base-${id}-active`);
      const applied = await b.backend.diff.apply(
        ctx,
        { mediaType: MediaType.OciLayerGzip, digest, size: blob.length },
        mounts,
      );
      assert.equal(applied.digest, sha(layerTar), 'the diffID is the uncompressed tar digest');
      await sn.commit(ctx, `base-${id}`, `base-${id}-active`);

      const upper = await sn.prepare(ctx, `work-${id}`, `base-${id}`);
      await writeFile(join(writableDir(upper), 'added.txt'), 'new\n');
      const lower = await sn.view(ctx, `view-${id}`, `base-${id}`);
      const d = await b.backend.diff.compare(ctx, lower, upper, { mediaType: MediaType.OciLayerGzip });
      const stored = await b.backend.content.readBlob(ctx, d.digest);
      const changed = gunzipSync(stored);
      assert.deepEqual(await entryNames(changed), ['added.txt']);
      const info = await b.backend.content.info(ctx, d.digest);
      assert.equal(info.labels[Labels.uncompressed], sha(changed));
      await b.backend.leases.delete(ctx, lease.id);
    });
  }

  test(`${label}: close`, async () => {
    await b.close();
  });
}
