// A separate process that runs garbage collection on a store in a loop until it gets SIGTERM, then
// prints how many collections it ran and what they removed (JSON on stdout). Used to race GC against
// operations that must never lose content (convert, pull, load).
import { openLocalStore } from '../../src/embedded/store.ts';

const root = process.argv[2];
if (!root) throw new Error('usage: gc-loop.ts STORE_ROOT');
const store = await openLocalStore(root);
let stop = false;
process.on('SIGTERM', () => {
  stop = true;
});
let runs = 0;
let removed = 0;
process.stdout.write('ready\n');
while (!stop) {
  const t0 = Date.now();
  const stats = await store.gc.collect();
  if (process.env.DEBUG_ROUNDS && Date.now() - t0 > 50)
    process.stderr.write(`slow gc ${Date.now() - t0}ms\n`);
  runs++;
  removed += stats.removedContent;
  // A short pause: back to back, SQLite's busy handler lets this loop starve every other writer, which is
  // not what a GC scheduler does; a few ms still puts a collection inside every step of the race.
  await new Promise((r) => setTimeout(r, 5));
}
await store.close();
process.stdout.write(`${JSON.stringify({ runs, removed })}\n`);
