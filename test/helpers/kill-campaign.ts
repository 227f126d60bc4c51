// A kill -9 campaign: run a hoist command, SIGKILL it at a moment drawn uniformly over the command's
// measured duration, then require `system check --verify` clean (every record backed, every image complete
// or fetchable), the command's own invariants, and that running it again completes it. Rounds run in
// parallel lanes, each on its own store; the delays come from a seeded generator, so a failing round
// reproduces with the printed seed (HOIST_KILL_SEED). Used by test/integration/kill-campaign.test.ts (a few
// rounds per operation) and bench/kill-campaign.ts (many).
import type { ConsistencyReport } from '../../src/api/maintenance.ts';
import { sleep } from '../../src/core/sleep.ts';
import { spawnHoist } from './hoist-process.ts';
import { checkReport, type HoistStore, tempStore } from './run-hoist.ts';

export interface CampaignOp {
  name: string;
  /** Bring a store to the state the command starts from (run before every round). */
  prepare(s: HoistStore): Promise<void>;
  /** The command that is killed. */
  args(s: HoistStore, round: number): string[];
  /** Invariants right after the kill, beyond a clean check (e.g. the name points at one whole image). */
  afterKill?(s: HoistStore): Promise<void>;
  /** Finish what was killed (default: run the same command again, which must succeed). */
  recover?(s: HoistStore, round: number): Promise<void>;
  /** Invariants once recovered. */
  verify(s: HoistStore): Promise<void>;
}

export interface CampaignResult {
  op: string;
  seed: number;
  rounds: number;
  /** Rounds where the kill landed while the command ran. */
  killed: number;
  /** Rounds where the command had already exited (successfully) when its moment came. */
  finishedFirst: number;
  /** Measured uninterrupted duration, ms. */
  durationMs: number;
  /** Rounds whose checks failed, with the reason (must be empty). */
  failures: string[];
}

/** mulberry32: small, seedable, good enough to spread kill moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The campaign seed: HOIST_KILL_SEED to reproduce a run, else a fresh one. */
export function campaignSeed(): number {
  const fixed = process.env.HOIST_KILL_SEED;
  return fixed ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}

/** Fails with the problems when the store is not consistent. */
export async function assertConsistent(s: HoistStore, when: string): Promise<ConsistencyReport> {
  const r = await s.run('system', 'check', '--verify', '--format', 'json');
  let report: ConsistencyReport | undefined;
  try {
    report = checkReport<ConsistencyReport>(r.stdout);
  } catch {
    throw new Error(`${when}: system check printed no report (exit ${r.code}): ${r.stderr}`);
  }
  if (r.code !== 0 || !report.ok)
    throw new Error(`${when}: system check found ${JSON.stringify(report.problems)} ${r.stderr}`);
  return report;
}

async function mustRun(s: HoistStore, args: string[], when: string): Promise<number> {
  const started = performance.now();
  const r = await s.run(...args);
  if (r.code !== 0) throw new Error(`${when}: hoist ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return performance.now() - started;
}

/** Time one uninterrupted run of the command on a prepared store. */
async function measure(op: CampaignOp, s: HoistStore): Promise<number> {
  await op.prepare(s);
  const ms = await mustRun(s, op.args(s, -1), `${op.name}: measuring`);
  await op.verify(s);
  return ms;
}

async function round(
  op: CampaignOp,
  s: HoistStore,
  n: number,
  delayMs: number,
  result: CampaignResult,
): Promise<void> {
  const tag = `${op.name} round ${n} (seed ${result.seed}, kill at ${Math.round(delayMs)} ms)`;
  await op.prepare(s);
  const p = spawnHoist(s, ...op.args(s, n));
  const outcome = await Promise.race([p.exited, sleep(delayMs).then(() => undefined)]);
  if (outcome === undefined) p.child.kill('SIGKILL');
  const exit = await p.exited;
  if (exit.signal === 'SIGKILL') result.killed++;
  else if (exit.code === 0) result.finishedFirst++;
  else throw new Error(`${tag}: exited ${exit.code} before the kill: ${p.stderr()}`);
  await assertConsistent(s, `${tag}, after the kill`);
  await op.afterKill?.(s);
  if (op.recover) await op.recover(s, n);
  else await mustRun(s, op.args(s, n), `${tag}, running it again`);
  await assertConsistent(s, `${tag}, after recovery`);
  await op.verify(s);
}

/**
 * `rounds` kills of `op` spread over `lanes` stores running side by side. Failures are collected (every
 * round runs) and returned; the caller asserts there are none.
 */
export async function killCampaign(
  op: CampaignOp,
  opts: { rounds: number; lanes: number; seed: number },
): Promise<CampaignResult> {
  const result: CampaignResult = {
    op: op.name,
    seed: opts.seed,
    rounds: opts.rounds,
    killed: 0,
    finishedFirst: 0,
    durationMs: 0,
    failures: [],
  };
  const stores = await Promise.all(Array.from({ length: opts.lanes }, () => tempStore()));
  try {
    result.durationMs = await measure(op, stores[0]!);
    // Draw every delay up front, in round order: the same seed gives the same moments whatever the lanes.
    const random = seededRandom(opts.seed);
    const delays = Array.from({ length: opts.rounds }, () => random() * result.durationMs);
    let next = 0;
    await Promise.all(
      stores.map(async (s) => {
        for (let n = next++; n < opts.rounds; n = next++) {
          try {
            await round(op, s, n, delays[n]!, result);
          } catch (err) {
            result.failures.push((err as Error).message);
            return; // this lane's store is suspect now; the other lanes go on
          }
        }
      }),
    );
  } finally {
    await Promise.all(stores.map((s) => s.cleanup()));
  }
  return result;
}

export function describeResult(r: CampaignResult): string {
  return `${r.op}: ${r.rounds} rounds (seed ${r.seed}), ${r.killed} killed mid-run, ${r.finishedFirst} finished before the kill, run ≈ ${Math.round(r.durationMs)} ms, ${r.failures.length} failed`;
}
