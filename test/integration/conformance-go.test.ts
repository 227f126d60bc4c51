// containerd 1.6's own conformance suites (content/testsuite, snapshots/testsuite) over gRPC, from the Go
// harness in test/conformance/go: against containerd 1.6 as the baseline and against `hoist serve` (both
// snapshotters), each on a fresh daemon (the suites' blobs are the same every run, and a store that
// already has them answers differently). The harness is built once with `go test -c` in GOPATH mode from
// Debian's Go sources (scripts/install-test-deps.sh), its build cache kept under ~/.cache/hoist-go.
// Snapshot suites mount, so they need root; the content suites run anywhere. The content suites run once
// more against hoist with the socket path itself as the gRPC target. See docs/conformance.md.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startContainerd } from '../helpers/containerd.ts';
import { startServe } from '../helpers/serve.ts';

const HARNESS = join(import.meta.dirname, '..', 'conformance', 'go');
const GOCODE = '/usr/share/gocode';
const isRoot = process.getuid?.() === 0;
const haveGo = existsSync('/usr/bin/go') && existsSync(join(GOCODE, 'src/github.com/containerd/containerd'));
// CI installs the Go sources (scripts/install-test-deps.sh): there, missing them is a failure.
const skip =
  !haveGo && !process.env.CI && 'needs golang-go and containerd 1.6 Go sources (install-test-deps)';

const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hoist-go');
const BINARY = join(CACHE, 'conformance.test');
const goEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  GO111MODULE: 'off',
  GOPATH: `${join(CACHE, 'gopath')}:${GOCODE}`,
  GOCACHE: join(CACHE, 'build'),
  GOFLAGS: '',
});

interface SuiteRun {
  passed: string[];
  failed: string[];
  skipped: string[];
  output: string;
}

/** Run the harness binary against a socket; the -test.v lines say what passed, failed and was skipped. */
function runHarness(socket: string, run: string, env: Record<string, string> = {}): Promise<SuiteRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, ['-test.v', '-test.run', run, '-test.timeout', '10m'], {
      env: { ...process.env, HOIST_CONFORMANCE_ADDRESS: socket, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', () => {
      const out: SuiteRun = { passed: [], failed: [], skipped: [], output };
      for (const m of output.matchAll(/^\s*--- (PASS|FAIL|SKIP): (\S+)/gm)) {
        const list = m[1] === 'PASS' ? out.passed : m[1] === 'FAIL' ? out.failed : out.skipped;
        list.push(m[2]!);
      }
      resolve(out);
    });
  });
}

/** The leaf subtests of `prefix` (a parent counts as passed when its children do). */
const leaves = (names: string[], prefix: string) =>
  names.filter((n) => n.startsWith(`${prefix}/`) && !names.some((o) => o.startsWith(`${n}/`)));

/** The lines of the output that belong to the failed subtests, for the assertion message. */
function failures(r: SuiteRun): string {
  const failed = leaves(r.failed, r.failed[0]?.split('/')[0] ?? '');
  const lines = r.output.split('\n').filter((l) => /^\s+\S+\.go:\d+: /.test(l) && !/helpers\.go:66:/.test(l));
  return `failed: ${failed.join(', ')}\n${lines.slice(0, 40).join('\n')}`;
}

function assertSuite(r: SuiteRun, prefix: string, expectPassed: number): void {
  const failed = r.failed.filter((n) => n === prefix || n.startsWith(`${prefix}/`));
  assert.deepEqual(failed, [], failures(r));
  const passed = leaves(r.passed, prefix);
  // Guard against a suite that silently ran nothing (a skip, a changed -test.run pattern).
  assert.ok(
    passed.length >= expectPassed,
    `${prefix}: ${passed.length} passed, expected ${expectPassed}\n${r.output.slice(-2000)}`,
  );
}

// ContentSuite (12) + ContentCrossNSSharedSuite (2); SnapshotterSuite has 21, of which Rename is always
// skipped upstream ("still fails on some kernels with overlay").
const CONTENT_TESTS = 14;
const SNAPSHOT_TESTS = 20;

describe('containerd conformance suites (Go)', { skip, timeout: 600_000 }, () => {
  before(async () => {
    await mkdir(CACHE, { recursive: true });
    await new Promise<void>((resolve, reject) => {
      execFile(
        'go',
        ['test', '-c', '-o', BINARY, '.'],
        { cwd: HARNESS, env: goEnv(), maxBuffer: 16 << 20 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`go test -c failed: ${stderr}${stdout}`)) : resolve(),
      );
    });
  });

  /** The content and snapshot suites against one daemon, started before and stopped after them. */
  const suites = (name: string, start: () => Promise<{ socket: string; stop(): Promise<void> }>) =>
    describe(name, () => {
      let daemon: { socket: string; stop(): Promise<void> } | undefined;
      before(async () => {
        daemon = await start();
      });
      after(async () => daemon?.stop());

      test('content suites', async () => {
        assertSuite(await runHarness(daemon!.socket, '^TestContent$'), 'TestContent', CONTENT_TESTS);
      });
      test('snapshot suite: overlayfs, native', {
        skip: !isRoot && 'snapshot suites mount: needs root',
      }, async () => {
        const r = await runHarness(daemon!.socket, '^TestSnapshots$', {
          HOIST_CONFORMANCE_SNAPSHOTTERS: 'overlayfs,native',
        });
        assertSuite(r, 'TestSnapshots/overlayfs', SNAPSHOT_TESTS);
        assertSuite(r, 'TestSnapshots/native', SNAPSHOT_TESTS);
      });
    });

  /** A fresh hoist serve on a store of its own. */
  const hoistServe = async () => {
    const served = await startServe();
    return {
      socket: served.socket,
      stop: async () => {
        await served.stop();
        await served.cleanup();
      },
    };
  };

  suites('containerd 1.6 (baseline)', async () => {
    const d = await startContainerd();
    return { socket: d.socket, stop: () => d.stop() };
  });
  suites('hoist serve', hoistServe);

  // A client that dials the socket path itself sends it as the HTTP/2 :authority, which Node's HTTP/2
  // server refuses and hoist rewrites on the way in (src/server/h2-authority-filter.ts). The content
  // suites only (a few seconds), on a fresh daemon of their own.
  describe('hoist serve, dialled by the socket path', () => {
    let daemon: { socket: string; stop(): Promise<void> } | undefined;
    before(async () => {
      daemon = await hoistServe();
    });
    after(async () => daemon?.stop());

    test('content suites', async () => {
      const r = await runHarness(daemon!.socket, '^TestContent$', { HOIST_CONFORMANCE_DIAL: 'path' });
      assertSuite(r, 'TestContent', CONTENT_TESTS);
    });
  });
});
