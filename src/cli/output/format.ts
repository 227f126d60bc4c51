// `--format` for every listing and inspect command, as docker reads it: `table` (the command's own
// table), `json` (one object per line, what `{{json .}}` prints), `table TEMPLATE` (a header row from
// the fields' column names, then a row per item, aligned as docker's tabwriter does), or any other
// TEMPLATE, run once per item and followed by a newline. `\t` and `\n` written as two characters in
// the flag are a tab and a newline, as docker replaces them.
import { renderTable } from './tabwriter.ts';
import { asRecord, Executor } from './template-exec.ts';
import { parseTemplate } from './template-parse.ts';

export const FORMAT_HELP =
  "'table', 'json', 'table TEMPLATE' or a Go TEMPLATE, e.g. '{{.ID}}' or '{{json .}}' (docker's --format)";

export interface Listing {
  /** The rows, with docker-style PascalCase fields; each is what `{{json .}}` prints. */
  rows: object[];
  /** Column headers for `table TEMPLATE` by field name; a field not named is upper-cased (`CreatedAt`: CREATED AT). */
  headers?: Record<string, string>;
  /** The command's default table. */
  table: () => string;
}

/** The header docker would print for a field with no column name of its own. */
function defaultHeader(field: string): string {
  return field
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toUpperCase();
}

function unescapeTabs(format: string): string {
  return format.replaceAll('\\t', '\t').replaceAll('\\n', '\n');
}

/** `table` or `table TEMPLATE`: the template after the word, else undefined. */
function tableTemplate(format: string): string | undefined {
  if (format === 'table') return '';
  return /^table\s/.test(format) ? format.slice('table'.length).trim() : undefined;
}

/** One string per row: `template` run over each (the template parsed once, errors before output). */
export function renderTemplate(template: string, rows: object[]): string[] {
  const src = unescapeTabs(template);
  const nodes = parseTemplate(src);
  const exec = new Executor(src);
  return rows.map((r) => exec.run(nodes, asRecord(r)));
}

/** The text `--format` asks for, for a listing. */
export function formatListing(format: string | undefined, listing: Listing): string {
  const f = (format ?? 'table').trim();
  if (f === '' || f === 'table') return listing.table();
  if (f === 'json') return listing.rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const table = tableTemplate(f);
  if (table === undefined)
    return renderTemplate(f, listing.rows)
      .map((l) => `${l}\n`)
      .join('');
  const src = unescapeTabs(table);
  const nodes = parseTemplate(src);
  const header = (field: string) => listing.headers?.[field] ?? defaultHeader(field);
  const lines = [
    new Executor(src, { header }).run(nodes, {}),
    ...listing.rows.map((r) => new Executor(src).run(nodes, asRecord(r))),
  ];
  // docker's table: cells split at tabs, columns at least 10 wide with 3 spaces between.
  const cells = lines.flatMap((l) => l.split('\n')).map((l) => l.split('\t'));
  return renderTable(cells, { minWidth: 10, padding: 3 });
}

/** `inspect`'s --format: JSON (an indented array, docker's default), or a template per item. */
export function formatInspect(format: string | undefined, items: object[]): string {
  const f = format?.trim();
  if (!f || f === 'json') return `${JSON.stringify(items, null, 4)}\n`;
  return renderTemplate(f, items)
    .map((l) => `${l}\n`)
    .join('');
}

/**
 * A library object in `--format`'s key style: each key PascalCase (`id` as docker's `ID`), recursively;
 * the values of `labels` (and other maps named in `maps`) keep their keys, which are data.
 */
export function pascalKeys(value: unknown, maps: ReadonlySet<string> = new Set(['labels'])): unknown {
  if (Array.isArray(value)) return value.map((v) => pascalKeys(v, maps));
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = k === 'id' ? 'ID' : k.charAt(0).toUpperCase() + k.slice(1);
    out[key] = maps.has(k) ? v : pascalKeys(v, maps);
  }
  return out;
}

/** docker's `CreatedAt` text: Go's time.String in UTC, `2024-01-02 15:04:05 +0000 UTC`. */
export function goTime(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}
