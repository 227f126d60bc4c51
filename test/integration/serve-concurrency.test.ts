// Eight clients on one `hoist serve` at once, for HOIST_STRESS_SECONDS (default 60): the real ctr pulling
// (overlayfs and native unpack) and removing, the hoist CLI pulling and removing through --address, a CRI
// client pulling, checking and removing, and a lister reading all three views, over four images that
// share a base layer, all in `k8s.io`. The only errors allowed are NotFound (removing what another
// client removed first). Afterwards the three views agree and `hoist system check` finds the store
// consistent, through the daemon and again on the store itself once the daemon has stopped.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import type { ConsistencyReport } from '../../src/api/maintenance.ts';
import { type AnyClient, TestClients, unary } from '../helpers/grpc-client.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tableRows } from '../helpers/run-hoist.ts';
import { type CommandResult, type ServedStore, startServe } from '../helpers/serve.ts';

const isRoot = process.getuid?.() === 0;
const SECONDS = Number(process.env.HOIST_STRESS_SECONDS ?? 60);
const IMAGES = 4;
let reg: TestRegistry;
let dir: string;
let refs: string[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-stress-'));
  const base = { 'etc/os-release': 'ID=stress\n', 'lib/base.bin': 'base\n'.repeat(4096) };
  await writeOciLayout(
    join(dir, 'layout'),
    Array.from({ length: IMAGES }, (_, i) => ({
      tag: `v${i}`,
      image: {
        layers: [base, { [`app/${i}`]: `app ${i}\n` }, { randomBytes: 96 * 1024, path: `data/${i}` }],
      },
    })),
  );
  reg = await startRegistry();
  refs = [];
  for (let i = 0; i < IMAGES; i++) {
    await pushLayout(join(dir, 'layout'), `stress/app${i}:v${i}`, reg.registryHost);
    refs.push(`${reg.registryHost}/stress/app${i}:v${i}`);
  }
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const NOT_FOUND = /not found/i;
const CRI_NOT_FOUND = 5;

interface ClientLog {
  name: string;
  ops: number;
  unexpected: string[];
}

/** Run `op` until the deadline; a failure that is not NotFound is recorded (and the loop goes on). */
async function loop(name: string, deadline: number, op: () => Promise<CommandResult | undefined>) {
  const log: ClientLog = { name, ops: 0, unexpected: [] };
  while (Date.now() < deadline) {
    let r: CommandResult | undefined;
    try {
      r = await op();
    } catch (err) {
      const e = err as { code?: number; message?: string };
      if (e.code !== CRI_NOT_FOUND) log.unexpected.push(`${e.message ?? String(err)}`);
    }
    if (r && r.code !== 0 && !NOT_FOUND.test(r.stderr))
      log.unexpected.push(`exit ${r.code}: ${r.stderr.trim()}`);
    log.ops++;
  }
  return log;
}

async function criCall<T>(c: AnyClient, method: string, req: unknown): Promise<T> {
  return unary<T>(c, method, req, new Metadata());
}

test('8 clients pulling, listing and removing at once: only NotFound errors, one view, a consistent store', {
  skip: !isRoot && 'needs root (overlayfs unpack through ctr)',
  timeout: (SECONDS + 240) * 1000,
}, async (t) => {
  const srv: ServedStore = await startServe();
  const clients = new TestClients(srv.socket);
  try {
    const cri = clients.client(ImageService);
    const ns = ['-n', 'k8s.io'];
    const hoist = (...a: string[]) => srv.hoist('--address', srv.socket, ...ns, ...a);
    const deadline = Date.now() + SECONDS * 1000;
    const logs = await Promise.all([
      loop('ctr pull (overlayfs)', deadline, () =>
        srv.ctr(...ns, 'images', 'pull', '--plain-http', pick(refs)),
      ),
      loop('ctr pull (native)', deadline, () =>
        srv.ctr(...ns, 'images', 'pull', '--plain-http', '--snapshotter', 'native', pick(refs)),
      ),
      loop('hoist pull', deadline, () => hoist('pull', '--plain-http', '--progress', 'quiet', pick(refs))),
      loop('cri pull+status', deadline, async () => {
        const ref = pick(refs);
        await criCall(cri, 'pullImage', { image: { image: ref } });
        await criCall(cri, 'imageStatus', { image: { image: ref }, verbose: true });
        return undefined;
      }),
      loop('lister', deadline, async () => {
        await criCall(cri, 'listImages', {});
        const a = await hoist('images', '--all');
        if (a.code !== 0) return a;
        return srv.ctr(...ns, 'images', 'ls');
      }),
      loop('hoist rmi', deadline, () => hoist('rmi', pick(refs))),
      loop('ctr images rm', deadline, () => srv.ctr(...ns, 'images', 'rm', pick(refs))),
      loop('cri remove', deadline, async () => {
        await criCall(cri, 'removeImage', { image: { image: pick(refs) } });
        return undefined;
      }),
    ]);
    t.diagnostic(`operations: ${logs.map((l) => `${l.name} ${l.ops}`).join(', ')}`);
    for (const l of logs) {
      assert.ok(l.ops > 0, `${l.name} made progress`);
      assert.deepEqual(l.unexpected, [], `${l.name}: unexpected errors after ${l.ops} operations`);
    }
    // Quiet now: one final pull of every image through the CRI, then the views must agree.
    for (const ref of refs) await criCall(cri, 'pullImage', { image: { image: ref } });
    const ctrNames = (await srv.ctrOk(...ns, 'images', 'ls', '-q')).split('\n').filter(Boolean).sort();
    const all = await hoist('images', '--all', '--format', 'json');
    assert.equal(all.code, 0, all.stderr);
    const hoistNames = all.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { Name: string }).Name)
      .sort();
    assert.deepEqual(hoistNames, ctrNames, 'hoist --all and ctr list the same names');
    const listed = await criCall<{ images: { repoTags: string[] }[] }>(cri, 'listImages', {});
    assert.deepEqual(
      listed.images.flatMap((i) => i.repoTags).sort(),
      [...refs].sort(),
      'CRI: every tag, once',
    );
    const rows = tableRows((await hoist('images')).stdout);
    assert.equal(rows.length, IMAGES, `one row per image:\n${rows.join('\n')}`);

    const through = await hoist('system', 'check', '--format', 'json');
    const report = JSON.parse(through.stdout) as ConsistencyReport;
    assert.equal(through.code, 0, JSON.stringify(report.problems, null, 2));
    assert.equal(report.checked.images, IMAGES);
    clients.close();
    assert.equal(await srv.stop(), 0, 'the daemon stops cleanly');
    const embedded = await srv.hoist('system', 'check', '--verify', '--format', 'json');
    assert.equal(embedded.code, 0, embedded.stdout + embedded.stderr);
  } finally {
    clients.close();
    await srv.cleanup();
  }
});
