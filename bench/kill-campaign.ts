// The kill -9 campaign at length (the CI test runs 3 rounds per operation): every operation of
// test/helpers/kill-campaign-ops.ts killed at BENCH_KILL_ROUNDS (default 25) moments drawn uniformly over its
// measured run, in BENCH_KILL_LANES (default 2) stores side by side. Prints one line per operation and a
// Markdown table for docs/reliability.md. BENCH_KILL_SEED (or HOIST_KILL_SEED) replays a run;
// BENCH_KILL_OPS=rmi,load runs only the operations whose names start so.
//   node_modules/.bin/node bench/kill-campaign.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CampaignResult,
  campaignSeed,
  describeResult,
  killCampaign,
} from '../test/helpers/kill-campaign.ts';
import { campaignImage } from '../test/helpers/kill-campaign-image.ts';
import { campaignOps } from '../test/helpers/kill-campaign-ops.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { log, machineLine } from './lib.ts';

const rounds = Number(process.env.BENCH_KILL_ROUNDS ?? 25);
const lanes = Number(process.env.BENCH_KILL_LANES ?? 2);
const seed = process.env.BENCH_KILL_SEED ? Number(process.env.BENCH_KILL_SEED) : campaignSeed();

const work = await mkdtemp(join(tmpdir(), 'hoist-bench-kill-'));
const reg = await startRegistry();
const results: CampaignResult[] = [];
try {
  const img = await campaignImage(work, reg.registryHost);
  log(`seed ${seed}, ${rounds} rounds per operation, ${lanes} lanes`);
  const only = process.env.BENCH_KILL_OPS?.split(',');
  for (const op of campaignOps(img).filter((o) => !only || only.some((n) => o.name.startsWith(n)))) {
    const r = await killCampaign(op, { rounds, lanes, seed });
    log(describeResult(r));
    for (const f of r.failures) log(`  FAILED: ${f}`);
    results.push(r);
  }
} finally {
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
console.log(`\n${await machineLine()}; seed ${seed}\n`);
console.log('| operation | rounds | killed mid-run | finished before the kill | run (ms) | failed rounds |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of results)
  console.log(
    `| ${r.op} | ${r.rounds} | ${r.killed} | ${r.finishedFirst} | ${Math.round(r.durationMs)} | ${r.failures.length} |`,
  );
process.exitCode = results.some((r) => r.failures.length) ? 1 : 0;
