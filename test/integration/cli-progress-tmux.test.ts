// `hoist pull` progress on a real terminal: tmux, 80 columns by 12 rows, pulling an image of 16 layers that
// are all in flight at once (held part-way by the registry's proxy, then released one by one). While it
// runs, the live region fits the screen and nothing stale scrolls into the history; at the end the history
// holds each blob's final line once and the pull's result, and no progress bar anywhere.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { binarySize } from '../../src/cli/output/units.ts';
import { shortKey } from '../../src/cli/progress/layout.ts';
import { waitFor } from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { type BlobHold, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { MAIN, NODE } from '../helpers/run-hoist.ts';

const run = promisify(execFile);

const ROWS = 12;
const COLUMNS = 80;
const LAYERS = 16;
const LAYER_BYTES = 2 * 1024 * 1024;
/** Where the proxy holds each layer's download: a partial bar for every layer at once. */
const HELD_AT = 256 * 1024;

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let name: string;
/** A private tmux server: its own socket name and socket directory, killed in after(). */
const tmuxSocket = `hoist-progress-${process.pid}`;
let tmuxEnv: NodeJS.ProcessEnv;

const tmux = async (...args: string[]): Promise<string> =>
  (await run('tmux', ['-L', tmuxSocket, ...args], { env: tmuxEnv })).stdout;

/** The pane's lines, wrapped ones joined (-J): `history` adds every line that scrolled off (-S -). */
async function capture(history: boolean): Promise<string[]> {
  const out = await tmux('capture-pane', '-p', '-J', '-t', 'pull', ...(history ? ['-S', '-'] : []));
  const lines = out.split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines;
}

/** waitFor, failing with what the pane shows: the pull's error, if it failed. */
async function waitForPane(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  try {
    await waitFor(cond, what);
  } catch (err) {
    const pane = await capture(true).catch((e: unknown) => [String(e)]);
    throw new Error(`${(err as Error).message}; the pane:\n${pane.join('\n')}`);
  }
}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** A line of the live region (redrawn in place): never to be found where it could not be redrawn. */
const isProgressLine = (l: string) => /\|[+-]*\||downloading|waiting|verifying|unpacking|^… /.test(l);

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-progress-tmux-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'app',
      image: {
        layers: Array.from({ length: LAYERS }, (_, i) => ({ randomBytes: LAYER_BYTES, path: `l${i}.bin` })),
      },
    },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'progress/app:1', reg.host, { srcTag: 'app' });
  name = `${reg.host}/progress/app:1`;
  tmuxEnv = { ...process.env, TMUX_TMPDIR: work };
  delete tmuxEnv.TMUX;
});

after(async () => {
  await tmux('kill-server').catch(() => {});
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

test('a pull of 16 layers in an 80x12 tmux pane: a live region that fits, and only final lines kept', async () => {
  const layers = image.images[0]!.layers;
  const holds: BlobHold[] = layers.map((l) => reg.holdBlob(l.digest, HELD_AT));
  const home = join(work, 'home');
  const env = [
    `HOME=${home}`,
    `XDG_CONFIG_HOME=${join(home, '.config')}`,
    `DOCKER_CONFIG=${join(home, '.docker')}`,
    `HOIST_ROOT=${join(work, 'root')}`,
  ];
  const pull = [NODE, MAIN, 'pull', '--plain-http', '--max-concurrent-downloads', String(LAYERS), name];
  const command = `env -u HOIST_CONFIG -u HOIST_NAMESPACE -u CONTAINERD_ADDRESS ${env.map(shellQuote).join(' ')} ${pull.map(shellQuote).join(' ')}; echo EXIT=$?; sleep 60`;
  await tmux('new-session', '-d', '-s', 'pull', '-x', String(COLUMNS), '-y', String(ROWS), command);

  let sawSummary = false;
  /** What must hold at every moment: a screen's worth of live lines at most, none wrapped, none stale. */
  const checkWhileRunning = async () => {
    const screen = await capture(false);
    assert.ok(screen.length <= ROWS, `at most ${ROWS} lines on screen:\n${screen.join('\n')}`);
    for (const l of screen) assert.ok(l.length < COLUMNS, `no line wraps: ${JSON.stringify(l)}`);
    const live = screen.filter(isProgressLine);
    assert.ok(live.length <= ROWS - 1, `the live region fits with the cursor line:\n${screen.join('\n')}`);
    if (screen.some((l) => /^… \d+ more: /.test(l))) sawSummary = true;
    const all = await capture(true);
    const scrolledOff = all.slice(0, Math.max(0, all.length - screen.length));
    assert.deepEqual(scrolledOff.filter(isProgressLine), [], 'no progress line scrolled into the history');
  };

  let reached = 0;
  for (const h of holds) void h.reached.then(() => reached++);
  await waitForPane(() => reached === LAYERS, 'every layer download in flight');
  // All 16 downloads are in flight and held: the screen soon shows 10 of them and a summary of the rest.
  await waitForPane(async () => {
    await checkWhileRunning();
    return sawSummary;
  }, 'the live region summarising the layers it has no room for');
  for (const hold of holds) {
    hold.release();
    await checkWhileRunning();
  }
  let all: string[] = [];
  await waitForPane(async () => {
    all = await capture(true);
    return all.some((l) => l.startsWith('EXIT='));
  }, 'the pull to end');

  const text = all.join('\n');
  assert.ok(all.includes('EXIT=0'), `the pull succeeded:\n${text}`);
  const result = all.findIndex((l) => l.startsWith(`pulled ${name} (${image.top.digest})`));
  assert.ok(result >= 0, `the pull's result line:\n${text}`);
  assert.deepEqual(all.filter(isProgressLine), [], `no progress line anywhere:\n${text}`);
  for (const [i, l] of all.entries()) {
    // The result line names the whole digest and may wrap: it is printed last and never redrawn.
    if (i !== result) assert.ok(l.length < COLUMNS, `line ${i} fits: ${JSON.stringify(l)}`);
  }
  for (const layer of layers) {
    const key = shortKey(`layer-${layer.digest}`);
    const size = binarySize(layer.size);
    const lines = all.filter((l) => l.includes(key));
    assert.equal(
      lines.filter((l) => l.endsWith(` done        ${size}`)).length,
      1,
      `${key} done once:\n${text}`,
    );
    assert.ok(
      lines.every((l) => new RegExp(` (done|unpacked) +${size}$`).test(l)),
      `${key}: only final lines:\n${lines.join('\n')}`,
    );
    assert.ok(lines.length <= 2, `${key}: downloaded and unpacked, each once`);
  }
  assert.equal(all.filter((l) => l.includes(shortKey(`config-${image.images[0]!.config.digest}`))).length, 1);
});
