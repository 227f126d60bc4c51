// The content store's contract (containerd's content.Store: Provider + Ingester + Manager), one set of
// expectations run against every backend (test/integration/contracts.test.ts): the embedded store,
// the gRPC adapter over hoist serve, and the same adapter over containerd 1.6.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import type { Digest } from '../../src/core/digest.ts';
import { openWriterWithRetry } from '../../src/metadata/write-blob.ts';
import { type ContractBackend, type OpenBackend, rejectsWith } from './backend.ts';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Register the content contract's tests for one backend. */
export function contentContract(label: string, open: OpenBackend): void {
  let b: ContractBackend;
  let ctx: Context;
  test(`${label}: open`, async () => {
    b = await open();
    // Everything written here is kept by a lease, so no collection races the checks.
    const lease = await b.backend.leases.create({ namespace: 'contract' });
    ctx = { namespace: 'contract', lease: lease.id };
  });

  test(`${label}: a committed blob has its info, reads whole and by range, and is found by its labels`, async () => {
    const data = randomBytes(300_000);
    const digest = digestOf(data);
    const w = await b.backend.content.writer(ctx, {
      ref: `c-${digest}`,
      expected: { digest, size: data.length },
    });
    await w.write(data.subarray(0, 100_000));
    await w.write(data.subarray(100_000));
    assert.equal(w.digest(), digest);
    await w.commit(data.length, digest, { 'contract.test/kind': 'blob' });
    const info = await b.backend.content.info(ctx, digest);
    assert.equal(info.size, data.length);
    assert.equal(info.labels['contract.test/kind'], 'blob');
    assert.deepEqual(await b.backend.content.readBlob(ctx, digest), data);
    const part = await readAll(await b.backend.content.reader(ctx, digest, { offset: 1000, length: 5000 }));
    assert.deepEqual(part, data.subarray(1000, 6000));
    const listed = await b.backend.content.list(ctx, ['labels."contract.test/kind"==blob']);
    assert.ok(listed.some((i) => i.digest === digest));
    await rejectsWith(
      b.backend.content.writer(ctx, { ref: `again-${digest}`, expected: { digest, size: data.length } }),
      'HOIST_ALREADY_EXISTS',
    );
  });

  test(`${label}: an interrupted write resumes at its offset under the same ref`, async () => {
    const data = randomBytes(200_000);
    const digest = digestOf(data);
    const ref = `resume-${digest}`;
    const first = await b.backend.content.writer(ctx, { ref, expected: { digest, size: data.length } });
    await first.write(data.subarray(0, 64_000));
    await first.close();
    const status = await b.backend.content.status(ctx, ref);
    assert.equal(status.offset, 64_000);
    const again = await b.backend.content.writer(ctx, { ref, expected: { digest, size: data.length } });
    assert.equal(again.offset, 64_000);
    await again.write(data.subarray(64_000));
    await again.commit(data.length, digest);
    assert.equal((await b.backend.content.info(ctx, digest)).size, data.length);
    await rejectsWith(b.backend.content.status(ctx, ref), 'HOIST_NOT_FOUND');
  });

  test(`${label}: wrong bytes are refused at commit; an aborted ingest is gone`, async () => {
    const data = randomBytes(10_000);
    const claimed = digestOf(randomBytes(16));
    const w = await b.backend.content.writer(ctx, { ref: 'bad-bytes' });
    await w.write(data);
    // Over the wire a digest mismatch is FailedPrecondition (containerd's code), which is all a client sees.
    await rejectsWith(w.commit(data.length, claimed), 'HOIST_DIGEST_MISMATCH', 'HOIST_FAILED_PRECONDITION');
    await rejectsWith(b.backend.content.info(ctx, claimed), 'HOIST_NOT_FOUND');
    // The ingest keeps the bytes (the claim may have been what was wrong): a wrong size is refused
    // too, and a commit that expects what was written succeeds.
    const again = await openWriterWithRetry(b.backend.content, ctx, 'bad-bytes', undefined, 5_000);
    assert.equal(again.offset, data.length);
    await rejectsWith(again.commit(data.length - 1), 'HOIST_SIZE_MISMATCH', 'HOIST_FAILED_PRECONDITION');
    const last = await openWriterWithRetry(b.backend.content, ctx, 'bad-bytes', undefined, 5_000);
    await last.commit(data.length, digestOf(data));
    assert.equal((await b.backend.content.info(ctx, digestOf(data))).size, data.length);
    await rejectsWith(b.backend.content.status(ctx, 'bad-bytes'), 'HOIST_NOT_FOUND');
  });

  test(`${label}: labels are updated by field path; a deleted blob is not found`, async () => {
    const data = randomBytes(5_000);
    const digest = digestOf(data);
    const w = await b.backend.content.writer(ctx, {
      ref: `labels-${digest}`,
      expected: { digest, size: data.length },
    });
    await w.write(data);
    await w.commit(data.length, digest, { 'contract.test/a': '1', 'contract.test/b': '2' });
    await b.backend.content.update(
      ctx,
      { digest, labels: { 'contract.test/a': '', 'contract.test/c': '3' } },
      ['labels.contract.test/a', 'labels.contract.test/c'],
    );
    const labels = (await b.backend.content.info(ctx, digest)).labels;
    assert.equal(labels['contract.test/a'], undefined);
    assert.equal(labels['contract.test/b'], '2');
    assert.equal(labels['contract.test/c'], '3');
    await b.backend.content.delete(ctx, digest);
    await rejectsWith(b.backend.content.info(ctx, digest), 'HOIST_NOT_FOUND');
  });

  test(`${label}: close`, async () => {
    await b.close();
  });
}
