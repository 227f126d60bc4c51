// An embedded store in a temp directory for tests that feed hoist hostile input in process, and the check
// that such input left nothing behind: no image record, and once the failed operation's lease is gone
// (as `hoist system prune` takes it when its process has ended), no blob, no ingest.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/api/backend.ts';
import type { Context } from '../../src/core/context.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';

export interface ScratchStore {
  root: string;
  backend: Backend;
  ctx: Context;
  /** Assert nothing is stored, after dropping every lease and collecting garbage. */
  assertNothingStored(): Promise<void>;
  close(): Promise<void>;
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

export async function scratchStore(): Promise<ScratchStore> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-hostile-'));
  const root = join(dir, 'root');
  const backend = await openEmbedded(root);
  const ctx: Context = { namespace: 'default' };
  return {
    root,
    backend,
    ctx,
    async assertNothingStored() {
      assert.deepEqual(
        (await backend.images.list(ctx)).map((i) => i.name),
        [],
        'no image record',
      );
      for (const lease of await backend.leases.list(ctx)) await backend.leases.delete(ctx, lease.id);
      await backend.collectGarbage();
      assert.deepEqual(
        (await backend.content.list(ctx)).map((c) => c.digest),
        [],
        'no content record after GC',
      );
      assert.deepEqual(await filesUnder(join(root, 'content', 'blobs')), [], 'no blob on disk after GC');
      assert.deepEqual(await filesUnder(join(root, 'content', 'ingest')), [], 'no partial download left');
      for (const [name, sn] of backend.snapshotters)
        assert.deepEqual(
          (await sn.list(ctx)).map((i) => i.name),
          [],
          `no ${name} snapshot after GC`,
        );
    },
    async close() {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
