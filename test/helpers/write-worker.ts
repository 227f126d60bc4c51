// A child process for the write-queue tests: opens the metadata database at argv[2], waits for the file
// argv[5] to appear (so every worker starts together), then runs argv[4] write transactions, each inserting
// (argv[3], i) into table `t` and holding the write lock, across awaits, until another worker is waiting
// for it (each announces that with a `waiting-<name>` file beside the go-file).
//   node write-worker.ts <db> <name> <count> <go-file> <workers>
import { existsSync, readdirSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { sleep } from '../../src/core/sleep.ts';
import { currentOwner } from '../../src/leases/owner.ts';
import { MetadataDb } from '../../src/metadata/db.ts';

export const WORKER_TABLE =
  'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, w TEXT, n INTEGER, others INTEGER)';

if (import.meta.main) {
  const [path, name, count, go, workers] = process.argv.slice(2) as [string, string, string, string, string];
  const db = await MetadataDb.open(path, {
    migrations: [{ version: 1, description: 'write-queue test table', sql: WORKER_TABLE }],
  });
  const dir = dirname(go);
  const waiting = join(dir, `waiting-${name}`);
  const othersWaiting = () => {
    const files = readdirSync(dir);
    if (files.some((f) => f.startsWith('waiting-') && f !== `waiting-${name}`)) return true;
    return files.filter((f) => f.startsWith('done-')).length === Number(workers) - 1;
  };
  const queue = `${path}-writers`;
  const me = currentOwner();
  const othersQueued = () =>
    readdirSync(queue).filter((f) => {
      if (!/^[0-9]+$/.test(f)) return false;
      try {
        return readlinkSync(join(queue, f)) !== me;
      } catch {
        return false; // released meanwhile
      }
    }).length;
  while (!existsSync(go)) await sleep(5);
  for (let i = 0; i < Number(count); i++) {
    writeFileSync(waiting, '');
    await db.transaction(async () => {
      unlinkSync(waiting);
      db.run('INSERT INTO t (w, n) VALUES (?, ?)', name, i);
      await setImmediate();
      // Hold the lock until another worker wants it (bounded: the others may be done), so every commit
      // hands over to a waiter: with a fair lock the waiter goes next, with SQLite's alone this one does.
      for (let polls = 0; polls < 400 && !othersWaiting(); polls++) await sleep(5);
      // Tickets other workers hold as this one commits: they are ahead of this worker's next ticket.
      db.run('UPDATE t SET others = ? WHERE w = ? AND n = ?', othersQueued(), name, i);
    });
  }
  writeFileSync(join(dir, `done-${name}`), '');
  db.close();
}
