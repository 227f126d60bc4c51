// Two processes writing the same ref: one writes, the other is locked out, waits, then sees "already exists".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { writeBlob } from '../../src/metadata/content.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const SRC = resolve(import.meta.dirname, '../../src');
const DATA = Buffer.alloc(3 * 1024 * 1024, 7);

const child = `
import { createInterface } from 'node:readline';
import { openLocalStore } from ${JSON.stringify(`${SRC}/embedded/store.ts`)};
import { sha256 } from ${JSON.stringify(`${SRC}/core/digest.ts`)};
const data = Buffer.alloc(${DATA.length}, 7);
const store = await openLocalStore(process.argv[2]);
const ctx = { namespace: 'default' };
const w = await store.content.writer(ctx, { ref: 'layer-big', expected: { digest: sha256(data), size: data.length } });
await w.write(data.subarray(0, 1000));
console.log('WRITING');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line === 'go') break;
await w.write(data.subarray(1000));
await w.commit(data.length, sha256(data));
console.log('DONE');
store.close();
process.exit(0);
`;

test('two processes writing the same ref produce one blob', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hoist-mp-'));
  dirs.push(root);
  const script = join(root, 'child.ts');
  await writeFile(script, child);
  const store = await openLocalStore(root);
  try {
    // process.execPath is the pinned Node 24 this test runs under (same binary `npx node` resolves to).
    // Drop NODE_TEST_CONTEXT, or the child would talk the test runner's protocol on stdout.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const proc = spawn(process.execPath, [script, root], { stdio: ['pipe', 'pipe', 'inherit'], env });
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    const out = createInterface({ input: proc.stdout! });
    const lines = out[Symbol.asyncIterator]();
    // Fail instead of hanging if the child dies before printing.
    const nextLine = () =>
      Promise.race([
        lines.next().then((r) => r.value as string | undefined),
        exited.then((c) => {
          throw new Error(`child exited with ${c}`);
        }),
      ]);
    assert.equal(await nextLine(), 'WRITING');

    const ctx = { namespace: 'default' };
    const expected = { digest: sha256(DATA), size: DATA.length };
    await assert.rejects(store.content.writer(ctx, { ref: 'layer-big', expected }), (e: unknown) => {
      assert.ok(e instanceof HoistError && e.code === 'HOIST_LOCKED', String(e));
      assert.match(e.message, new RegExp(`locked by pid ${proc.pid} since`));
      return true;
    });
    // writeBlob waits for the lock; once the child commits, the blob "already exists" here.
    let sourceRead = false;
    const waiting = writeBlob(
      store.content,
      ctx,
      'layer-big',
      () => {
        sourceRead = true;
        return [DATA] as unknown as AsyncIterable<Uint8Array>;
      },
      expected,
    );
    proc.stdin!.write('go\n');
    assert.equal(await nextLine(), 'DONE');
    const result = await waiting;
    assert.equal(result.existed, true);
    assert.equal(sourceRead, false, 'no bytes were transferred a second time');
    assert.equal(await exited, 0);
    assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), [expected.digest.slice(7)]);
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
    assert.equal((await store.content.info(ctx, expected.digest)).size, DATA.length);
  } finally {
    store.close();
  }
});
