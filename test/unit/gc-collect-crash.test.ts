// A collection that dies while deleting files (kill -9 mid-rmi, an I/O error) must not leave records whose
// files are gone: `system check` calls those missing blobs. The records' deletion commits first, the files
// go after (still in the write turn), so what a crash leaves is files without records, which check notes
// and the next collection takes. The kill campaign found the old order: records rolled back, files gone.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../../src/core/digest.ts';
import { checkConsistency } from '../../src/embedded/consistency.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

test('GC dying halfway through the blob files leaves no record without its file; the next GC finishes', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hoist-gc-crash-'));
  const s = await openLocalStore(root);
  try {
    const ctx = { namespace: 'default' };
    for (const text of ['a', 'b', 'c']) {
      const data = Buffer.from(`garbage ${text}`);
      await writeBlob(s.content, ctx, `ref-${text}`, [data] as unknown as AsyncIterable<Uint8Array>, {
        digest: sha256(data),
        size: data.length,
      });
    }
    // Nothing references them: all three are garbage. The second file deletion fails.
    const deleteBlob = s.backend.deleteBlob.bind(s.backend);
    let calls = 0;
    s.backend.deleteBlob = async (d) => {
      if (++calls === 2) throw new Error('simulated crash while deleting files');
      return deleteBlob(d);
    };
    await assert.rejects(s.gc.collect(), /simulated crash/);
    s.backend.deleteBlob = deleteBlob;

    const report = await checkConsistency(s);
    assert.deepEqual(report.problems, [], 'no record lost its file');
    assert.equal(report.notes.filter((n) => n.kind === 'unrecorded-blob').length, 2, 'two files await GC');
    const stats = await s.gc.collect();
    assert.equal(stats.removedContent, 2);
    assert.deepEqual((await checkConsistency(s)).notes, []);
  } finally {
    s.close();
    await rm(root, { recursive: true, force: true });
  }
});
