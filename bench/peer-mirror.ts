// Pulling through peers over a throttled uplink (docs/peer-mirror.md): one upstream registry behind the
// counting proxy and a shared token bucket (the site's uplink, BENCH_UPLINK_MIB_S, default 16 MiB/s), and
// three stores on loopback. "upstream only": A, B and C each pull from the upstream. "through peers": A
// pulls from the upstream, B with A's registry endpoint as a pull-only hosts.toml mirror, C with A and B.
// Then a rollout: BENCH_FANOUT (default 4) more stores pull at once, from the upstream or through A and B,
// while A's RSS is sampled. Prints each pull's wall time and the blob bytes the upstream sent; BENCH_RUNS
// rounds (default 3) of both, interleaved, medians reported.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushLayout, writeOciLayout } from '../test/helpers/image-builder.ts';
import { type PeerNode, pullVia, startPeerNode, writeHostsDir } from '../test/helpers/peer-nodes.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { machineLine, markdownTable, median } from './lib.ts';

const MiB = 1024 * 1024;
const UPLINK = Number(process.env.BENCH_UPLINK_MIB_S ?? 16) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LAYERS = [24 * MiB, 16 * MiB, 8 * MiB];
const FANOUT = Number(process.env.BENCH_FANOUT ?? 4);

async function vmRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

/** A TCP proxy whose connections share one byte budget per second, downstream: the site's uplink. */
async function throttledUplink(target: number): Promise<{ port: number; close(): void }> {
  let tokens = UPLINK / 20;
  const waiting: (() => void)[] = [];
  const refill = setInterval(() => {
    tokens = Math.min(UPLINK / 20, tokens + UPLINK / 20);
    while (tokens > 0 && waiting.length > 0) waiting.shift()!();
  }, 50);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(target, '127.0.0.1');
    sockets.add(client).add(up);
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      tokens -= chunk.byteLength;
      if (!client.write(chunk) || tokens <= 0) {
        up.pause();
        const go = () => {
          if (tokens > 0 && !client.writableNeedDrain) up.resume();
          else if (tokens <= 0) waiting.push(go);
          else client.once('drain', go);
        };
        if (tokens <= 0) waiting.push(go);
        else client.once('drain', go);
      }
    });
    up.on('end', () => client.end());
    for (const s of [client, up])
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close() {
      clearInterval(refill);
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const work = await mkdtemp(join(tmpdir(), 'hoist-bench-peers-'));
const reg = await startRegistry();
const nodes: PeerNode[] = [];
try {
  await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: LAYERS.map((randomBytes) => ({ randomBytes })) } },
  ]);
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.registryHost, { srcTag: 'app' });
  const uplink = await throttledUplink(Number(reg.host.split(':')[1]));
  const upstream = `127.0.0.1:${uplink.port}`;
  const ref = `${upstream}/team/app:1`;
  const upstreamBlobBytes = () =>
    reg
      .stats()
      .requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'))
      .reduce((n, r) => n + r.bytes, 0);
  const times: Record<string, number[]> = {};
  const bytes: Record<string, number[]> = {};
  const record = (key: string, ms: number, b: number) => {
    times[key] = [...(times[key] ?? []), ms];
    bytes[key] = [...(bytes[key] ?? []), b];
  };
  /** Pull into each root at once; the time is the slowest pull's, the bytes all of theirs. */
  const timedAll = async (key: string, roots: string[], hosts: string) => {
    const before = upstreamBlobBytes();
    const t0 = performance.now();
    const results = await Promise.all(roots.map((root) => pullVia(root, hosts, ref)));
    const failed = results.find((r) => r.code !== 0);
    if (failed) throw new Error(`${key}: ${failed.stderr}`);
    record(key, performance.now() - t0, upstreamBlobBytes() - before);
  };
  const timed = (key: string, root: string, hosts: string) => timedAll(key, [root], hosts);
  const fanRoots = (dir: string, tag: string) =>
    Array.from({ length: FANOUT }, (_, i) => join(dir, `${tag}-${i}`));
  const peakRss: number[] = [];
  const idleRss: number[] = [];
  for (let round = 0; round < RUNS; round++) {
    const dir = join(work, `round-${round}`);
    // Upstream only: three stores, no mirrors.
    const none = await writeHostsDir(join(dir, 'hosts-none'), upstream, []);
    for (const n of ['A', 'B', 'C']) await timed(`upstream only: ${n}`, join(dir, `plain-${n}`), none);
    // Through peers: A and B are daemons whose stores serve as mirrors.
    const a = await startPeerNode();
    const b = await startPeerNode();
    nodes.push(a, b);
    await timed('through peers: A (upstream)', a.served.root, none);
    await timed(
      'through peers: B (via A)',
      b.served.root,
      await writeHostsDir(join(dir, 'hosts-b'), upstream, [a.registry]),
    );
    await timed(
      'through peers: C (via A, B)',
      join(dir, 'peer-C'),
      await writeHostsDir(join(dir, 'hosts-c'), upstream, [a.registry, b.registry]),
    );
    // A rollout: FANOUT more stores at once, through A and B, or all from the upstream.
    await timedAll(`upstream only: ${FANOUT} at once (slowest)`, fanRoots(dir, 'fan-plain'), none);
    const pid = a.served.child.pid!;
    idleRss.push(await vmRssKiB(pid));
    let peak = 0;
    const sampler = setInterval(() => {
      vmRssKiB(pid).then(
        (kib) => {
          peak = Math.max(peak, kib);
        },
        () => undefined,
      );
    }, 100);
    const hostsAB = join(dir, 'hosts-c');
    await timedAll(`through peers: ${FANOUT} at once via A, B (slowest)`, fanRoots(dir, 'fan-peer'), hostsAB);
    clearInterval(sampler);
    peakRss.push(peak);
    await a.served.cleanup();
    await b.served.cleanup();
  }
  uplink.close();
  const total = LAYERS.reduce((x, y) => x + y, 0);
  process.stdout.write(`\n${await machineLine()}\n`);
  process.stdout.write(
    `image: ${LAYERS.length} layers, ${(total / MiB).toFixed(0)} MiB; uplink ${(UPLINK / MiB).toFixed(0)} MiB/s; ${RUNS} rounds\n\n`,
  );
  const rows = [['pull', 'median s', 'upstream blob MiB (median)']];
  for (const key of Object.keys(times))
    rows.push([key, (median(times[key]!) / 1000).toFixed(2), (median(bytes[key]!) / MiB).toFixed(1)]);
  const sum = (prefix: string) =>
    Object.keys(times)
      .filter((k) => k.startsWith(prefix) && !k.includes('at once'))
      .reduce((n, k) => n + median(times[k]!), 0);
  const sumBytes = (prefix: string) =>
    Object.keys(bytes)
      .filter((k) => k.startsWith(prefix) && !k.includes('at once'))
      .reduce((n, k) => n + median(bytes[k]!), 0);
  rows.push([
    'upstream only: all three',
    (sum('upstream only') / 1000).toFixed(2),
    (sumBytes('upstream only') / MiB).toFixed(1),
  ]);
  rows.push([
    'through peers: all three',
    (sum('through peers') / 1000).toFixed(2),
    (sumBytes('through peers') / MiB).toFixed(1),
  ]);
  process.stdout.write(`${markdownTable(rows)}\n`);
  process.stdout.write(
    `\nA's daemon while ${FANOUT} peers pulled from it at once: RSS ${(median(idleRss) / 1024).toFixed(0)} MiB before, peak ${(median(peakRss) / 1024).toFixed(0)} MiB (medians)\n`,
  );
} finally {
  for (const n of nodes) await n.served.cleanup();
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
