// `hoist save` (alias `image save`, `image export`) and `hoist load` (alias `image load`, `image import`):
// images out to one tar docker, containerd and skopeo all read, and in from any of theirs.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import type { LoadedImage } from '../../archive/load.ts';
import { isDigest } from '../../core/digest.ts';
import { invalidArgument } from '../../core/errors.ts';
import { familiarString, tryParseReference } from '../../core/reference.ts';
import { humanSize } from '../output/units.ts';
import { type PlatformFlags, platformChoice, platformOptions } from '../platform-flags.ts';
import { progressFromFlags } from '../progress/progress.ts';
import { type RegistryFlags, registryChoice, registryOptions } from '../registry-flags.ts';
import { session } from '../session.ts';
import { type UnpackFlags, unpackChoice, unpackOptions } from '../unpack-flags.ts';

interface SaveFlags extends PlatformFlags, RegistryFlags {
  output?: string;
  fetch?: boolean;
  quiet?: boolean;
}

interface LoadFlags extends UnpackFlags {
  input?: string;
  baseName?: string;
  quiet?: boolean;
}

/** Write through a temp file next to `file`, renamed into place only when the whole archive is written. */
async function withOutputFile(file: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const path = resolvePath(file);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  try {
    await write(out);
    if (!out.closed) await new Promise<void>((r, j) => out.once('close', r).once('error', j));
    await rename(tmp, path);
  } catch (err) {
    // The stream opens its file asynchronously: wait until it has closed, or an early failure would
    // remove the temp file before the open creates it, and leave it behind.
    await new Promise<void>((resolve) => {
      if (out.closed) resolve();
      else out.once('close', () => resolve());
      out.destroy();
    });
    await rm(tmp, { force: true });
    throw err;
  }
}

async function saveAction(names: string[], flags: SaveFlags, command: Command): Promise<void> {
  if (!flags.output && process.stdout.isTTY)
    throw invalidArgument(
      'refusing to write an image archive to a terminal',
      'use -o FILE, or redirect stdout',
    );
  const s = session(command);
  const options = { ...platformChoice(flags), ...registryChoice(flags), fetch: flags.fetch !== false };
  const progress = progressFromFlags({ quiet: flags.quiet === true });
  const hoist = await s.hoist();
  try {
    let summary = '';
    const run = async (out: Writable) => {
      const r = await hoist.save(names, out, {
        ...options,
        onProgress: (key, state) => progress.update(key, state),
        ...(s.signal ? { signal: s.signal } : {}),
      });
      progress.done();
      summary = `saved ${r.images.length} image${r.images.length === 1 ? '' : 's'} (${r.blobs} blobs, ${humanSize(r.bytes)})`;
    };
    if (flags.output) await withOutputFile(flags.output, run);
    else await run(process.stdout);
    if (!flags.quiet) process.stderr.write(`${summary}${flags.output ? ` to ${flags.output}` : ''}\n`);
  } catch (err) {
    progress.done();
    throw err;
  }
}

const warn = (msg: string) => process.stderr.write(`warning: ${msg}\n`);

function describe(image: LoadedImage): string[] {
  const tags = image.names
    .map((n) => ({ n, ref: isDigest(n) ? undefined : tryParseReference(n) }))
    .filter((x) => x.ref?.tag !== undefined)
    .map((x) => `Loaded image: ${familiarString(x.ref!)}`);
  if (tags.length > 0) return tags;
  return [`Loaded image ID: ${image.target.digest}`];
}

async function loadAction(flags: LoadFlags, command: Command): Promise<void> {
  if (!flags.input && process.stdin.isTTY)
    throw invalidArgument('no archive to load', 'give one with -i FILE, or pipe it to stdin');
  const s = session(command);
  const choice = unpackChoice(flags);
  const hoist = await s.hoist();
  const input: Readable = flags.input
    ? createReadStream(flags.input, { highWaterMark: 1 << 20 })
    : process.stdin;
  const r = await hoist.load(input, {
    ...choice,
    unpack: flags.unpack ?? true,
    ...(flags.baseName ? { baseName: flags.baseName } : {}),
    onWarning: warn,
    ...(s.signal ? { signal: s.signal } : {}),
  });
  if (!flags.quiet) for (const image of r.images) process.stdout.write(`${describe(image).join('\n')}\n`);
}

function saveCommand(cmd: Command): void {
  registryOptions(
    platformOptions(
      cmd
        .argument('<image...>', 'names or IDs (an ID saves every name of the image)')
        .option('-o, --output <file>', 'write to this file (written whole or not at all) instead of stdout')
        .option('--no-fetch', 'fail on missing blobs instead of fetching them from their registry')
        .option('-q, --quiet', 'no summary on stderr'),
    ),
  ).action(saveAction);
}

function loadCommand(cmd: Command): void {
  cmd
    .option('-i, --input <file>', 'read from this file instead of stdin (plain, gzip or zstd)')
    .option('--base-name <repo>', 'name images whose archive gives only a tag `<repo>:<tag>`')
    .option('-q, --quiet', 'print nothing');
  unpackOptions(cmd).action(loadAction);
}

export function registerArchiveCommands(program: Command): void {
  saveCommand(
    program.command('save').description('Save images to a tar archive (OCI layout + docker manifest.json)'),
  );
  loadCommand(
    program.command('load').description('Load images from a tar archive (docker, OCI, skopeo, ctr)'),
  );
  const image = program.commands.find((c) => c.name() === 'image');
  if (!image) return;
  saveCommand(image.command('save').alias('export').description('Save images to a tar archive'));
  loadCommand(image.command('load').alias('import').description('Load images from a tar archive'));
}
