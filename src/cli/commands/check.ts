// `hoist image check`: is each image whole, and is it unpacked (like `ctr images check`, plus the
// missing blobs and where they could be fetched from).
import type { Command } from 'commander';
import { shortId } from '../../core/digest.ts';
import type { CheckRow } from '../../images/check.ts';
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

function print(rows: CheckRow[], flags: CheckFlags): void {
  if (flags.format === 'json') {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
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
      .option('--format <format>', 'table or json', 'table'),
  ).action(async (names: string[], flags: CheckFlags, command: Command) => {
    const hoist = await session(command).hoist();
    const rows = await hoist.checkImages(names, platformChoice(flags));
    print(rows, flags);
    if (flags.strict && rows.some((r) => !r.complete)) process.exitCode = 1;
  });
}
