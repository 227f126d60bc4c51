// Concurrent hoist processes on one embedded store for BENCH_LOAD_SECONDS (default 300; the CI test runs
// 30): the loops of test/helpers/cli-load.ts (pull with and without unpack, rmi, prune, images, convert).
// Prints each loop's runs and outcomes and a Markdown table for bench/RESULTS.md; exits 1 if a lock error
// reached a user, a failure was not a race, a loop starved or the store is inconsistent after.
//   node_modules/.bin/node bench/concurrent-cli.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliLoad, describeLoad } from '../test/helpers/cli-load.ts';
import { pushLayout, writeOciLayout } from '../test/helpers/image-builder.ts';
import { assertConsistent } from '../test/helpers/kill-campaign.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { tempStore } from '../test/helpers/run-hoist.ts';
import { log, machineLine } from './lib.ts';

const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 300);
const work = await mkdtemp(join(tmpdir(), 'hoist-bench-load-'));
const reg = await startRegistry();
const s = await tempStore();
let failed = false;
try {
  const files: Record<string, string> = {};
  for (let i = 0; i < 200; i++) files[`srv/f${i}`] = `file ${i}\n`.repeat(20);
  await writeOciLayout(join(work, 'layout'), [
    { tag: 'churn', image: { layers: [files, { randomBytes: 512 * 1024, path: 'srv/r.bin' }] } },
    { tag: 'stable', image: { layers: [{ 'etc/app': 'stable\n' }, { randomBytes: 256 * 1024 }] } },
  ]);
  await pushLayout(join(work, 'layout'), 'load/churn:1', reg.registryHost, { srcTag: 'churn' });
  await pushLayout(join(work, 'layout'), 'load/stable:1', reg.registryHost, { srcTag: 'stable' });
  const img = { churn: `${reg.registryHost}/load/churn:1`, stable: `${reg.registryHost}/load/stable:1` };
  await s.ok('pull', '--plain-http', '-q', '--unpack=false', img.stable);
  log(`${seconds} s of concurrent CLI runs`);
  const stats = await cliLoad(s, img, seconds);
  log(describeLoad(stats));
  let consistent = 'yes';
  await assertConsistent(s, 'after the load').catch((err: Error) => {
    consistent = err.message;
  });
  failed = consistent !== 'yes' || stats.some((l) => l.lockErrors > 0 || l.unexpected.length > 0 || l.ok < 2);
  for (const l of stats) for (const u of l.unexpected) log(`  ${l.name}: ${u}`);
  for (const l of stats) for (const r of l.racedSamples) log(`  ${l.name} (raced): ${r}`);
  console.log(`\n${await machineLine()}; ${stats.length} processes at a time for ${seconds} s\n`);
  console.log('| loop | runs | ok | raced (not found) | other failures | lock errors |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const l of stats)
    console.log(
      `| ${l.name} | ${l.runs} | ${l.ok} | ${l.raced} | ${l.unexpected.length} | ${l.lockErrors} |`,
    );
  console.log(`\nsystem check --verify after: ${consistent === 'yes' ? 'clean' : consistent}`);
} finally {
  await s.cleanup();
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
