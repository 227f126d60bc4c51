// Aligned columns like Go's text/tabwriter as nerdctl configures it (minwidth 4, padding 4, spaces).

const MIN_WIDTH = 4;
const PADDING = 4;

/** Display width: counts code points, wide East Asian characters as two. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    w +=
      cp >= 0x1100 &&
      (cp <= 0x115f ||
        (cp >= 0x2e80 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) ||
        (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0x20000 && cp <= 0x3fffd))
        ? 2
        : 1;
  }
  return w;
}

/**
 * Render rows (the first is usually the header) as aligned text, one line per row. `minWidth` and
 * `padding` default to nerdctl's; docker's `--format 'table ...'` output uses 10 and 3.
 */
export function renderTable(rows: string[][], opts: { minWidth?: number; padding?: number } = {}): string {
  const minWidth = opts.minWidth ?? MIN_WIDTH;
  const padding = opts.padding ?? PADDING;
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return; // the last cell of a line is not a column
      widths[i] = Math.max(widths[i] ?? 0, Math.max(minWidth, displayWidth(cell) + padding));
    });
  }
  let out = '';
  for (const row of rows) {
    let line = '';
    row.forEach((cell, i) => {
      line += i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - displayWidth(cell));
    });
    out += `${line.trimEnd()}\n`;
  }
  return out;
}
