// The hoist command line: docker/nerdctl-style commands over the library API. Global options pick the
// store (embedded by default), namespace and config; each command lives in its own file.
import { Command, CommanderError } from 'commander';
import { toHoistError } from '../core/errors.ts';
import { registerArchiveCommands } from './commands/archive.ts';
import { registerCheckCommand } from './commands/check.ts';
import { registerCommitCommand } from './commands/commit.ts';
import { registerConvertCommand } from './commands/convert.ts';
import { registerImageCommands } from './commands/images.ts';
import { registerLeaseCommands } from './commands/leases.ts';
import { registerLoginCommands } from './commands/login.ts';
import { registerNamespaceCommands } from './commands/namespaces.ts';
import { registerPullCommand } from './commands/pull.ts';
import { registerPushCommand } from './commands/push.ts';
import { registerServeCommand } from './commands/serve.ts';
import { registerSnapshotCommands } from './commands/snapshots.ts';
import { registerSystemCommands } from './commands/system.ts';
import { registerUnpackCommands } from './commands/unpack.ts';
import { closeSession } from './session.ts';
import { normalizeBooleanFlags } from './unpack-flags.ts';

export function buildProgram(): Command {
  const program = new Command('hoist')
    .description('A container image store and manager: one image, many names.')
    .version('0.1.0')
    .option('--root <dir>', 'store directory (default /var/lib/hoist as root, else $XDG_DATA_HOME/hoist)')
    .option(
      '--config <file>',
      'config file (default /etc/hoist/config.toml as root, else $XDG_CONFIG_HOME/hoist/config.toml)',
    )
    .option('-n, --namespace <ns>', 'namespace (env HOIST_NAMESPACE; default "default")')
    .option(
      '--address <socket>',
      'work through a containerd API socket (a real containerd or `hoist serve`) instead of the embedded store (env HOIST_ADDRESS)',
    )
    .option('--debug', 'print stack traces for errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
  registerPullCommand(program);
  registerPushCommand(program);
  const image = registerImageCommands(program);
  registerCheckCommand(image);
  registerConvertCommand(image);
  registerUnpackCommands(program, image);
  registerSnapshotCommands(program);
  registerCommitCommand(program);
  registerLoginCommands(program);
  registerLeaseCommands(program);
  registerSystemCommands(program);
  registerNamespaceCommands(program);
  registerArchiveCommands(program);
  registerServeCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(normalizeBooleanFlags(argv), { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const e = toHoistError(err);
    process.stderr.write(`hoist: ${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    if (program.opts().debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return e.code === 'HOIST_CANCELLED' ? 130 : 1;
  } finally {
    await closeSession();
  }
}
