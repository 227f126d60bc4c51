// `hoist save` (alias `image save`, `image export`) and `hoist load` (alias `image load`, `image import`):
// images out to one tar docker, containerd and skopeo all read, and in from any of theirs.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import type { Backend } from '../../api/backend.ts';
import { type LoadedImage, loadArchive } from '../../archive/load.ts';
import { saveImages } from '../../archive/save.ts';
import type { Context } from '../../core/context.ts';
import type { Descriptor } from '../../core/descriptor.ts';
import { isDigest } from '../../core/digest.ts';
import { invalidArgument } from '../../core/errors.ts';
import { formatPlatform, hostPlatform } from '../../core/platform.ts';
import { familiarString, tryParseReference } from '../../core/reference.ts';
import { ensureContent } from '../../images/ensure-content.ts';
import { snapshotterFor, unpackImage } from '../../images/unpack.ts';
import { onePlatform, walkImage } from '../../images/walk.ts';
import type { Resolver } from '../../remotes/types.ts';
import { humanSize } from '../output/units.ts';
import { type PlatformFlags, platformOptions, platformSelector } from '../platform-flags.ts';
import { createProgress, type ProgressReporter } from '../progress/progress.ts';
import { type RegistryFlags, registryOptions, registryResolver } from '../registry-flags.ts';
import { type Session, session } from '../session.ts';
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

/**
 * How save makes an incomplete image whole: fetch what is missing from the image's recorded distribution
 * sources (then from the names it has), with progress on stderr. The resolver is made on first use.
 */
function ensureFor(
  s: Session,
  backend: Backend,
  flags: SaveFlags,
  progress: ProgressReporter,
): (target: Descriptor, ctx: Context) => Promise<void> {
  let resolver: Resolver | undefined;
  return async (target, ctx) => {
    resolver ??= await registryResolver(s.config, flags);
    const named = (await backend.images.listByTarget(ctx, target.digest))
      .map((r) => tryParseReference(r.name))
      .find((r) => r !== undefined);
    await ensureContent(backend, resolver, ctx, target, platformSelector(flags), {
      progress: (key, state) => progress.update(key, state),
      concurrency: s.config.max_concurrent_downloads,
      ...(named ? { sourceRef: named } : {}),
    });
  };
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
  const backend = await s.backend();
  const ctx = s.ctx;
  const progress = createProgress({
    stream: process.stderr,
    mode: flags.quiet ? 'quiet' : process.stderr.isTTY ? 'tty' : 'plain',
  });
  const noFetch = flags.fetch === false;
  const opts = {
    platforms: platformSelector(flags),
    noFetch,
    ...(noFetch ? {} : { ensure: ensureFor(s, backend, flags, progress) }),
  };
  try {
    let summary = '';
    const run = async (out: Writable) => {
      const r = await saveImages(backend, ctx, names, out, opts);
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

/** Unpack a loaded image for this host, as pull does; an image without a manifest for it is skipped. */
function unpackHook(backend: Backend, ctx: Context, snapshotter: string, discardLayers: boolean) {
  snapshotterFor(backend, snapshotter); // fail before loading when the snapshotter does not exist
  const host = hostPlatform();
  const platforms = onePlatform(host);
  return async (image: LoadedImage): Promise<void> => {
    const walk = await walkImage(backend.content, ctx, image.target, platforms);
    if (walk.manifests.length === 0) {
      warn(`not unpacking ${image.target.digest}: it has no manifest for ${formatPlatform(host)}`);
      return;
    }
    await unpackImage(backend, ctx, image.target, { snapshotter, platforms, discardLayers, onWarning: warn });
  };
}

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
  const choice = unpackChoice(flags, s.config);
  const backend = await s.backend();
  const input: Readable = flags.input
    ? createReadStream(flags.input, { highWaterMark: 1 << 20 })
    : process.stdin;
  const ctx = s.ctx;
  const r = await loadArchive(backend, ctx, input, {
    ...(flags.baseName ? { baseName: flags.baseName } : {}),
    ...(choice.unpack ? { unpack: unpackHook(backend, ctx, choice.snapshotter, choice.discardLayers) } : {}),
  });
  // The discarded layers lose their last reference only now; collect them before returning, as pull does.
  if (choice.unpack && choice.discardLayers) await backend.collectGarbage();
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
