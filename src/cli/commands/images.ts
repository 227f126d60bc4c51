// Image commands: images/image ls, tag, rmi, image inspect.
import type { Command } from 'commander';
import { shortId } from '../../core/digest.ts';
import type { ImageRow } from '../../images/list.ts';
import { FORMAT_HELP, formatInspect, formatListing, goTime } from '../output/format.ts';
import { renderTable } from '../output/tabwriter.ts';
import { humanSize, timeAgo } from '../output/units.ts';
import { session } from '../session.ts';
import { registerHistoryCommand } from './history.ts';
import { registerPruneCommand } from './prune.ts';

interface LsFlags {
  all?: boolean;
  quiet?: boolean;
  /** `--no-trunc` (commander stores a negated flag under its positive name). */
  trunc?: boolean;
  digests?: boolean;
  format?: string;
  filter?: string[];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** docker's image SIZE: three significant digits; N/A for an image never unpacked in this store. */
function unpackedSizeText(r: ImageRow): string {
  return r.unpackedSize === undefined ? 'N/A' : humanSize(r.unpackedSize, 3);
}

/**
 * A row as docker's `images --format '{{json .}}'` prints it (the same keys, Size the unpacked size as
 * text, N/A for the container counts hoist does not keep), plus hoist's Name, Platform, BlobSize (the
 * blobs' size, nerdctl's BLOB SIZE) and both sizes in bytes (SizeBytes null when never unpacked).
 */
export function imageRecord(r: ImageRow, trunc: boolean) {
  return {
    Containers: 'N/A',
    CreatedAt: goTime(r.createdAt),
    CreatedSince: timeAgo(r.createdAt),
    Digest: r.kind === 'digest' || r.kind === 'tag' ? r.digest : '<none>',
    ID: trunc ? shortId(r.id) : r.id,
    Repository: r.repository,
    SharedSize: 'N/A',
    Size: unpackedSizeText(r),
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: unpackedSizeText(r),
    Name: r.name,
    Platform: r.platform,
    BlobSize: humanSize(r.size, 3),
    SizeBytes: r.unpackedSize ?? null,
    BlobSizeBytes: r.size,
    Labels: r.labels,
  };
}

/** docker's column names for the image fields (`table {{.ID}}` prints IMAGE ID). */
const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
  BlobSize: 'BLOB SIZE',
};

function printRows(rows: ImageRow[], flags: LsFlags): void {
  const id = (d: string) => (flags.trunc === false ? d : shortId(d));
  if (flags.quiet) {
    const seen = new Set<string>();
    for (const r of rows) {
      const v = id(r.id);
      if (!flags.all && seen.has(v)) continue;
      seen.add(v);
      process.stdout.write(`${v}\n`);
    }
    return;
  }
  const table = () => {
    const header = [
      'REPOSITORY',
      'TAG',
      ...(flags.digests ? ['DIGEST'] : []),
      'IMAGE ID',
      'CREATED',
      'PLATFORM',
      'SIZE',
      'BLOB SIZE',
    ];
    const body = rows.map((r) => [
      r.repository,
      r.tag,
      ...(flags.digests ? [r.kind === 'digest' || r.kind === 'tag' ? r.digest : '<none>'] : []),
      id(r.id),
      timeAgo(r.createdAt),
      r.platform,
      unpackedSizeText(r),
      humanSize(r.size, 3),
    ]);
    return renderTable([header, ...body]);
  };
  process.stdout.write(
    formatListing(flags.format, {
      rows: rows.map((r) => imageRecord(r, flags.trunc !== false)),
      headers: IMAGE_HEADERS,
      table,
    }),
  );
}

function addLsOptions(cmd: Command): Command {
  return cmd
    .argument('[repository[:tag]]', 'only this repository (and tag); wildcards as in --filter reference=')
    .option('-a, --all', 'show every name of every image (the CRI alias names too)')
    .option('-q, --quiet', 'only image IDs')
    .option('--no-trunc', 'do not truncate IDs')
    .option('--digests', 'show digests')
    .option('--format <format>', FORMAT_HELP)
    .option(
      '-f, --filter <filter>',
      'reference=…, dangling=true|false, label=k[=v], before=…, since=…',
      collect,
    );
}

async function lsAction(this: Command) {
  const flags = this.opts() as LsFlags;
  // `images REPOSITORY[:TAG]`, as docker's: the reference filter on that repository (and tag).
  const [reference] = this.args;
  const filters = [...(flags.filter ?? []), ...(reference ? [`reference=${reference}`] : [])];
  const hoist = await session(this).hoist();
  printRows(await hoist.images({ all: flags.all ?? false, filters }), flags);
}

/** Registers images/image ls/tag/rmi/inspect/prune; returns the `image` group for other commands. */
export function registerImageCommands(program: Command): Command {
  addLsOptions(
    program.command('images').description('List images (one row per tag; --all for every name)'),
  ).action(lsAction);
  const image = program.command('image').description('Manage images');
  addLsOptions(image.command('ls').alias('list').description('List images')).action(lsAction);

  const tag = (cmd: Command) =>
    cmd
      .argument('<source>', 'image name or ID')
      .argument('<target>', 'new name')
      .action(async (src: string, dst: string, _o: unknown, command: Command) => {
        await (await session(command).hoist()).tag(src, dst);
      });
  tag(program.command('tag').description('Give an image another name'));
  tag(image.command('tag').description('Give an image another name'));

  const rmi = (cmd: Command) =>
    cmd
      .argument('<image...>', 'names, image IDs or unique ID prefixes')
      .option('-f, --force', 'remove every name even when the image is in several repositories')
      .option('--async', 'do not wait for garbage collection')
      .action(async (args: string[], flags: { force?: boolean; async?: boolean }, command: Command) => {
        const result = await (await session(command).hoist()).remove(args, flags);
        // docker's output: `Untagged:` per name removed (in k8s.io the CRI's ID alias too, a name
        // `images --all` lists), `Deleted:` once per image that no name refers to any more.
        for (const r of result.removed) for (const n of r.names) process.stdout.write(`Untagged: ${n}\n`);
        for (const d of result.deleted) process.stdout.write(`Deleted: ${d}\n`);
        if (result.gc && result.gc.removedBytes > 0)
          process.stdout.write(
            `Reclaimed ${humanSize(result.gc.removedBytes)} (${result.gc.removedContent} blobs)\n`,
          );
      });
  rmi(program.command('rmi').description('Remove images by name or ID'));
  rmi(image.command('rm').alias('remove').description('Remove images by name or ID'));

  const inspect = (cmd: Command) =>
    cmd
      .argument('<image...>', 'names or IDs')
      .option('-f, --format <format>', "'json' (default) or a Go TEMPLATE run per image, e.g. '{{.Id}}'")
      .action(async (args: string[], flags: { format?: string }, command: Command) => {
        const hoist = await session(command).hoist();
        const out = [];
        for (const a of args) out.push(await hoist.inspect(a));
        process.stdout.write(formatInspect(flags.format, out));
      });
  inspect(image.command('inspect').description('Show an image as JSON'));
  // docker's `inspect` reads any object; hoist's objects by name are images.
  inspect(program.command('inspect').description('Show an image as JSON (as `image inspect`)'));
  registerHistoryCommand(program);
  registerHistoryCommand(image);
  registerPruneCommand(image);
  return image;
}
