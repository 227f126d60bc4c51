// Pull/push progress, ctr/nerdctl-like: on a terminal one line per blob redrawn in place (at most every
// 100 ms); otherwise plain append-only lines, one per state change (downloads at 25% steps); or nothing.
import type { Writable } from 'node:stream';
import { HoistError } from '../../core/errors.ts';
import { binarySize } from '../output/units.ts';

export type ProgressStatus =
  | 'waiting'
  | 'resolving'
  | 'resolved'
  | 'downloading'
  | 'verifying'
  | 'done'
  | 'exists'
  | 'failed'
  | 'uploading'
  | 'mounted'
  | 'unpacking'
  | 'unpacked';

export interface ProgressState {
  status: ProgressStatus;
  current?: number;
  total?: number;
  detail?: string;
}

export interface ProgressReporter {
  update(key: string, state: ProgressState): void;
  log(line: string): void;
  done(summary?: string): void;
}

export type ProgressMode = 'tty' | 'plain' | 'quiet';

interface Entry extends ProgressState {
  startedAt: number;
  samples: { t: number; bytes: number }[];
  lastPlainQuarter: number;
}

const BAR = 40;

/** `layer-sha256:abcdef…` → `layer-sha256:abcdef123456` (ctr prints the whole key; we keep 12 hex). */
function shortKey(key: string): string {
  return key.replace(/(sha256:[a-f0-9]{12})[a-f0-9]{52}/, '$1');
}

function speed(e: Entry): number {
  if (e.samples.length < 2) return 0;
  const a = e.samples[0]!;
  const b = e.samples[e.samples.length - 1]!;
  return b.t > a.t ? ((b.bytes - a.bytes) * 1000) / (b.t - a.t) : 0;
}

function line(key: string, e: Entry): string {
  const k = shortKey(key).padEnd(32);
  const total = e.total ?? 0;
  const cur = e.current ?? 0;
  if (e.status === 'downloading' || e.status === 'uploading') {
    const filled = total > 0 ? Math.min(BAR, Math.round((cur / total) * BAR)) : 0;
    const sp = speed(e);
    return `${k} ${e.status.padEnd(11)} |${'+'.repeat(filled)}${'-'.repeat(BAR - filled)}| ${binarySize(cur)}/${binarySize(total)}${sp > 0 ? ` ${binarySize(sp)}/s` : ''}`;
  }
  const size = total > 0 ? ` ${binarySize(total)}` : '';
  return `${k} ${e.status.padEnd(11)}${size}${e.detail ? ` (${e.detail})` : ''}`;
}

export function createProgress(opts: {
  stream: Writable & { isTTY?: boolean; columns?: number };
  mode: ProgressMode;
}): ProgressReporter {
  const { stream, mode } = opts;
  const entries = new Map<string, Entry>();
  if (mode === 'quiet') return { update() {}, log() {}, done() {} };

  if (mode === 'plain') {
    return {
      update(key, state) {
        let e = entries.get(key);
        const prev = e?.status;
        if (!e) {
          e = { ...state, startedAt: Date.now(), samples: [], lastPlainQuarter: -1 };
          entries.set(key, e);
        } else Object.assign(e, state);
        if (state.status === 'downloading' || state.status === 'uploading') {
          const quarter = state.total ? Math.floor(((state.current ?? 0) / state.total) * 4) : 0;
          if (prev === state.status && quarter <= e.lastPlainQuarter) return;
          e.lastPlainQuarter = quarter;
          stream.write(
            `${shortKey(key)}: ${state.status} ${binarySize(state.current ?? 0)}/${binarySize(state.total ?? 0)}\n`,
          );
          return;
        }
        if (prev === state.status) return;
        stream.write(`${shortKey(key)}: ${state.status}${state.detail ? ` (${state.detail})` : ''}\n`);
      },
      log(l) {
        stream.write(`${l}\n`);
      },
      done(summary) {
        if (summary) stream.write(`${summary}\n`);
      },
    };
  }

  // TTY: redraw the block of lines in place.
  let drawn = 0;
  let dirty = false;
  const draw = () => {
    if (!dirty) return;
    dirty = false;
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    const width = stream.columns ?? 120;
    for (const [key, e] of entries) out += `\x1b[2K${line(key, e).slice(0, width - 1)}\n`;
    drawn = entries.size;
    stream.write(out);
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  return {
    update(key, state) {
      let e = entries.get(key);
      if (!e) {
        e = { ...state, startedAt: Date.now(), samples: [], lastPlainQuarter: -1 };
        entries.set(key, e);
      } else Object.assign(e, state);
      if (state.current !== undefined) {
        e.samples.push({ t: Date.now(), bytes: state.current });
        const cutoff = Date.now() - 2000;
        while (e.samples.length > 2 && e.samples[0]!.t < cutoff) e.samples.shift();
      }
      dirty = true;
    },
    log(l) {
      dirty = true;
      stream.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ''}${l}\n`);
      drawn = 0;
    },
    done(summary) {
      clearInterval(timer);
      dirty = true;
      draw();
      if (summary) stream.write(`${summary}\n`);
    },
  };
}

/**
 * The reporter for `--quiet` / `--progress auto|tty|plain|quiet` on stderr: `auto` (or no flag) draws in
 * place on a terminal and appends lines otherwise.
 */
export function progressFromFlags(flags: { quiet?: boolean; progress?: string }): ProgressReporter {
  const p = flags.progress;
  const mode = flags.quiet
    ? 'quiet'
    : p === 'auto' || p === undefined
      ? process.stderr.isTTY
        ? 'tty'
        : 'plain'
      : p;
  if (mode !== 'tty' && mode !== 'plain' && mode !== 'quiet')
    throw new HoistError(
      'HOIST_INVALID_ARGUMENT',
      `invalid --progress ${JSON.stringify(p)}: use auto, tty, plain or quiet`,
    );
  return createProgress({ stream: process.stderr, mode });
}
