// Terminal progress that fits the screen: the live region's lines fit the rows and columns it is given
// (with a summary of the blobs left out), and the reporter, drawn on a small model of a terminal, leaves
// only final lines in the scrollback however many blobs there are, log lines included.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mock, test } from 'node:test';
import { displayWidth } from '../../src/cli/output/tabwriter.ts';
import { fitWidth, type LiveEntry, liveLine, liveRegion, shortKey } from '../../src/cli/progress/layout.ts';
import type { ProgressStatus } from '../../src/cli/progress/progress-state.ts';
import { createTtyProgress, type TerminalStream } from '../../src/cli/progress/tty-progress.ts';
import { divertStderrLines, writeStderrLine } from '../../src/cli/stderr-lines.ts';

const digest = (i: number) => `sha256:${i.toString(16).padStart(2, '0').repeat(32)}`;
const key = (i: number) => `layer-${digest(i)}`;
const MiB = 1 << 20;

function entry(i: number, status: ProgressStatus, current = 0): LiveEntry {
  return {
    key: key(i),
    state: { status, current, total: 4 * MiB },
    speed: status === 'downloading' ? MiB : 0,
  };
}

test('a region with room for every blob shows each, active ones first', () => {
  const entries = [entry(1, 'waiting'), entry(2, 'downloading', MiB), entry(3, 'verifying', 4 * MiB)];
  const lines = liveRegion(entries, { rows: 12, columns: 80 });
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, new RegExp(`^${shortKey(key(2))} +downloading +\\|\\+*-*\\| 1\\.0 MiB/4\\.0 MiB`));
  assert.match(lines[1]!, /verifying/);
  assert.match(lines[2]!, /waiting/);
});

test('more blobs than rows: rows - 1 lines, the last one summarising the rest by state', () => {
  const entries = [
    ...Array.from({ length: 6 }, (_, i) => entry(i, 'waiting')),
    ...Array.from({ length: 10 }, (_, i) => entry(10 + i, 'downloading', i * 100_000)),
  ];
  const lines = liveRegion(entries, { rows: 12, columns: 80 });
  assert.equal(lines.length, 11, 'the cursor line stays on screen');
  for (const l of lines.slice(0, 10)) assert.match(l, /downloading/);
  assert.equal(lines[10], '… 6 more: 6 waiting');
  const mixed = liveRegion(entries, { rows: 6, columns: 80 });
  assert.equal(mixed.length, 5);
  assert.equal(mixed[4], '… 12 more: 6 downloading, 6 waiting');
});

test('a screen of two rows: one summary line; of one row: nothing live', () => {
  const entries = [entry(1, 'downloading'), entry(2, 'waiting')];
  assert.deepEqual(liveRegion(entries, { rows: 3, columns: 80 }).length, 2);
  assert.deepEqual(liveRegion(entries, { rows: 2, columns: 80 }), [
    '… 2 in progress: 1 downloading, 1 waiting',
  ]);
  assert.deepEqual(liveRegion(entries, { rows: 1, columns: 80 }), []);
});

test('every line fits the columns: the bar shrinks, then goes, then the line is cut', () => {
  for (const columns of [200, 120, 80, 60, 40, 20, 5, 1]) {
    const lines = liveRegion([entry(1, 'downloading', MiB), entry(2, 'waiting')], { rows: 12, columns });
    for (const l of lines) assert.ok(displayWidth(l) <= columns - 1, `${JSON.stringify(l)} fits ${columns}`);
  }
  assert.match(liveLine(entry(1, 'downloading', MiB), 200), /\|\+{10}-{30}\|/, 'a full bar at most 40 wide');
  assert.doesNotMatch(liveLine(entry(1, 'downloading', MiB), 60), /\|/, 'no room for a bar');
});

test('cutting counts display width and makes control characters spaces', () => {
  assert.equal(fitWidth('abcdef', 4), 'abcd');
  assert.equal(fitWidth('日本語', 5), '日本');
  assert.equal(fitWidth('a\nb\x1b[2Jc', 20), 'a b [2Jc');
});

/**
 * Enough of a terminal for the reporter: a screen of `rows` × `columns` whose lines scroll into a
 * history, cursor up (ESC [ n A), erase line (ESC [ 2 K), erase below (ESC [ J), CR, LF and wrapping.
 */
class ScreenModel extends EventEmitter {
  isTTY = true;
  history: string[] = [];
  screen: string[];
  private row = 0;
  private col = 0;
  maxLineWidth = 0;
  rows: number;
  columns: number;
  constructor(rows: number, columns: number) {
    super();
    this.rows = rows;
    this.columns = columns;
    this.screen = Array.from({ length: rows }, () => '');
  }
  /** To the start of the next line, scrolling the top line into the history at the bottom. */
  private newLine() {
    this.col = 0;
    if (this.row < this.rows - 1) {
      this.row++;
      return;
    }
    this.history.push(this.screen.shift()!);
    this.screen.push('');
  }
  write(data: string): boolean {
    for (const m of data.matchAll(/\x1b\[(\d*)([AKJ])|\r|\n|[^\x1b\r\n]/gu)) {
      const [all, n, op] = m;
      if (op === 'A') this.row = Math.max(0, this.row - Number(n || 1));
      else if (op === 'K') this.screen[this.row] = '';
      else if (op === 'J') for (let r = this.row; r < this.screen.length; r++) this.screen[r] = '';
      else if (all === '\r') this.col = 0;
      else if (all === '\n') this.newLine();
      else {
        if (this.col >= this.columns) this.newLine();
        this.screen[this.row] = this.screen[this.row]!.padEnd(this.col) + all;
        this.col++;
        this.maxLineWidth = Math.max(this.maxLineWidth, this.col);
      }
    }
    return true;
  }
  /** Everything, as `tmux capture-pane -S -` shows it: history then screen, trailing blank lines dropped. */
  all(): string[] {
    const lines = [...this.history, ...this.screen];
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines;
  }
}

test('16 blobs on a 12-row screen: the history holds each finished blob once and no stale progress', () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    const term = new ScreenModel(12, 80);
    const progress = createTtyProgress(term as unknown as TerminalStream);
    const blobs = Array.from({ length: 16 }, (_, i) => i);
    for (const i of blobs) progress.update(key(i), { status: 'waiting', total: 4 * MiB });
    // Three at a time, each in four steps, a redraw after every step.
    for (let first = 0; first < 16; first += 3) {
      const batch = blobs.slice(first, first + 3);
      for (let step = 1; step <= 4; step++) {
        for (const i of batch)
          progress.update(key(i), { status: 'downloading', current: step * MiB, total: 4 * MiB });
        mock.timers.tick(100);
        assert.ok(term.screen.filter((l) => l !== '').length <= 11, 'the live region fits the screen');
      }
      for (const i of batch) progress.update(key(i), { status: 'done', current: 4 * MiB, total: 4 * MiB });
      mock.timers.tick(100);
    }
    progress.done('pulled example');
    const lines = term.all();
    assert.ok(term.maxLineWidth <= 79, 'no line reaches the last column');
    assert.deepEqual(
      lines.filter((l) => /downloading|waiting|…/.test(l)),
      [],
      'no progress line is left anywhere',
    );
    for (const i of blobs) {
      const mentions = lines.filter((l) => l.includes(shortKey(key(i))));
      assert.equal(mentions.length, 1, `blob ${i} once`);
      assert.match(mentions[0]!, / done +4\.0 MiB$/);
    }
    assert.equal(lines.at(-1), 'pulled example');
  } finally {
    mock.timers.reset();
  }
});

test('a smaller screen after a resize: the region shrinks to it', () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    const term = new ScreenModel(12, 80);
    const progress = createTtyProgress(term as unknown as TerminalStream);
    for (let i = 0; i < 10; i++)
      progress.update(key(i), { status: 'downloading', current: MiB, total: 4 * MiB });
    mock.timers.tick(100);
    assert.equal(term.screen.filter((l) => l !== '').length, 10);
    term.rows = 5;
    term.emit('resize');
    // The model's screen keeps 12 rows; what the reporter drew after the resize is what counts.
    assert.equal(term.screen.filter((l) => l !== '').length, 4);
    assert.match(term.screen.filter((l) => l !== '').at(-1)!, /^… 7 more: 7 downloading$/);
    progress.done();
  } finally {
    mock.timers.reset();
  }
});

test('a blob that finishes and starts again (downloaded, then unpacked) keeps a line per finished step', () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    const term = new ScreenModel(12, 80);
    const progress = createTtyProgress(term as unknown as TerminalStream);
    progress.update(key(1), { status: 'downloading', current: 0, total: MiB });
    progress.update(key(1), { status: 'done', current: MiB, total: MiB });
    progress.update(key(1), { status: 'done', current: MiB, total: MiB });
    progress.update(key(1), { status: 'unpacking', current: MiB, total: MiB });
    mock.timers.tick(100);
    progress.log('warning: something to know');
    progress.update(key(1), { status: 'unpacked', current: MiB, total: MiB });
    progress.done();
    assert.deepEqual(
      term.all().map((l) => l.replace(/ +/g, ' ')),
      [
        `${shortKey(key(1))} done 1.0 MiB`,
        'warning: something to know',
        `${shortKey(key(1))} unpacked 1.0 MiB`,
      ],
    );
  } finally {
    mock.timers.reset();
  }
});

test('log lines written while the region is drawn go above it, not into it', () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  const term = new ScreenModel(12, 80);
  const progress = createTtyProgress(term as unknown as TerminalStream);
  const restore = divertStderrLines((line) => progress.log(line.replace(/\n$/, '')));
  try {
    for (let i = 0; i < 3; i++)
      progress.update(key(i), { status: 'downloading', current: MiB, total: 4 * MiB });
    mock.timers.tick(100);
    writeStderrLine('level=warn msg="registry request failed, retrying"\n');
    for (let i = 0; i < 3; i++) progress.update(key(i), { status: 'done', current: 4 * MiB, total: 4 * MiB });
    mock.timers.tick(100);
    progress.done();
  } finally {
    restore();
    mock.timers.reset();
  }
  const lines = term.all();
  assert.equal(lines[0], 'level=warn msg="registry request failed, retrying"');
  assert.equal(lines.length, 4);
  assert.deepEqual(
    lines.filter((l) => /downloading/.test(l)),
    [],
  );
});
