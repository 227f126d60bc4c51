// Start-up as a user meets it (issue 12): the package is packed and installed with `npm install -g` into a
// scratch prefix, and its `hoist` runs beside `node -e 0` (the Node hoist runs on: the floor of any Node
// program) and `ctr --version` (containerd's client, a Go binary), interleaved:
//   hoist --version                    goal ≤ 1.3× node -e 0
//   hoist --root EMPTY images          goal ≤ 2× node -e 0   (opens the store, lists nothing)
// Each run checks the output (a version line; the images header).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CTR } from './containerd.ts';
import {
  type Bench,
  log,
  machineLine,
  printGoals,
  printTable,
  REPO_ROOT,
  RUNS,
  run,
  runInterleaved,
  type Sample,
  sampleOf,
  summarize,
} from './lib.ts';

const exec = promisify(execFile);
const work = await mkdtemp(join(tmpdir(), 'hoist-bench-startup-'));
log('packing and installing hoist (npm pack, npm install -g into a scratch prefix)');
await exec('npm', ['pack', '--pack-destination', work, '--loglevel=error'], { cwd: REPO_ROOT });
const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'))!;
await exec('npm', [
  'install',
  '-g',
  '--prefix',
  join(work, 'prefix'),
  join(work, tarball),
  '--loglevel=error',
]);
const hoist = join(work, 'prefix', 'bin', 'hoist');
const node = join(work, 'prefix', 'lib', 'node_modules', 'hoist', 'node_modules', 'node', 'bin', 'node');
const empty = join(work, 'empty-store');

const checked = (cmd: string, args: string[], expect: RegExp) => async (): Promise<Sample> => {
  const r = await run(cmd, args, { keepStdout: true });
  if (!expect.test(r.stdout)) throw new Error(`${cmd} ${args.join(' ')}: unexpected output ${r.stdout}`);
  return sampleOf(r);
};

const benches: Bench[] = [
  {
    name: 'node -e 0',
    command: 'node -e 0 (the Node hoist runs on)',
    samples: [],
    fn: checked(node, ['-e', '0'], /^$/),
  },
  {
    name: 'hoist --version',
    command: 'hoist --version',
    samples: [],
    fn: checked(hoist, ['--version'], /^\d+\.\d+\.\d+/),
  },
  {
    name: 'hoist images (empty store)',
    command: `hoist --root ${empty} images`,
    samples: [],
    fn: checked(hoist, ['--root', empty, 'images'], /^REPOSITORY/),
  },
  { name: 'ctr --version', command: 'ctr --version', samples: [], fn: checked(CTR, ['--version'], /ctr/) },
];

try {
  await runInterleaved(benches);
} finally {
  await rm(work, { recursive: true, force: true });
}

process.stdout.write(`# start-up of the installed package\n\n${await machineLine()}\n`);
printTable(`start-up (median of ${RUNS})`, benches);
const z = Object.fromEntries(benches.map((b) => [b.name, summarize(b).median]));
printGoals([
  { label: 'hoist --version / node -e 0', value: z['hoist --version']! / z['node -e 0']!, limit: 1.3 },
  {
    label: 'hoist images (empty) / node -e 0',
    value: z['hoist images (empty store)']! / z['node -e 0']!,
    limit: 2,
  },
]);
