// Writers in several processes take turns on the metadata database's write lock: first come, first served
// (src/metadata/write-queue.ts). With SQLite's busy handler alone, one process that commits and begins
// again kept the lock while the others slept: each of 4 workers ran all its transactions back to back.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { currentOwner } from '../../src/leases/owner.ts';
import { MetadataDb } from '../../src/metadata/db.ts';
import { WriteQueue } from '../../src/metadata/write-queue.ts';
import { WORKER_TABLE } from '../helpers/write-worker.ts';

const WORKER = join(import.meta.dirname, '..', 'helpers', 'write-worker.ts');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-wq-'));
  dirs.push(d);
  return d;
}
const migrations = [{ version: 1, description: 'write-queue test table', sql: WORKER_TABLE }];

test('several processes writing at once all make progress, in turns', async () => {
  const dir = await tempDir();
  const db = join(dir, 'm.db');
  const go = join(dir, 'go');
  (await MetadataDb.open(db, { migrations })).close();
  const WORKERS = 4;
  const EACH = 40;
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const workers = Array.from({ length: WORKERS }, (_, i) => {
    const child = spawn(process.execPath, [WORKER, db, `w${i}`, String(EACH), go, String(WORKERS)], {
      env,
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    return new Promise<string>((resolve) => child.on('close', (code) => resolve(`${code} ${stderr}`)));
  });
  // Every worker waits for this file before its first transaction, so all start together.
  await writeFile(go, '');
  assert.deepEqual(await Promise.all(workers), Array(WORKERS).fill('0 '), 'every worker finished cleanly');

  const raw = new DatabaseSync(db);
  const rows = raw.prepare('SELECT w, n, others FROM t ORDER BY id').all() as {
    w: string;
    n: number;
    others: number;
  }[];
  raw.close();
  assert.equal(rows.length, WORKERS * EACH);
  // First come, first served: a worker that commits while another worker holds a ticket (queued for the
  // turn) cannot commit again before that one, whose ticket is lower than any it takes next. With SQLite's
  // busy handler alone, each worker ran its transactions back to back past waiting ones. (Checked against
  // the tickets themselves, not timing: on a loaded machine a worker may be slow to queue at all.)
  let overtakes = 0;
  for (let i = 0; i + 1 < rows.length; i++)
    if (rows[i]!.w === rows[i + 1]!.w && rows[i]!.others > 0) overtakes++;
  assert.equal(overtakes, 0, 'no worker committed twice in a row past a queued one');
  assert.ok(
    rows.some((r) => r.others > 0),
    'workers did queue behind one another (the test exercised the queue)',
  );
  // And no worker ran all its transactions while others had theirs to do (SQLite's busy handler alone:
  // each of 4 ran its 40 back to back). Shorter runs are left to the ticket check above: on a loaded
  // machine a worker may simply not have queued yet.
  let run = 0;
  let longest = 0;
  const left = new Map(rows.map((r) => [r.w, EACH]));
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    run = i > 0 && rows[i - 1]!.w === r.w ? run + 1 : 1;
    if ([...left].some(([w, n]) => w !== r.w && n > 0)) longest = Math.max(longest, run);
    left.set(r.w, left.get(r.w)! - 1);
  }
  assert.ok(longest < EACH, `a worker ran all ${EACH} transactions while others waited`);
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.w, (counts.get(r.w) ?? 0) + 1);
  // Each worker's own transactions commit in its order.
  for (const [w] of counts)
    assert.deepEqual(
      rows.filter((r) => r.w === w).map((r) => r.n),
      Array.from({ length: EACH }, (_, i) => i),
    );
  assert.deepEqual(await readdir(`${db}-writers`), [], 'every ticket was given back');
});

test('a ticket left by a dead process does not block the queue', async () => {
  const dir = await tempDir();
  const path = join(dir, 'm.db');
  await mkdir(`${path}-writers`);
  // Another boot's process: provably dead, as after kill -9 between BEGIN and COMMIT (then a reboot).
  await symlink('00000000-dead-boot/12345/1', join(`${path}-writers`, '7'));
  const db = await MetadataDb.open(path, { migrations });
  await db.transaction(() => db.run("INSERT INTO t (w, n) VALUES ('x', 1)"));
  assert.equal(db.all('SELECT * FROM t').length, 1);
  assert.deepEqual(await readdir(`${path}-writers`), [], 'the dead ticket was removed');
  db.close();
});

test('a live holder that never lets go: HOIST_LOCKED naming it, once the queue stalls', async () => {
  const dir = await tempDir();
  const q = new WriteQueue(join(dir, 'q'), { stallLimitMs: 200 });
  const held = await q.turn();
  try {
    await assert.rejects(
      q.turn(),
      (e: unknown) =>
        e instanceof HoistError &&
        e.code === 'HOIST_LOCKED' &&
        e.message.includes(`pid ${process.pid}`) &&
        /without progress/.test(e.message),
    );
    assert.deepEqual(await readdir(join(dir, 'q')), ['1'], 'the waiter took its ticket back');
  } finally {
    await held.release();
    q.close();
  }
  assert.ok(currentOwner().includes(`/${process.pid}/`));
});

test('a writer that read the queue before a newcomer but takes its ticket after it: still one turn at a time', async () => {
  // C reads the queue while A holds ticket 1 and chooses 2; A lets go; B reads the emptied queue and
  // chooses 1; C takes 2 and (seeing no lower ticket) went; B takes 1 and (seeing no lower ticket) went
  // too. In the store: GC deleting the files of records it had removed, in its turn, while the convert
  // process committed a blob whose file was there (publish found it, recorded it) and GC then deleted it.
  const dir = join(await tempDir(), 'q');
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    return { open, opened };
  };
  const cChose = gate();
  const cGo = gate();
  const bChose = gate();
  const bGo = gate();
  const a = new WriteQueue(dir);
  const c = new WriteQueue(dir, {
    beforeTicket: async (n) => {
      assert.equal(n, 2, 'C read the queue while A held ticket 1');
      cChose.open();
      await cGo.opened;
    },
  });
  const b = new WriteQueue(dir, {
    beforeTicket: async (n) => {
      assert.equal(n, 1, 'B read the queue after A let go');
      bChose.open();
      await bGo.opened;
    },
  });
  try {
    const heldA = await a.turn();
    const cTurn = c.turn().then((t) => ({ who: 'C', t }));
    await cChose.opened;
    await heldA.release();
    const bTurn = b.turn().then((t) => ({ who: 'B', t }));
    await bChose.opened;
    cGo.open();
    // C has taken its ticket and looked at the queue (without the fix, it holds the turn by now).
    await new Promise((r) => setTimeout(r, 200));
    bGo.open();
    const first = await Promise.race([cTurn, bTurn]);
    assert.equal(first.who, 'B', 'B holds the lower ticket');
    const other = await Promise.race([
      cTurn.then(() => 'C holds the turn too'),
      new Promise((r) => setTimeout(() => r('C waits'), 300)),
    ]);
    assert.equal(other, 'C waits', 'only one writer holds the turn');
    await first.t.release();
    await (await cTurn).t.release();
    assert.deepEqual(await readdir(dir), [], 'every ticket and mark was given back');
  } finally {
    for (const q of [a, b, c]) q.close();
  }
});

test('a writer that died choosing its ticket does not block the queue', async () => {
  const dir = await tempDir();
  const path = join(dir, 'm.db');
  await mkdir(`${path}-writers`);
  await symlink('00000000-dead-boot/12345/1', join(`${path}-writers`, 'choosing-12345-0123456789ab'));
  const db = await MetadataDb.open(path, { migrations });
  await db.transaction(() => db.run("INSERT INTO t (w, n) VALUES ('x', 1)"));
  assert.equal(db.all('SELECT * FROM t').length, 1);
  assert.deepEqual(await readdir(`${path}-writers`), [], 'the dead mark was removed');
  db.close();
});
