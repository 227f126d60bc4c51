// Text as man(7) roff: what groff and mandoc read without warnings. Backslashes and hyphens escaped
// (`\-` is the minus a user types; a bare `-` may print as a hyphen and not copy-paste), a line that would
// start with `.` or `'` protected so it is not taken for a request, and every non-ASCII character as
// `\[uXXXX]`, which needs no input encoding (groff without preconv reads bytes as Latin-1).

export function escapeText(text: string): string {
  let out = '';
  for (const ch of text.replaceAll('\\', '\\e').replaceAll('-', '\\-')) {
    const code = ch.codePointAt(0)!;
    out += code < 0x80 ? ch : `\\[u${code.toString(16).toUpperCase().padStart(4, '0')}]`;
  }
  return out;
}

/** A line of running text: escaped, and protected when it starts like a request. */
export function textLine(text: string): string {
  const escaped = escapeText(text);
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** Paragraphs of text, blank lines between them becoming `.PP`. */
export function paragraphs(text: string): string[] {
  const out: string[] = [];
  for (const para of text.trim().split(/\n\s*\n/)) {
    if (out.length > 0) out.push('.PP');
    out.push(...para.split('\n').map((l) => textLine(l.trim())));
  }
  return out;
}

/** Text kept as laid out (aligned columns, commands to type). */
export function preformatted(text: string): string[] {
  const lines = text.replace(/^\n+|\s+$/g, '').split('\n');
  // `.sp`, not an empty line: a blank input line is a warning to mandoc's linter.
  return ['.nf', ...lines.map((l) => (l.trim() === '' ? '.sp' : textLine(l))), '.fi'];
}

/** A string in the quotes of a `.TH` argument (double quotes cannot be escaped there: `\(dq`). */
export function quotedArgument(text: string): string {
  return `"${escapeText(text).replaceAll('"', '\\(dq')}"`;
}
