// Pull/push progress, ctr/nerdctl-like: on a terminal, finished blobs printed once above a live region
// that fits the screen (tty-progress.ts); otherwise plain append-only lines, one per state change
// (downloads at 25% steps); or nothing.
import { HoistError } from '../../core/errors.ts';
import { binarySize } from '../output/units.ts';
import { divertStderrLines } from '../stderr-lines.ts';
import { shortKey } from './layout.ts';
import type { ProgressReporter, ProgressState } from './progress-state.ts';
import { createTtyProgress, type TerminalStream } from './tty-progress.ts';

export type { ProgressReporter, ProgressState, ProgressStatus } from './progress-state.ts';

export type ProgressMode = 'tty' | 'plain' | 'quiet';

interface PlainEntry extends ProgressState {
  lastPlainQuarter: number;
}

export function createProgress(opts: { stream: TerminalStream; mode: ProgressMode }): ProgressReporter {
  const { stream, mode } = opts;
  const entries = new Map<string, PlainEntry>();
  if (mode === 'quiet') return { update() {}, log() {}, done() {} };

  if (mode === 'plain') {
    return {
      update(key, state) {
        let e = entries.get(key);
        const prev = e?.status;
        if (!e) {
          e = { ...state, lastPlainQuarter: -1 };
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

  return createTtyProgress(stream);
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
  const progress = createProgress({ stream: process.stderr, mode });
  if (mode !== 'tty') return progress;
  // Log lines (--log-level) go above the live region instead of into it.
  const restore = divertStderrLines((line) => progress.log(line.replace(/\n$/, '')));
  return {
    update: (key, state) => progress.update(key, state),
    log: (line) => progress.log(line),
    done(summary) {
      progress.done(summary);
      restore();
    },
  };
}
