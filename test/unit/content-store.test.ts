import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Context } from '../../src/core/context.ts';
import { type Digest, sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { type LocalStore, openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

const dirs: string[] = [];
const stores: LocalStore[] = [];
after(async () => {
  for (const s of stores) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-content-'));
  dirs.push(dir);
  return dir;
}

async function open(root: string, opts?: Parameters<typeof openLocalStore>[1]): Promise<LocalStore> {
  const s = await openLocalStore(root, opts);
  stores.push(s);
  return s;
}

const code = (c: string) => (e: unknown) => e instanceof HoistError && e.code === c;
const A: Context = { namespace: 'a' };
const B: Context = { namespace: 'b' };
const C: Context = { namespace: 'c' };

async function readAll(s: AsyncIterable<unknown>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
}

async function blobFiles(store: LocalStore): Promise<string[]> {
  return readdir(join(store.root, 'content', 'blobs', 'sha256'));
}

test('resume after a writer was closed midway', async () => {
  const store = await open(await tempRoot());
  const data = Buffer.from('the quick brown fox jumps over the lazy dog');
  const expected = { digest: sha256(data), size: data.length };
  const w1 = await store.content.writer(A, { ref: 'layer-x', expected });
  await w1.write(data.subarray(0, 10));
  await w1.close();
  const st = await store.content.status(A, 'layer-x');
  assert.equal(st.offset, 10);
  assert.equal(st.total, data.length);
  assert.equal(st.expected, expected.digest);

  const w2 = await store.content.writer(A, { ref: 'layer-x', expected });
  assert.equal(w2.offset, 10);
  await w2.write(data.subarray(10));
  await w2.commit(data.length, expected.digest, { 'x.y': 'z' });
  const info = await store.content.info(A, expected.digest);
  assert.equal(info.size, data.length);
  assert.deepEqual(info.labels, { 'x.y': 'z' });
  assert.equal(await readAll(await store.content.reader(A, expected.digest)), data.toString());
  await assert.rejects(store.content.status(A, 'layer-x'), code('HOIST_NOT_FOUND'));
  assert.deepEqual(await store.content.listStatuses(A), []);
});

test('resume after the writing process died (its lock is stale and taken over)', async () => {
  const root = await tempRoot();
  const deadOwner = 'some-old-boot/4242/1';
  const dying = await open(root, { owner: deadOwner });
  const data = Buffer.from('x'.repeat(5000));
  const expected = { digest: sha256(data), size: data.length };
  const w = await dying.content.writer(A, { ref: 'r', expected });
  await w.write(data.subarray(0, 1234));
  // The process "dies": no close(), the lock row names a dead owner.

  const store = await open(root);
  const w2 = await store.content.writer(A, { ref: 'r', expected });
  assert.equal(w2.offset, 1234);
  await w2.write(data.subarray(1234));
  await w2.commit(data.length, expected.digest);
  assert.equal((await store.content.info(A, expected.digest)).size, 5000);
  await w.close().catch(() => undefined);
});

test('a live writer on the same ref gets HOIST_LOCKED, after a short wait for it to close', async () => {
  const store = await open(await tempRoot());
  const w = await store.content.writer(A, { ref: 'r' });
  const started = Date.now();
  await assert.rejects(store.content.writer(A, { ref: 'r' }), (e: unknown) => {
    assert.ok(e instanceof HoistError && e.code === 'HOIST_LOCKED');
    assert.match(e.message, new RegExp(`^ref r locked by pid ${process.pid} since .*: unavailable$`));
    return true;
  });
  // containerd's local store tries 10 times, a random 0-2^n ms apart, before it answers so.
  assert.ok(Date.now() - started <= 3000, `waited ${Date.now() - started} ms`);
  // A writer closed while another waits for the ref: the waiting one gets it (a client that closes a
  // write stream and reopens the ref at once must not see the lock the first is still releasing).
  const waiting = store.content.writer(A, { ref: 'r' });
  await new Promise((r) => setTimeout(r, 5));
  await w.close();
  const again = await waiting;
  await again.close();
});

test('digest mismatch leaves no blob and no record; the ingest stays for a commit that expects its bytes', async () => {
  const store = await open(await tempRoot());
  const wanted = sha256('good bytes');
  const w = await store.content.writer(A, { ref: 'r', expected: { digest: wanted, size: 9 } });
  await w.write(Buffer.from('bad bytes'));
  await assert.rejects(w.commit(9, wanted), code('HOIST_DIGEST_MISMATCH'));
  await w.close();
  await assert.rejects(store.content.info(A, wanted), code('HOIST_NOT_FOUND'));
  assert.deepEqual(await blobFiles(store), []);
  assert.deepEqual(await store.content.list(A), []);
  // As in containerd, the ref is free again and keeps its bytes: the expectation may have been wrong.
  assert.equal((await store.content.status(A, 'r')).offset, 9);
  const w2 = await store.content.writer(A, { ref: 'r' });
  assert.equal(w2.offset, 9);
  await assert.rejects(w2.commit(8), code('HOIST_SIZE_MISMATCH'));
  const w3 = await store.content.writer(A, { ref: 'r' });
  await w3.commit(9, sha256('bad bytes'));
  assert.equal((await store.content.info(A, sha256('bad bytes'))).size, 9);
  await assert.rejects(store.content.status(A, 'r'), code('HOIST_NOT_FOUND'));
  // A different expected size is a different blob: the ingest starts from zero.
  const w4 = await store.content.writer(A, { ref: 'r2', expected: { digest: wanted, size: 9 } });
  await w4.write(Buffer.from('bad bytes'));
  await w4.close();
  const w5 = await store.content.writer(A, { ref: 'r2', expected: { digest: wanted, size: 10 } });
  assert.equal(w5.offset, 0);
  await w5.close();
  await store.content.abort(A, 'r2');
  await assert.rejects(store.content.status(A, 'r2'), code('HOIST_NOT_FOUND'));
});

test('already exists: at writer() (added to the lease) and at commit', async () => {
  const store = await open(await tempRoot());
  const data = Buffer.from('content');
  const d = sha256(data);
  const r1 = await writeBlob(
    store.content,
    A,
    'one',
    (async function* () {
      yield data;
    })(),
    { digest: d, size: 7 },
  );
  assert.equal(r1.existed, false);
  const lease = await store.leases.create(A, { id: 'l1' });
  await assert.rejects(
    store.content.writer({ ...A, lease: lease.id }, { ref: 'two', expected: { digest: d, size: 7 } }),
    (e: unknown) =>
      e instanceof HoistError &&
      e.code === 'HOIST_ALREADY_EXISTS' &&
      e.message === `content ${d}: already exists`,
  );
  assert.deepEqual(await store.leases.listResources(A, 'l1'), [{ id: d, type: 'content' }]);
  // Without expected digest the bytes are written, and commit reports already exists.
  const w = await store.content.writer(A, { ref: 'three' });
  await w.write(data);
  await assert.rejects(w.commit(7, d), code('HOIST_ALREADY_EXISTS'));
  assert.deepEqual(await store.content.listStatuses(A), []);
  const r2 = await writeBlob(
    store.content,
    A,
    'four',
    (async function* () {
      yield data;
    })(),
    { digest: d, size: 7 },
  );
  assert.equal(r2.existed, true);
});

test('namespace isolation; a shared ingest commits without re-transfer, and a write makes it its own', async () => {
  const store = await open(await tempRoot());
  const data = Buffer.from('shared layer bytes');
  const d = sha256(data);
  await writeBlob(store.content, A, 'layer', [data] as unknown as AsyncIterable<Uint8Array>, {
    digest: d,
    size: data.length,
  });
  await assert.rejects(
    store.content.info(B, d),
    (e: unknown) => e instanceof HoistError && e.message === `content digest ${d}: not found`,
  );
  await assert.rejects(store.content.reader(B, d), code('HOIST_NOT_FOUND'));

  const w = await store.content.writer(B, { ref: 'layer', expected: { digest: d, size: data.length } });
  assert.equal(w.offset, data.length, 'shared ingest starts complete');
  const st = await store.content.status(B, 'layer');
  assert.equal(st.offset, data.length);
  await w.commit(data.length, d, { from: 'b' });
  assert.equal(await readAll(await store.content.reader(B, d)), data.toString());
  assert.deepEqual((await store.content.info(B, d)).labels, { from: 'b' });
  assert.deepEqual(await blobFiles(store), [d.slice(7)]);

  // Appending to a shared blob copies it into an ingest of the ref's own first (containerd's
  // createAndCopy): the result is another blob, and the shared one is untouched.
  const more = Buffer.concat([data, Buffer.from(' and more')]);
  const w2 = await store.content.writer(C, { ref: 'layer', expected: { digest: d, size: data.length } });
  assert.equal(w2.offset, data.length);
  await w2.write(Buffer.from(' and more'));
  assert.equal(w2.offset, more.length);
  assert.equal(w2.digest(), sha256(more));
  assert.equal((await store.content.status(C, 'layer')).offset, more.length);
  await w2.commit(more.length, sha256(more));
  assert.equal(await readAll(await store.content.reader(C, sha256(more))), more.toString());
  await assert.rejects(store.content.info(C, d), code('HOIST_NOT_FOUND'));
  assert.equal(await readAll(await store.content.reader(B, d)), data.toString());
  // Truncating a shared ingest starts it empty.
  const w3 = await store.content.writer(C, { ref: 'again', expected: { digest: d, size: data.length } });
  await w3.truncate(0);
  assert.equal(w3.offset, 0);
  await w3.write(data);
  await w3.commit(data.length, d);
  assert.equal((await store.content.info(C, d)).size, data.length);

  // Deleting in one namespace leaves the other's view (and the file) intact.
  await store.content.delete(A, d);
  await assert.rejects(store.content.info(A, d), code('HOIST_NOT_FOUND'));
  assert.equal((await store.content.info(B, d)).size, data.length);
});

test('update, list with filters, readBlob limits', async () => {
  const store = await open(await tempRoot());
  const digests: Digest[] = [];
  for (const [i, text] of ['a', 'bb', 'ccc'].entries()) {
    const r = await writeBlob(
      store.content,
      A,
      `r${i}`,
      [Buffer.from(text)] as unknown as AsyncIterable<Uint8Array>,
      {
        digest: sha256(text),
        size: text.length,
      },
      { labels: { idx: String(i), 'a.b': i === 2 ? 'dotted' : 'plain' } },
    );
    digests.push(r.digest);
  }
  assert.equal((await store.content.list(A)).length, 3);
  assert.deepEqual(
    (await store.content.list(A, ['size==2'])).map((i) => i.digest),
    [digests[1]],
  );
  assert.deepEqual(
    (await store.content.list(A, ['labels."a.b"==dotted'])).map((i) => i.digest),
    [digests[2]],
  );
  assert.equal((await store.content.list(A, ['labels.idx==0', 'labels.idx==1'])).length, 2);
  assert.equal((await store.content.list(A, [`digest==${digests[0]},labels.idx==1`])).length, 0);

  const d0 = digests[0]!;
  let info = await store.content.update(A, { digest: d0, labels: { k: 'v' } }, ['labels.k']);
  assert.deepEqual(info.labels, { idx: '0', 'a.b': 'plain', k: 'v' });
  info = await store.content.update(A, { digest: d0, labels: { k: '' } }, ['labels.k']);
  assert.deepEqual(info.labels, { idx: '0', 'a.b': 'plain' });
  info = await store.content.update(A, { digest: d0, labels: { only: 'this' } });
  assert.deepEqual(info.labels, { only: 'this' });
  await assert.rejects(
    store.content.update(A, { digest: d0, labels: {} }, ['size']),
    code('HOIST_INVALID_ARGUMENT'),
  );
  await assert.rejects(
    store.content.update(A, { digest: d0, labels: { big: 'x'.repeat(5000) } }),
    code('HOIST_INVALID_ARGUMENT'),
  );

  assert.equal((await store.content.readBlob(A, digests[2]!)).toString(), 'ccc');
  await assert.rejects(store.content.readBlob(A, digests[2]!, 2), code('HOIST_FAILED_PRECONDITION'));
});

test('writer requires a ref, a namespace, and an existing lease', async () => {
  const store = await open(await tempRoot());
  await assert.rejects(store.content.writer(A, { ref: '' }), code('HOIST_INVALID_ARGUMENT'));
  await assert.rejects(
    store.content.writer({ namespace: '' }, { ref: 'x' }),
    code('HOIST_FAILED_PRECONDITION'),
  );
  await assert.rejects(
    store.content.writer({ namespace: 'a', lease: 'nope' }, { ref: 'x' }),
    (e: unknown) => e instanceof HoistError && e.message === 'lease does not exist: not found',
  );
});

test('ingests outside a lease expire in 24h; leased ingests move to content on commit', async () => {
  const store = await open(await tempRoot());
  const w = await store.content.writer(A, { ref: 'free' });
  await w.close();
  const row = store.db.get<{ expires_at: number }>("SELECT expires_at FROM ingests WHERE ref = 'free'");
  assert.ok(row && row.expires_at > Date.now() + 23 * 3600_000);

  await store.leases.create(A, { id: 'L' });
  const ctx = { ...A, lease: 'L' };
  const data = Buffer.from('leased');
  const w2 = await store.content.writer(ctx, { ref: 'leased', expected: { digest: sha256(data), size: 6 } });
  assert.deepEqual(await store.leases.listResources(A, 'L'), [{ id: 'leased', type: 'ingests' }]);
  await w2.write(data);
  await w2.commit(6, sha256(data));
  assert.deepEqual(await store.leases.listResources(A, 'L'), [{ id: sha256(data), type: 'content' }]);
});

test('writeBlob resumes from a source function at the offset', async () => {
  const store = await open(await tempRoot());
  const data = Buffer.from('abcdefghijklmnopqrstuvwxyz');
  const expected = { digest: sha256(data), size: data.length };
  const w = await store.content.writer(A, { ref: 'r', expected });
  await w.write(data.subarray(0, 13));
  await w.close();
  const offsets: number[] = [];
  const r = await writeBlob(
    store.content,
    A,
    'r',
    (offset) => {
      offsets.push(offset);
      return [data.subarray(offset)] as unknown as AsyncIterable<Uint8Array>;
    },
    expected,
  );
  assert.deepEqual(offsets, [13]);
  assert.equal(r.existed, false);
  assert.equal(await readAll(await store.content.reader(A, expected.digest)), data.toString());
});
