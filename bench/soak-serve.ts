// A soak of ONE `hoist serve`: the eight clients of test/helpers/serve-load.ts (the real ctr pulling with
// overlayfs and native unpack and removing, the hoist CLI pulling and removing through --address, a CRI
// client pulling, checking and removing, a lister reading the three views; four images sharing a base
// layer, in k8s.io, from a Distribution registry on loopback) for BENCH_SOAK_SECONDS (default 600).
// Every BENCH_SOAK_SAMPLE_SECONDS (default 10) it samples the daemon's VmRSS, VmHWM, threads and open
// descriptors from /proc; every call's latency is recorded per operation. Prints a Markdown report: memory
// and descriptors over time (with a least-squares slope per minute over the load's second half, so "flat"
// is a number), what the descriptors are at the start and the end, latency percentiles per operation,
// operations and errors per client, and the checks after (the three views agree, `hoist system check`
// through the daemon, a clean stop, `system check --verify` on the store). Exits 1 if an error other than
// a NotFound race reached a client or a check failed; it never judges timing.
//   node_modules/.bin/node bench/soak-serve.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService } from '../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { TestClients } from '../test/helpers/grpc-client.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import { startServe } from '../test/helpers/serve.ts';
import { assertServeLoadSettles, pushServeLoadImages, serveLoad } from '../test/helpers/serve-load.ts';
import { log, machineLine, markdownTable, sleep } from './lib.ts';
import { fdKinds, Latencies, type ProcSample, sampleProc, trend } from './soak-stats.ts';

const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 600);
const EVERY = Number(process.env.BENCH_SOAK_SAMPLE_SECONDS ?? 10);

const work = await mkdtemp(join(tmpdir(), 'hoist-bench-soak-'));
const reg = await startRegistry();
const srv = await startServe();
const clients = new TestClients(srv.socket);
const pid = srv.child.pid!;
const latencies = new Latencies();
const samples: ProcSample[] = [];
let loadStart = performance.now();
const sample = async () => {
  const s = (performance.now() - loadStart) / 1000;
  samples.push({ s, calls: latencies.calls, ...(await sampleProc(pid)) });
};
let failed = false;
try {
  const refs = await pushServeLoadImages(work, reg);
  const cri = clients.client(ImageService);
  await sample(); // idle, nothing pulled yet
  const fdsBefore = await fdKinds(pid, srv.dir);
  log(`${SECONDS} s of eight clients on hoist serve (pid ${pid}), sampling every ${EVERY} s`);
  loadStart = performance.now();
  samples[0]!.s = 0;
  const timer = setInterval(() => {
    sample().then(() => {
      const last = samples[samples.length - 1]!;
      log(
        `${last.s.toFixed(0)} s: RSS ${(last.rssKiB / 1024).toFixed(1)} MiB, ${last.fds} fds, ${last.calls} calls (load ${loadavg()[0]!.toFixed(2)})`,
      );
    }, failOn('sampling'));
  }, EVERY * 1000);
  const logs = await serveLoad({ srv, cri, refs, seconds: SECONDS, onCall: (c) => latencies.add(c) });
  clearInterval(timer);
  await sample(); // the load's end
  const fdsAtEnd = await fdKinds(pid, srv.dir);
  // Quiet for a while (the applier's workers stop 5 s after their last layer): what stays is what a
  // daemon keeps between bursts.
  await sleep(15_000);
  await sample();
  const fdsIdle = await fdKinds(pid, srv.dir);

  let settled = 'the views agree; clean';
  await assertServeLoadSettles(srv, cri, refs).catch((err: Error) => {
    settled = `**failed**: ${err.message}`;
  });
  clients.close();
  const stopCode = await srv.stop();
  const embedded = await srv.hoist('system', 'check', '--verify', '--format', 'json');
  const unexpected = logs.reduce((n, l) => n + l.unexpected.length, 0);
  failed = unexpected > 0 || settled.startsWith('**') || stopCode !== 0 || embedded.code !== 0;
  for (const l of logs) for (const u of l.unexpected) log(`  ${l.name}: ${u}`);

  const out: string[] = [await machineLine(), `- ${SECONDS} s of load, one sample every ${EVERY} s`, ''];
  const mib = (k: number) => (k / 1024).toFixed(1);
  const rows = [['', 'first', 'min', 'max', 'last', 'slope per min, 2nd half']];
  for (const [name, y, fmt] of [
    ['VmRSS MiB', (s: ProcSample) => s.rssKiB, mib],
    ['VmHWM MiB', (s: ProcSample) => s.hwmKiB, mib],
    ['open fds', (s: ProcSample) => s.fds, String],
    ['threads', (s: ProcSample) => s.threads, String],
  ] as const) {
    const t = trend(samples, SECONDS, y);
    const perMin = name.endsWith('MiB') ? `${(t.perMinute / 1024).toFixed(2)} MiB` : t.perMinute.toFixed(2);
    rows.push([name, fmt(t.first), fmt(t.min), fmt(t.max), fmt(t.last), perMin]);
  }
  out.push('Daemon memory and descriptors ("first" idle before the load, "last" idle 15 s after it):', '');
  out.push(markdownTable(rows), '');
  const minutes = new Set<number>();
  const perMinute = samples.filter((s, i) => {
    const first = !minutes.has(Math.floor(s.s / 60));
    minutes.add(Math.floor(s.s / 60));
    return first || i === samples.length - 1;
  });
  out.push('Over time (about one sample a minute):', '');
  out.push(
    markdownTable([
      ['s', 'calls done', 'VmRSS MiB', 'VmHWM MiB', 'open fds', 'threads'],
      ...perMinute.map((s) => [
        s.s.toFixed(0),
        String(s.calls),
        mib(s.rssKiB),
        mib(s.hwmKiB),
        String(s.fds),
        String(s.threads),
      ]),
    ]),
    '',
  );
  const kinds = [...new Set([...fdsBefore.keys(), ...fdsAtEnd.keys(), ...fdsIdle.keys()])].sort();
  out.push('What the descriptors are (before the load, at its end, idle after):', '');
  out.push(
    markdownTable([
      ['descriptor', 'before', 'end of load', 'idle after'],
      ...kinds.map((k) => [`\`${k}\``, ...[fdsBefore, fdsAtEnd, fdsIdle].map((m) => String(m.get(k) ?? 0))]),
    ]),
    '',
  );
  out.push('Latency per operation, ms (each CLI call is a process: its start-up is in the figure):', '');
  out.push(
    markdownTable([
      ['operation', 'calls', 'ok', 'not found', 'errors', 'p50', 'p90', 'p99', 'max'],
      ...latencies.rows(),
    ]),
    '',
  );
  out.push(
    markdownTable([
      ['client', 'operations', 'errors other than NotFound'],
      ...logs.map((l) => [l.name, String(l.ops), String(l.unexpected.length)]),
    ]),
    '',
  );
  out.push(`After the load, quiet: ${settled}`);
  out.push(`The daemon stopped on SIGTERM with exit code ${stopCode}.`);
  out.push(
    `\`hoist system check --verify\` on the store afterwards: ${embedded.code === 0 ? 'clean' : `**exit ${embedded.code}**: ${embedded.stdout}${embedded.stderr}`}`,
  );
  console.log(out.join('\n'));
} finally {
  clients.close();
  await srv.cleanup();
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;

function failOn(what: string) {
  return (err: unknown) => log(`${what}: ${String(err)}`);
}
