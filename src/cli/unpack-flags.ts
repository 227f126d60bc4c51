// The unpack flags shared by pull, load and unpack: whether to unpack, into which snapshotter, and whether
// to drop the compressed layers afterwards. Left out, the library takes the config's `snapshotter`,
// `discard_unpacked_layers` and `max_concurrent_unpacks`, so the three commands always agree.
import type { Command } from 'commander';
import { invalidArgument } from '../core/errors.ts';
import type { UnpackChoice } from '../hoist/options.ts';
import { wholeNumberFlag } from './registry-flags.ts';

export interface UnpackFlags {
  unpack?: boolean;
  maxConcurrentUnpacks?: string;
  snapshotter?: string;
  discardUnpackedLayers?: boolean;
}

/**
 * `--unpack=false` is the documented spelling (nerdctl's); commander would read an optional value as
 * eating the next argument (`--unpack IMAGE`), so the flags are plain booleans and `=true|false` is
 * rewritten before parsing.
 */
export function normalizeBooleanFlags(argv: string[]): string[] {
  return argv.map((a) => {
    const m = /^--(unpack|discard-unpacked-layers)=(.*)$/.exec(a);
    if (!m) return a;
    const value = m[2]!.toLowerCase();
    if (value === 'true' || value === '1') return `--${m[1]}`;
    if (value === 'false' || value === '0') return `--no-${m[1]}`;
    throw invalidArgument(`invalid --${m[1]}=${JSON.stringify(m[2])}: use true or false`);
  });
}

/** `withToggle`: the command may skip unpacking (`--unpack=false`); `hoist unpack` always unpacks. */
export function unpackOptions(cmd: Command, withToggle = true): Command {
  if (withToggle)
    cmd
      .option('--unpack', 'unpack into the snapshotter (the default)')
      .option('--no-unpack', 'do not unpack (also --unpack=false)');
  return cmd
    .option('--snapshotter <name>', 'overlayfs or native (default: config `snapshotter`)')
    .option(
      '--discard-unpacked-layers',
      'drop the compressed layers once unpacked (default: config `discard_unpacked_layers`); save and push fetch them again',
    )
    .option('--no-discard-unpacked-layers', 'keep the compressed layers whatever the config says')
    .option(
      '--max-concurrent-unpacks <n>',
      'layers applied at once (default: config `max_concurrent_unpacks`, the number of cores up to 4)',
    );
}

export function unpackChoice(flags: UnpackFlags): UnpackChoice {
  const unpacks = wholeNumberFlag('--max-concurrent-unpacks', flags.maxConcurrentUnpacks);
  return {
    ...(flags.snapshotter ? { snapshotter: flags.snapshotter } : {}),
    ...(flags.discardUnpackedLayers !== undefined
      ? { discardUnpackedLayers: flags.discardUnpackedLayers }
      : {}),
    ...(unpacks !== undefined ? { maxConcurrentUnpacks: unpacks } : {}),
  };
}
