// `hoist history` / `hoist image history`: an image's build steps, in docker's columns (IMAGE, CREATED,
// CREATED BY, SIZE, COMMENT) and --format fields (ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment).
import type { Command } from 'commander';
import { shortId } from '../../core/digest.ts';
import { invalidArgument } from '../../core/errors.ts';
import type { HistoryEntry } from '../../images/history.ts';
import { FORMAT_HELP, formatListing } from '../output/format.ts';
import { humanSize, timeAgo } from '../output/units.ts';
import { session } from '../session.ts';

interface HistoryFlags {
  quiet?: boolean;
  /** `--no-trunc` (commander stores a negated flag under its positive name). */
  trunc?: boolean;
  format?: string;
  human?: boolean;
}

/** docker's default for `history`, printed through its table writer. */
const DEFAULT_TABLE = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';

const HEADERS: Record<string, string> = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
};

/** docker's Ellipsis: at most `max` characters, the last one `…` when cut. */
function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

function record(e: HistoryEntry, flags: HistoryFlags) {
  const trunc = flags.trunc !== false;
  const createdBy = e.createdBy.replaceAll('\t', ' ');
  const unpacked = e.layer ? e.layer.unpackedSize : 0;
  const since = e.created
    ? flags.human === false
      ? e.created.toISOString().replace(/\.\d{3}Z$/, 'Z')
      : timeAgo(e.created)
    : 'N/A';
  return {
    Comment: e.comment,
    CreatedAt: e.created ? e.created.toISOString().replace(/\.\d{3}Z$/, 'Z') : '',
    CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
    CreatedSince: since,
    ID: e.id ? (trunc ? shortId(e.id) : e.id) : '<missing>',
    // docker's SIZE is the layer's unpacked size: N/A (SizeBytes null) when the image is not unpacked
    // here, as in `images`; 0B for a step that made no layer.
    Size: unpacked === undefined ? 'N/A' : humanSize(unpacked, 3),
    // hoist's additions: the layer itself.
    SizeBytes: unpacked ?? null,
    BlobSize: humanSize(e.layer?.size ?? 0, 3),
    BlobSizeBytes: e.layer?.size ?? 0,
    Layer: e.layer?.digest ?? '',
    EmptyLayer: e.emptyLayer,
  };
}

export function registerHistoryCommand(parent: Command, name = 'history'): void {
  parent
    .command(name)
    .description("Show an image's history (its config's build steps and their layers, newest first)")
    .argument('<image>', 'name or ID')
    .option('-q, --quiet', 'only image IDs')
    .option('--no-trunc', 'do not truncate output')
    // Always with a value (`--human=false`, as docker's): an optional one would take the image name.
    .option('--human <bool>', 'dates in human-readable form: true (default) or false (RFC 3339)', (v) => {
      if (v !== 'true' && v !== 'false')
        throw invalidArgument(`invalid --human ${JSON.stringify(v)}: use true or false`);
      return v === 'true';
    })
    .option('--format <format>', FORMAT_HELP)
    .action(async (name: string, flags: HistoryFlags, command: Command) => {
      const entries = await (await session(command).hoist()).history(name);
      const rows = entries.map((e) => record(e, flags));
      const format = flags.quiet ? '{{.ID}}' : flags.format?.trim() || 'table';
      const listing = { rows, headers: HEADERS, table: () => formatListing(DEFAULT_TABLE, listing) };
      process.stdout.write(formatListing(format, listing));
    });
}
