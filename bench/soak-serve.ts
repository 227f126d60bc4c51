// A soak of ONE `hoist serve`: the eight clients of test/helpers/serve-load.ts (the real ctr pulling with
// overlayfs and native unpack and removing, the hoist CLI pulling and removing through --address, a CRI
// client pulling, checking and removing, a lister reading the three views; four images sharing a base
// layer, in k8s.io, from a Distribution registry on loopback) for BENCH_SOAK_SECONDS (default 600).
// Every BENCH_SOAK_SAMPLE_SECONDS (default 10) it samples the daemon's VmRSS, VmHWM, threads and open
// descriptors from /proc, during the load and for BENCH_SOAK_IDLE_SECONDS (default 120) of quiet after it;
// every call's latency and failure message is recorded per operation. Prints a Markdown report: memory and
// descriptors over time (with a least-squares slope per minute over the load's second half, so "flat" is
// a number), what the descriptors are, latency percentiles per operation, what failed calls were told,
// operations and errors per client, and the checks after (the three views agree, `hoist system check`
// through the daemon, a clean stop, `system check --verify` on the store). Exits 1 if an error other than
// a NotFound race reached a client or a check failed; it never judges timing. Run it from a checkout
// nobody edits meanwhile: every CLI call loads the sources anew, and a daemon and clients of two versions
// of a changing API fail in ways no release would.
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
const IDLE = Number(process.env.BENCH_SOAK_IDLE_SECONDS ?? 120);

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
  const endOfLoad = samples.length - 1;
  const fdsAtEnd = await fdKinds(pid, srv.dir);
  // Then quiet: the applier's workers stop 5 s after their last layer, and V8 gives back the heap it
  // grew under load only once the isolate idles (its memory reducer). What stays is what a daemon keeps.
  log(`${IDLE} s idle`);
  for (let t = 0; t < IDLE; t += EVERY) {
    await sleep(EVERY * 1000);
    await sample();
  }
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
  const rows = [
    ['', 'idle before', 'min', 'max', 'end of load', `idle ${IDLE} s after`, 'slope per min, 2nd half'],
  ];
  for (const [name, y, fmt] of [
    ['VmRSS MiB', (s: ProcSample) => s.rssKiB, mib],
    ['VmHWM MiB', (s: ProcSample) => s.hwmKiB, mib],
    ['open fds', (s: ProcSample) => s.fds, String],
    ['threads', (s: ProcSample) => s.threads, String],
  ] as const) {
    const t = trend(samples, SECONDS, y);
    const perMin = name.endsWith('MiB') ? `${(t.perMinute / 1024).toFixed(2)} MiB` : t.perMinute.toFixed(2);
    const end = fmt(y(samples[endOfLoad]!));
    rows.push([name, fmt(t.first), fmt(t.min), fmt(t.max), end, fmt(t.last), perMin]);
  }
  out.push("Daemon memory and descriptors (the slope is over the load's second half):", '');
  out.push(markdownTable(rows), '');
  const minutes = new Set<number>();
  const perMinute = samples.filter((s, i) => {
    const first = !minutes.has(Math.floor(s.s / 60));
    minutes.add(Math.floor(s.s / 60));
    return first || i === endOfLoad || i === samples.length - 1;
  });
  out.push('Over time (about one sample a minute):', '');
  out.push(
    markdownTable([
      ['s', 'phase', 'calls done', 'VmRSS MiB', 'VmHWM MiB', 'open fds', 'threads'],
      ...perMinute.map((s) => [
        s.s.toFixed(0),
        s === samples[0] ? 'idle before' : s.s <= samples[endOfLoad]!.s ? 'load' : 'idle after',
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
  out.push('What the descriptors are:', '');
  out.push(
    markdownTable([
      ['descriptor', 'before the load', 'end of load', `idle ${IDLE} s after`],
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
  const failures = latencies.failureRows();
  if (failures.length > 0) {
    out.push('What the failed calls were told (digests, ports and which image made generic):', '');
    out.push(markdownTable([['operation', 'outcome', 'calls', 'message'], ...failures]), '');
  }
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
