// The unpack flags shared by pull, load and unpack: whether to unpack, into which snapshotter, and whether
// to drop the compressed layers afterwards. Defaults come from the config (`snapshotter`,
// `discard_unpacked_layers`), so the three commands always agree.
import type { Command } from 'commander';
import type { HoistConfig } from '../config/config.ts';
import { invalidArgument } from '../core/errors.ts';

export interface UnpackFlags {
  unpack?: boolean | string;
  snapshotter?: string;
  discardUnpackedLayers?: boolean | string;
}

export interface UnpackChoice {
  unpack: boolean;
  snapshotter: string;
  discardLayers: boolean;
}

function parseBool(flag: string, value: boolean | string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalidArgument(`invalid ${flag} ${JSON.stringify(value)}: use true or false`);
}

/** `withToggle`: the command may skip unpacking (`--unpack=false`); `hoist unpack` always unpacks. */
export function unpackOptions(cmd: Command, withToggle = true): Command {
  if (withToggle)
    cmd
      .option('--unpack [bool]', 'unpack into the snapshotter (default true; --unpack=false to skip)')
      .option('--no-unpack', 'do not unpack');
  return cmd
    .option('--snapshotter <name>', 'overlayfs or native (default: config `snapshotter`)')
    .option(
      '--discard-unpacked-layers [bool]',
      'drop the compressed layers once unpacked (default: config `discard_unpacked_layers`); save and push fetch them again',
    );
}

export function unpackChoice(flags: UnpackFlags, config: HoistConfig): UnpackChoice {
  return {
    unpack: parseBool('--unpack', flags.unpack, true),
    snapshotter: flags.snapshotter ?? config.snapshotter,
    discardLayers: parseBool(
      '--discard-unpacked-layers',
      flags.discardUnpackedLayers,
      config.discard_unpacked_layers,
    ),
  };
}
