// The eight-client workload on one `hoist serve`: the real ctr pulling (overlayfs and native unpack) and
// removing, the hoist CLI pulling and removing through --address, a CRI client pulling, checking and
// removing, and a lister reading all three views, over four images that share a base layer, all in
// `k8s.io`. The only errors allowed are NotFound (removing what another client removed first). Used by
// test/integration/serve-concurrency.test.ts (a minute) and bench/soak-serve.ts (ten minutes and more),
// which also times every call through the `onCall` hook.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import type { ConsistencyReport } from '../../src/api/maintenance.ts';
import { type AnyClient, unary } from './grpc-client.ts';
import { pushLayout, writeOciLayout } from './image-builder.ts';
import type { TestRegistry } from './registry.ts';
import { checkReport, tableRows } from './run-hoist.ts';
import type { CommandResult, ServedStore } from './serve.ts';

export const SERVE_LOAD_IMAGES = 4;
const NS = ['-n', 'k8s.io'];
const NOT_FOUND = /not found/i;
const CRI_NOT_FOUND = 5;

/** Build the images in `dir` and push them to `reg`; their references. */
export async function pushServeLoadImages(dir: string, reg: TestRegistry): Promise<string[]> {
  const base = { 'etc/os-release': 'ID=stress\n', 'lib/base.bin': 'base\n'.repeat(4096) };
  await writeOciLayout(
    join(dir, 'layout'),
    Array.from({ length: SERVE_LOAD_IMAGES }, (_, i) => ({
      tag: `v${i}`,
      image: {
        layers: [base, { [`app/${i}`]: `app ${i}\n` }, { randomBytes: 96 * 1024, path: `data/${i}` }],
      },
    })),
  );
  const refs: string[] = [];
  for (let i = 0; i < SERVE_LOAD_IMAGES; i++) {
    await pushLayout(join(dir, 'layout'), `stress/app${i}:v${i}`, reg.registryHost);
    refs.push(`${reg.registryHost}/stress/app${i}:v${i}`);
  }
  return refs;
}

export type CallOutcome = 'ok' | 'not found' | 'error';

/** One call a client made: what it was ("ctr pull (native)", "cri ImageStatus"), how long, how it ended. */
export interface CallRecord {
  op: string;
  ms: number;
  outcome: CallOutcome;
  /** What the client was told when it failed: the gRPC status details, or the command's error line. */
  message?: string;
}

export interface ClientLog {
  name: string;
  ops: number;
  unexpected: string[];
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** A thrown gRPC status, a command's exit, or a gRPC response (which is success). */
function recordOf(op: string, ms: number, r: unknown, thrown: boolean): CallRecord {
  if (thrown) {
    const e = r as { code?: number; details?: string; message?: string };
    const outcome = e.code === CRI_NOT_FOUND ? 'not found' : 'error';
    return { op, ms, outcome, message: e.details ?? e.message ?? String(r) };
  }
  const c = r as Partial<CommandResult>;
  if (typeof c.stderr !== 'string' || c.code === 0) return { op, ms, outcome: 'ok' };
  // The error line (`hoist: …`, `ctr: …`), not a hint or log line around it.
  const lines = c.stderr.trim().split('\n');
  const message = lines.find((l) => /^(hoist|ctr): /.test(l)) ?? lines.pop() ?? '';
  return { op, ms, outcome: NOT_FOUND.test(c.stderr) ? 'not found' : 'error', message };
}

/** Run `op` until the deadline; a failure that is not NotFound is recorded (and the loop goes on). */
async function loop(name: string, deadline: number, op: () => Promise<CommandResult | undefined>) {
  const log: ClientLog = { name, ops: 0, unexpected: [] };
  while (performance.now() < deadline) {
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

export interface ServeLoadOptions {
  srv: ServedStore;
  /** A CRI ImageService client on the daemon's socket. */
  cri: AnyClient;
  refs: string[];
  seconds: number;
  /** Told of every call as it ends (the bench's latencies); the test passes none. */
  onCall?: (call: CallRecord) => void;
}

/** The eight clients at once for `seconds`; each one's operations and unexpected errors. */
export function serveLoad(o: ServeLoadOptions): Promise<ClientLog[]> {
  const { srv, cri, refs } = o;
  const timed = async <T>(op: string, call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    let thrown = false;
    let r: unknown;
    try {
      r = await call();
      return r as T;
    } catch (err) {
      thrown = true;
      r = err;
      throw err;
    } finally {
      o.onCall?.(recordOf(op, performance.now() - started, r, thrown));
    }
  };
  const ctr = (op: string, ...a: string[]) => timed(op, () => srv.ctr(...NS, ...a));
  const hoist = (op: string, ...a: string[]) =>
    timed(op, () => srv.hoist('--address', srv.socket, ...NS, ...a));
  const criCall = <T>(method: string, req: unknown) =>
    timed(`cri ${method[0]!.toUpperCase()}${method.slice(1)}`, () =>
      unary<T>(cri, method, req, new Metadata()),
    );
  // Monotonic: a wall clock stepped mid-run (a VM's time sync) would shorten or stretch the load.
  const deadline = performance.now() + o.seconds * 1000;
  return Promise.all([
    loop('ctr pull (overlayfs)', deadline, () =>
      ctr('ctr pull (overlayfs)', 'images', 'pull', '--plain-http', pick(refs)),
    ),
    loop('ctr pull (native)', deadline, () =>
      ctr('ctr pull (native)', 'images', 'pull', '--plain-http', '--snapshotter', 'native', pick(refs)),
    ),
    loop('hoist pull', deadline, () =>
      hoist('hoist pull', 'pull', '--plain-http', '--progress', 'quiet', pick(refs)),
    ),
    loop('cri pull+status', deadline, async () => {
      const ref = pick(refs);
      await criCall('pullImage', { image: { image: ref } });
      await criCall('imageStatus', { image: { image: ref }, verbose: true });
      return undefined;
    }),
    loop('lister', deadline, async () => {
      await criCall('listImages', {});
      const a = await hoist('hoist images --all', 'images', '--all');
      if (a.code !== 0) return a;
      return ctr('ctr images ls', 'images', 'ls');
    }),
    loop('hoist rmi', deadline, () => hoist('hoist rmi', 'rmi', pick(refs))),
    loop('ctr images rm', deadline, () => ctr('ctr images rm', 'images', 'rm', pick(refs))),
    loop('cri remove', deadline, async () => {
      await criCall('removeImage', { image: { image: pick(refs) } });
      return undefined;
    }),
  ]);
}

/**
 * Once the load is over: one final pull of every image through the CRI, then the three views must agree
 * (ctr, `hoist images --all`, CRI ListImages; one `hoist images` row per image) and `hoist system check`
 * through the daemon must be clean. Throws an AssertionError naming the first difference.
 */
export async function assertServeLoadSettles(
  srv: ServedStore,
  cri: AnyClient,
  refs: string[],
): Promise<void> {
  const criCall = <T>(method: string, req: unknown) => unary<T>(cri, method, req, new Metadata());
  const hoist = (...a: string[]) => srv.hoist('--address', srv.socket, ...NS, ...a);
  for (const ref of refs) await criCall('pullImage', { image: { image: ref } });
  const ctrNames = (await srv.ctrOk(...NS, 'images', 'ls', '-q')).split('\n').filter(Boolean).sort();
  const all = await hoist('images', '--all', '--format', 'json');
  assert.equal(all.code, 0, all.stderr);
  const hoistNames = all.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { Name: string }).Name)
    .sort();
  assert.deepEqual(hoistNames, ctrNames, 'hoist --all and ctr list the same names');
  const listed = await criCall<{ images: { repoTags: string[] }[] }>('listImages', {});
  assert.deepEqual(listed.images.flatMap((i) => i.repoTags).sort(), [...refs].sort(), 'CRI: every tag, once');
  const rows = tableRows((await hoist('images')).stdout);
  assert.equal(rows.length, SERVE_LOAD_IMAGES, `one row per image:\n${rows.join('\n')}`);

  const through = await hoist('system', 'check', '--format', 'json');
  const report = checkReport<ConsistencyReport>(through.stdout);
  assert.equal(through.code, 0, JSON.stringify(report.problems, null, 2));
  assert.equal(report.checked.images, SERVE_LOAD_IMAGES);
}
