// What the terminal progress shows, as plain strings: one line per blob, cut to the terminal's width, and
// the live region (the lines redrawn in place) cut to its height. Pure functions, so the fitting is
// tested without a terminal; tty-progress.ts does the drawing.

import { displayWidth } from '../output/tabwriter.ts';
import { binarySize } from '../output/units.ts';
import type { ProgressState, ProgressStatus } from './progress-state.ts';

/** Widest progress bar; narrower terminals get a shorter one, very narrow ones none. */
const MAX_BAR = 40;
const MIN_BAR = 5;

/** A blob in the live region: its key, state and measured speed (bytes/s, 0 when unknown). */
export interface LiveEntry {
  key: string;
  state: ProgressState;
  speed: number;
}

export interface TerminalSize {
  rows: number;
  columns: number;
}

/**
 * States after which nothing more happens to a blob in this step: its line is printed once, for good.
 * (A pulled layer may later go on to `unpacking`; that is a new step with its own final line.)
 */
const FINISHED: ReadonlySet<ProgressStatus> = new Set(['done', 'exists', 'failed', 'mounted', 'unpacked']);

/** States in which bytes move or work is under way: shown before the blobs still waiting their turn. */
const ACTIVE: ReadonlySet<ProgressStatus> = new Set([
  'resolving',
  'resolved',
  'downloading',
  'uploading',
  'verifying',
  'unpacking',
]);

export function isFinished(status: ProgressStatus): boolean {
  return FINISHED.has(status);
}

/** `layer-sha256:abcdef…` → `layer-sha256:abcdef123456` (ctr prints the whole key; we keep 12 hex). */
export function shortKey(key: string): string {
  return key.replace(/(sha256:[a-f0-9]{12})[a-f0-9]{52}/, '$1');
}

/**
 * `text` cut to at most `width` display columns, control characters (a newline or escape in an error
 * message) made spaces: a line that wrapped or moved the cursor would break the redraw's line counting.
 */
export function fitWidth(text: string, width: number): string {
  let out = '';
  let used = 0;
  for (const ch of text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')) {
    const w = displayWidth(ch);
    if (used + w > width) break;
    out += ch;
    used += w;
  }
  return out;
}

function sizeText(state: ProgressState): string {
  const total = state.total ?? 0;
  return total > 0 ? ` ${binarySize(total)}` : '';
}

/**
 * A blob's line without a bar: state, size and detail. What a finished blob keeps for good (or where it
 * stopped, when the operation ended early), and a waiting or verifying blob's live line.
 */
export function stateLine(key: string, state: ProgressState, columns: number): string {
  const head = `${shortKey(key).padEnd(32)} ${state.status.padEnd(11)}`;
  const moving = state.status === 'downloading' || state.status === 'uploading';
  const size = moving
    ? ` ${binarySize(state.current ?? 0)}/${binarySize(state.total ?? 0)}`
    : sizeText(state);
  return fitWidth(`${head}${size}${state.detail ? ` (${state.detail})` : ''}`, columns - 1);
}

/** A blob's live line: a bar sized to what the terminal has room for, while bytes move. */
export function liveLine(entry: LiveEntry, columns: number): string {
  const { key, state, speed } = entry;
  const moving = state.status === 'downloading' || state.status === 'uploading';
  if (!moving) return stateLine(key, state, columns);
  const head = `${shortKey(key).padEnd(32)} ${state.status.padEnd(11)} `;
  const total = state.total ?? 0;
  const current = state.current ?? 0;
  const tail = ` ${binarySize(current)}/${binarySize(total)}${speed > 0 ? ` ${binarySize(speed)}/s` : ''}`;
  // The last column stays empty: some terminals wrap as soon as it is written.
  const room = columns - 1 - displayWidth(head) - displayWidth(tail) - 2;
  const bar = Math.min(MAX_BAR, room);
  if (bar < MIN_BAR) return fitWidth(`${head.trimEnd()}${tail}`, columns - 1);
  const filled = total > 0 ? Math.min(bar, Math.round((current / total) * bar)) : 0;
  return fitWidth(`${head}|${'+'.repeat(filled)}${'-'.repeat(bar - filled)}|${tail}`, columns - 1);
}

/** `… 7 more: 5 downloading, 2 waiting`: the blobs the live region has no room for, by state. */
export function summaryLine(hidden: LiveEntry[], columns: number, shownAny: boolean): string {
  const counts = new Map<ProgressStatus, number>();
  for (const e of hidden) counts.set(e.state.status, (counts.get(e.state.status) ?? 0) + 1);
  const parts = [...counts].map(([status, n]) => `${n} ${status}`);
  const what = shownAny ? `${hidden.length} more` : `${hidden.length} in progress`;
  return fitWidth(`… ${what}: ${parts.join(', ')}`, columns - 1);
}

/**
 * The live region's lines: the active blobs first, then the waiting ones, at most `rows - 1` lines (the
 * cursor's line stays on screen, so moving up reaches every line drawn), the last one summarising the
 * blobs left out when they do not all fit.
 */
export function liveRegion(entries: LiveEntry[], size: TerminalSize): string[] {
  const max = size.rows - 1;
  if (max <= 0 || entries.length === 0) return [];
  const ordered = [
    ...entries.filter((e) => ACTIVE.has(e.state.status)),
    ...entries.filter((e) => !ACTIVE.has(e.state.status)),
  ];
  if (ordered.length <= max) return ordered.map((e) => liveLine(e, size.columns));
  const shown = ordered.slice(0, max - 1);
  return [
    ...shown.map((e) => liveLine(e, size.columns)),
    summaryLine(ordered.slice(max - 1), size.columns, shown.length > 0),
  ];
}
