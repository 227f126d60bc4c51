// A child process for the write-queue tests: opens the metadata database at argv[2], waits for the file
// argv[5] to appear (so every worker starts together), then runs argv[4] write transactions, each inserting
// (argv[3], i) into table `t` and holding the write lock across an await, as hoist's own transactions may.
//   node write-worker.ts <db> <name> <count> <go-file>
import { existsSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { sleep } from '../../src/core/sleep.ts';
import { MetadataDb } from '../../src/metadata/db.ts';

export const WORKER_TABLE =
  'CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY AUTOINCREMENT, w TEXT, n INTEGER)';

if (import.meta.main) {
  const [path, name, count, go] = process.argv.slice(2) as [string, string, string, string];
  const db = await MetadataDb.open(path, {
    migrations: [{ version: 1, description: 'write-queue test table', sql: WORKER_TABLE }],
  });
  while (!existsSync(go)) await sleep(5);
  for (let i = 0; i < Number(count); i++) {
    await db.transaction(async () => {
      db.run('INSERT INTO t (w, n) VALUES (?, ?)', name, i);
      await setImmediate();
      // Hold the lock a moment (a busy loop: CPU, not a timer), so the others are waiting when it ends.
      const until = performance.now() + 1;
      while (performance.now() < until);
    });
  }
  db.close();
}
