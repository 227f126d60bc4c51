// `hoist image check`: is each image whole, and is it unpacked (like `ctr images check`, plus the
// missing blobs and where they could be fetched from).
import type { Command } from 'commander';
import { shortId } from '../../core/digest.ts';
import type { CheckRow } from '../../images/check.ts';
import { FORMAT_HELP, formatListing } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { humanSize } from '../output/units.ts';
import { type PlatformFlags, platformChoice, platformOptions } from '../platform-flags.ts';
import { session } from '../session.ts';

interface CheckFlags extends PlatformFlags {
  verbose?: boolean;
  strict?: boolean;
  format?: string;
  /** `--no-trunc` (commander stores a negated flag under its positive name). */
  trunc?: boolean;
}

function status(r: CheckRow): string {
  if (r.unavailable) return 'unavailable';
  return r.complete ? 'complete' : `incomplete (${r.present}/${r.required})`;
}

/** A row as `--format` sees it, in docker's key style (whole digests, as docker's Digest). */
function checkRecord(r: CheckRow) {
  return {
    Name: r.name,
    MediaType: r.mediaType,
    Digest: r.digest,
    Status: status(r),
    Complete: r.complete,
    Unavailable: r.unavailable,
    Present: r.present,
    Required: r.required,
    Size: `${humanSize(r.presentBytes)}/${humanSize(r.requiredBytes)}`,
    PresentBytes: r.presentBytes,
    RequiredBytes: r.requiredBytes,
    Unpacked: r.unpacked,
    Missing: r.missing.map((m) => ({ Digest: m.digest, MediaType: m.mediaType, Size: m.size })),
    Sources: r.sources,
  };
}

function print(rows: CheckRow[], flags: CheckFlags): void {
  const format = flags.format?.trim();
  if (format && format !== 'table') {
    const records = rows.map(checkRecord);
    process.stdout.write(
      formatListing(format, { rows: records, headers: { Name: 'REF', MediaType: 'TYPE' }, table: () => '' }),
    );
    return;
  }
  const sns = [...new Set(rows.flatMap((r) => Object.keys(r.unpacked)))].sort();
  const header = ['REF', 'TYPE', 'DIGEST', 'STATUS', 'SIZE', 'UNPACKED'];
  const body = rows.map((r) => [
    r.name,
    r.mediaType,
    flags.trunc === false ? r.digest : `sha256:${shortId(r.digest)}`,
    status(r),
    `${humanSize(r.presentBytes)}/${humanSize(r.requiredBytes)}`,
    sns.map((sn) => `${sn}=${r.unpacked[sn] ? 'true' : 'false'}`).join(',') || '-',
  ]);
  process.stdout.write(renderTable([header, ...body]));
  if (!flags.verbose) return;
  for (const r of rows) {
    if (r.missing.length === 0) continue;
    process.stdout.write(`\n${r.name}: ${r.missing.length} missing\n`);
    for (const m of r.missing) process.stdout.write(`  ${m.digest}  ${m.mediaType}  ${humanSize(m.size)}\n`);
    process.stdout.write(
      r.sources.length > 0
        ? `  can be fetched from: ${r.sources.join(', ')}\n`
        : '  no distribution source recorded: the blobs cannot be fetched again\n',
    );
  }
}

export function registerCheckCommand(image: Command): void {
  platformOptions(
    image
      .command('check')
      .description('Check that images are complete and unpacked (all images when none is named)')
      .argument('[image...]', 'names or IDs')
      .option('-v, --verbose', 'list every missing blob and where it can be fetched from')
      .option('--strict', 'exit non-zero when an image is incomplete')
      .option('--no-trunc', 'full digests')
      .option('--format <format>', FORMAT_HELP),
  ).action(async (names: string[], flags: CheckFlags, command: Command) => {
    const hoist = await session(command).hoist();
    const rows = await hoist.checkImages(names, platformChoice(flags));
    print(rows, flags);
    if (flags.strict && rows.some((r) => !r.complete)) process.exitCode = 1;
  });
}
