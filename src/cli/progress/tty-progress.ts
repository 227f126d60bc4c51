// Progress on a terminal, the way cargo, npm and docker draw it: each blob's line is printed once, for
// good, when it finishes (the scrollback holds only final lines), and below them a live region of the
// blobs still in progress is redrawn in place at most every 100 ms. The region never has more lines than
// the screen has rows, nor a line wider than its columns: the cursor can only move back up over lines
// still on screen, so a region that scrolled or wrapped would leave stale copies of itself behind.
import type { Writable } from 'node:stream';
import { isFinished, type LiveEntry, liveRegion, stateLine, type TerminalSize } from './layout.ts';
import type { ProgressReporter, ProgressState } from './progress-state.ts';

/** stderr, or any stream told to draw like one (`--progress tty`). */
export type TerminalStream = Writable & { isTTY?: boolean; columns?: number; rows?: number };

const REDRAW_MS = 100;
/** A stream without a size (`--progress tty` into a pipe): a common terminal's. */
const DEFAULT_SIZE: TerminalSize = { rows: 24, columns: 120 };
/** How far back the speed of a transfer is measured. */
const SPEED_WINDOW_MS = 2000;

interface Tracked {
  state: ProgressState;
  samples: { t: number; bytes: number }[];
}

/** A line printed above the live region: a finished blob's (drawn at the width of that moment) or a log line. */
type Settled = { key: string; state: ProgressState } | { text: string };

function speedOf(t: Tracked): number {
  if (t.samples.length < 2) return 0;
  const a = t.samples[0]!;
  const b = t.samples[t.samples.length - 1]!;
  return b.t > a.t ? ((b.bytes - a.bytes) * 1000) / (b.t - a.t) : 0;
}

/** A report with the sizes an earlier one gave when it omits them (a detail belongs to its own state only). */
function withSizes(state: ProgressState, previous: ProgressState | undefined): ProgressState {
  const merged = { ...state };
  if (merged.current === undefined && previous?.current !== undefined) merged.current = previous.current;
  if (merged.total === undefined && previous?.total !== undefined) merged.total = previous.total;
  return merged;
}

export function createTtyProgress(stream: TerminalStream): ProgressReporter {
  /** Blobs in progress, in the order they started. */
  const live = new Map<string, Tracked>();
  /** Each blob's last printed final status: a repeated report of it prints nothing. */
  const printed = new Map<string, string>();
  let settled: Settled[] = [];
  /** Lines of the live region on screen, just above the cursor. */
  let drawn = 0;
  let dirty = false;

  const size = (): TerminalSize => ({
    rows: stream.rows || DEFAULT_SIZE.rows,
    columns: stream.columns || DEFAULT_SIZE.columns,
  });

  const draw = () => {
    if (!dirty) return;
    dirty = false;
    const { rows, columns } = size();
    // Back to the region's first line; what follows overwrites it, each line cleared first.
    let out = drawn > 0 ? `\r\x1b[${drawn}A` : '';
    for (const s of settled) {
      out += `\x1b[2K${'text' in s ? s.text : stateLine(s.key, s.state, columns)}\n`;
    }
    settled = [];
    const entries: LiveEntry[] = [...live].map(([key, t]) => ({ key, state: t.state, speed: speedOf(t) }));
    const lines = liveRegion(entries, { rows, columns });
    for (const l of lines) out += `\x1b[2K${l}\n`;
    // The old region may have been longer: clear what is left of it.
    out += '\x1b[J';
    drawn = lines.length;
    stream.write(out);
  };

  const timer = setInterval(draw, REDRAW_MS);
  timer.unref();
  // Node re-reads a terminal's size on SIGWINCH and then emits 'resize': redraw at once for the new size.
  const onResize = () => {
    dirty = true;
    draw();
  };
  stream.on('resize', onResize);

  return {
    update(key, state) {
      const now = Date.now();
      const merged = withSizes(state, live.get(key)?.state);
      if (isFinished(state.status)) {
        live.delete(key);
        if (printed.get(key) === state.status) return;
        printed.set(key, state.status);
        settled.push({ key, state: merged });
        dirty = true;
        return;
      }
      let t = live.get(key);
      if (!t) {
        t = { state: merged, samples: [] };
        live.set(key, t);
      } else t.state = merged;
      if (state.current !== undefined) {
        t.samples.push({ t: now, bytes: state.current });
        while (t.samples.length > 2 && t.samples[0]!.t < now - SPEED_WINDOW_MS) t.samples.shift();
      }
      dirty = true;
    },
    log(line) {
      settled.push({ text: line });
      dirty = true;
      draw();
    },
    done(summary) {
      clearInterval(timer);
      stream.off('resize', onResize);
      // Blobs still in progress (the operation failed or was interrupted) keep the line of where they stopped.
      for (const [key, t] of live) settled.push({ key, state: t.state });
      live.clear();
      dirty = true;
      draw();
      if (summary) stream.write(`${summary}\n`);
    },
  };
}
