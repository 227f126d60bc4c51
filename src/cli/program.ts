// The hoist command line: docker/nerdctl-style commands over the library API. Global options pick the
// store (embedded by default), namespace and config; each command lives in its own file.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { humanMessage, toHoistError } from '../core/errors.ts';
import { cliLogFormat, logFormatOption, logLevelOption } from './log-flags.ts';
import { closeSession } from './session.ts';
import { normalizeBooleanFlags } from './unpack-flags.ts';

type Register = (program: Command) => Promise<void>;

const registerPull: Register = async (p) => (await import('./commands/pull.ts')).registerPullCommand(p);
const registerPush: Register = async (p) => (await import('./commands/push.ts')).registerPushCommand(p);
const registerLogin: Register = async (p) => (await import('./commands/login.ts')).registerLoginCommands(p);
const registerLease: Register = async (p) => (await import('./commands/leases.ts')).registerLeaseCommands(p);
const registerSystem: Register = async (p) =>
  (await import('./commands/system.ts')).registerSystemCommands(p);
const registerNamespace: Register = async (p) =>
  (await import('./commands/namespaces.ts')).registerNamespaceCommands(p);
const registerCopy: Register = async (p) => (await import('./commands/copy.ts')).registerCopyCommand(p);
const registerManifest: Register = async (p) =>
  (await import('./commands/copy.ts')).registerManifestCommands(p);
const registerVersion: Register = async (p) =>
  (await import('./commands/version.ts')).registerVersionCommands(p);
const registerServe: Register = async (p) => (await import('./commands/serve.ts')).registerServeCommand(p);
/** `completion` and the hidden `__complete`: they build the whole program themselves when they need it. */
const registerCompletion: Register = async (p) =>
  (await import('./commands/completion.ts')).registerCompletionCommands(p, buildProgram);
/**
 * `images`, `rmi`, `tag`: the image family's own module only. It also makes the `image` parent,
 * which then lacks the subcommands other modules add; that is harmless, since the word run is not `image`.
 */
const registerImageBasics: Register = async (p) => {
  (await import('./commands/images.ts')).registerImageCommands(p);
};
const registerArchive: Register = async (p) => {
  (await import('./commands/archive.ts')).registerArchiveCommands(p);
};

/**
 * Top-level commands whose module registers what they need: running one loads only its module. Loading every
 * command's implementation (archive, convert, snapshots, gc, ...) cost each pull ~290 modules and ~15 MiB,
 * and `hoist images` ~60 ms of start-up.
 */
const STANDALONE: Record<string, Register> = {
  pull: registerPull,
  push: registerPush,
  login: registerLogin,
  logout: registerLogin,
  lease: registerLease,
  namespace: registerNamespace,
  ns: registerNamespace,
  system: registerSystem,
  serve: registerServe,
  images: registerImageBasics,
  inspect: registerImageBasics,
  rmi: registerImageBasics,
  tag: registerImageBasics,
  history: registerImageBasics,
  version: registerVersion,
  info: registerVersion,
  save: registerArchive,
  load: registerArchive,
  copy: registerCopy,
  cp: registerCopy,
  manifest: registerManifest,
  completion: registerCompletion,
  __complete: registerCompletion,
};

/** Global options that take a value (the word after them is not the command). */
const VALUE_OPTIONS = new Set([
  '--root',
  '--config',
  '-n',
  '--namespace',
  '--address',
  '--log-level',
  '--log-format',
]);

/**
 * The version in hoist's package.json (one place; bin/hoist.js prints it for a bare --version), found by
 * walking up from this module: sources and the bundled package sit at different depths.
 */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'hoist' && pkg.version) return pkg.version;
    } catch {
      // no package.json here
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

/** The top-level command word of `argv`, undefined when there is none (help, version, an error). */
function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** The program with only what `argv` runs registered when that is one standalone command, else all. */
export async function buildProgramFor(argv: string[]): Promise<Command> {
  const word = commandWord(argv);
  const only = word === undefined ? undefined : STANDALONE[word];
  if (!only) return buildProgram();
  const program = newProgram();
  await only(program);
  return program;
}

function newProgram(): Command {
  return new Command('hoist')
    .description('A container image store and manager: one image, many names.')
    .version(packageVersion())
    .option(
      '--root <dir>',
      'store directory (env HOIST_ROOT; default /var/lib/hoist as root, else $XDG_DATA_HOME/hoist)',
    )
    .option(
      '--config <file>',
      'config file (env HOIST_CONFIG; default /etc/hoist/config.toml as root, else $XDG_CONFIG_HOME/hoist/config.toml)',
    )
    .option(
      '-n, --namespace <ns>',
      'namespace (env HOIST_NAMESPACE, then CONTAINERD_NAMESPACE; default "default")',
    )
    .option(
      '--address <socket>',
      'work through a containerd API socket (a real containerd or `hoist serve`) instead of the embedded store (env HOIST_ADDRESS, then CONTAINERD_ADDRESS)',
    )
    .option('--debug', 'print stack traces for errors, and log at debug level')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
}

/** Every command (help, and commands that share parents such as `image`). */
export async function buildProgram(): Promise<Command> {
  const [archive, check, commit, convert, images, snapshots, unpack] = await Promise.all([
    import('./commands/archive.ts'),
    import('./commands/check.ts'),
    import('./commands/commit.ts'),
    import('./commands/convert.ts'),
    import('./commands/images.ts'),
    import('./commands/snapshots.ts'),
    import('./commands/unpack.ts'),
  ]);
  const program = newProgram();
  await registerPull(program);
  await registerPush(program);
  const image = images.registerImageCommands(program);
  // docker's `image pull` and `image push`: the same commands under the image group.
  await registerPull(image);
  await registerPush(image);
  check.registerCheckCommand(image);
  convert.registerConvertCommand(image);
  unpack.registerUnpackCommands(program, image);
  snapshots.registerSnapshotCommands(program);
  commit.registerCommitCommand(program);
  await registerLogin(program);
  await registerLease(program);
  await registerSystem(program);
  await registerNamespace(program);
  await registerVersion(program);
  archive.registerArchiveCommands(program);
  await registerCopy(program);
  await registerManifest(program);
  await registerServe(program);
  await registerCompletion(program);
  return program;
}

/** Was `--log-format json` (or HOIST_LOG_FORMAT=json) given? A bad value is not json. */
function jsonErrors(program: Command): boolean {
  try {
    return cliLogFormat(program.opts()) === 'json';
  } catch {
    return false;
  }
}

export async function main(argv: string[]): Promise<number> {
  // The completion scripts' call: its words are a command line being typed, not options for commander
  // (a `--help` or `--root` among them is for completing).
  if (argv[0] === '__complete')
    return (await import('./commands/completion.ts')).runComplete(argv.slice(1), buildProgram);
  const args = normalizeBooleanFlags(argv);
  const program = await buildProgramFor(args);
  try {
    await program.parseAsync(args, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const e = toHoistError(err);
    const exit = e.code === 'HOIST_CANCELLED' ? 130 : 1;
    const stack = program.opts().debug && err instanceof Error ? err.stack : undefined;
    if (jsonErrors(program)) {
      // One JSON line a script can read: the stable code beside the message (docs/cli.md).
      const line = { time: new Date().toISOString(), level: 'error', msg: humanMessage(e), code: e.code };
      process.stderr.write(`${JSON.stringify({ ...line, hint: e.hint, exit, stack })}\n`);
      return exit;
    }
    process.stderr.write(`hoist: ${humanMessage(e)}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    if (stack) process.stderr.write(`${stack}\n`);
    return exit;
  } finally {
    await closeSession();
  }
}
