import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ingestKey, LocalContentBackend } from '../../src/content/local.ts';
import { sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function backend(): Promise<LocalContentBackend> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-local-'));
  dirs.push(dir);
  const b = new LocalContentBackend(join(dir, 'content'));
  await b.init();
  return b;
}

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('writer resumes at the existing offset and re-hashes what was written', async () => {
  const b = await backend();
  const data = Buffer.from('0123456789abcdefghij');
  const d = sha256(data);
  const w1 = await b.openWriter('ns/ref', { total: data.length });
  assert.equal(w1.offset, 0);
  await w1.write(data.subarray(0, 7));
  await w1.close();
  const st = await b.status('ns/ref');
  assert.equal(st.offset, 7);
  assert.equal(st.total, data.length);
  assert.equal(st.ref, 'ns/ref');

  const w2 = await b.openWriter('ns/ref', { total: data.length });
  assert.equal(w2.offset, 7);
  await w2.write(data.subarray(7));
  assert.equal(w2.digest(), d);
  assert.equal(await w2.verify(data.length, d), d);
  assert.equal(await w2.publish(d), true);
  const mode = (await stat(b.blobPath(d))).mode & 0o777;
  assert.equal(mode, 0o444);
  assert.deepEqual(await readdir(join(b.root, 'ingest')), []);
  assert.deepEqual(await readAll(await b.reader(d)), data);
  assert.deepEqual((await readAll(await b.reader(d, { offset: 5, length: 4 }))).toString(), '5678');
  assert.deepEqual((await readAll(await b.reader(d, { offset: 20 }))).length, 0);
});

test('a different expected total restarts the ingest instead of mixing bytes', async () => {
  const b = await backend();
  const w1 = await b.openWriter('r', { total: 10 });
  await w1.write(Buffer.from('abc'));
  await w1.close();
  const w2 = await b.openWriter('r', { total: 20 });
  assert.equal(w2.offset, 0);
  await w2.close();
});

test('a digest mismatch publishes nothing and keeps the bytes (as containerd does)', async () => {
  const b = await backend();
  const w = await b.openWriter('r');
  await w.write(Buffer.from('evil'));
  const wanted = sha256('good');
  await assert.rejects(
    w.verify(4, wanted),
    (e: unknown) => e instanceof HoistError && e.code === 'HOIST_DIGEST_MISMATCH',
  );
  assert.equal(w.offset, 4);
  await w.close();
  assert.equal(await b.blobSize(wanted), undefined);
  assert.equal((await b.status('r')).offset, 4);
});

test('publishing a blob that already exists drops the ingest and keeps the file', async () => {
  const b = await backend();
  const data = Buffer.from('same');
  const d = sha256(data);
  for (const ref of ['a', 'b']) {
    const w = await b.openWriter(ref);
    await w.write(data);
    await w.verify(data.length, d);
    assert.equal(await w.publish(d), ref === 'a');
  }
  assert.deepEqual(await readdir(join(b.root, 'ingest')), []);
  const blobs = [];
  for await (const x of b.walkBlobs()) blobs.push(x);
  assert.deepEqual(blobs, [{ digest: d, size: 4 }]);
});

test('ingest directories are named by the sha256 of the backend ref', async () => {
  const b = await backend();
  const w = await b.openWriter('demo/partial-ref', { total: 1000 });
  await w.close();
  const dirs = await b.listIngestDirs();
  assert.deepEqual(dirs, [{ key: ingestKey('demo/partial-ref'), ref: 'demo/partial-ref', bytes: 0 }]);
  await b.abort('demo/partial-ref');
  assert.deepEqual(await b.listIngestDirs(), []);
  await assert.rejects(
    b.status('demo/partial-ref'),
    (e: unknown) => e instanceof HoistError && e.code === 'HOIST_NOT_FOUND',
  );
});
