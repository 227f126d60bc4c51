// kill -9 at random moments of pull, unpack, rmi with GC, prune, in-place convert, load and push (see
// test/helpers/kill-campaign.ts): after every kill `system check --verify` is clean, no name points at a half
// image, and running the command again completes it. A few rounds per operation here (HOIST_KILL_ROUNDS);
// bench/kill-campaign.ts runs many. The seed is printed; HOIST_KILL_SEED=<seed> replays the same moments.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { campaignSeed, describeResult, killCampaign } from '../helpers/kill-campaign.ts';
import { campaignImage } from '../helpers/kill-campaign-image.ts';
import { type CampaignImage, campaignOps } from '../helpers/kill-campaign-ops.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const skip = process.getuid?.() !== 0 && 'needs root (unpacks into snapshots)';
const ROUNDS = Number(process.env.HOIST_KILL_ROUNDS ?? 3);
const LANES = 2;
const seed = campaignSeed();
let reg: TestRegistry;
let work: string;
let img: CampaignImage;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-kill-'));
  reg = await startRegistry();
  img = await campaignImage(work, reg.registryHost);
  console.log(`kill campaign seed ${seed} (HOIST_KILL_SEED=${seed} replays it)`);
});

after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

for (const name of ['pull', 'unpack', 'rmi (with GC)', 'system prune', 'convert in place', 'load', 'push'])
  test(`kill -9 during ${name}: the store stays consistent and the command completes when run again`, {
    skip,
  }, async () => {
    const op = campaignOps(img).find((o) => o.name === name)!;
    const r = await killCampaign(op, { rounds: ROUNDS, lanes: LANES, seed });
    console.log(describeResult(r));
    assert.deepEqual(r.failures, []);
    assert.equal(r.killed + r.finishedFirst, ROUNDS);
  });
