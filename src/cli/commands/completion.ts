// `hoist completion bash|zsh|fish` prints the shell's completion script; the hidden `hoist __complete`
// answers it (cobra's design, as docker and nerdctl complete). Completion needs every command, so it
// builds the whole program, whatever the start-up table registered to run it.
import { Argument, type Command } from 'commander';
import type { Completion } from '../completion/complete.ts';
import { completionScript, SHELLS, type Shell } from '../completion/scripts.ts';

export const COMPLETE_COMMAND = '__complete';

/** A store that does not answer (a dead --address, a locked database) must not hang the shell. */
const LOOKUP_TIMEOUT_MS = 3000;

const INSTALL_HELP = `
Installing:
  bash  hoist completion bash > /etc/bash_completion.d/hoist
        (or, for one user, ~/.local/share/bash-completion/completions/hoist;
        for this shell only: source <(hoist completion bash))
  zsh   hoist completion zsh > "\${fpath[1]}/_hoist"   (any directory in $fpath; then start a new shell)
        (for this shell only, after compinit: source <(hoist completion zsh))
  fish  hoist completion fish > ~/.config/fish/completions/hoist.fish
        (for this shell only: hoist completion fish | source)

Completes commands, options and their values, and names in the store: images for the commands that take
one, namespaces for -n, snapshot keys, lease IDs, in the store and namespace the words typed pick.`;

/**
 * Answer `hoist __complete WORDS... CURRENT` on stdout. Never fails and never writes to stderr: whatever
 * goes wrong, the shell gets no candidates rather than a stack trace in the terminal.
 */
export async function runComplete(words: string[], buildProgram: () => Promise<Command>): Promise<number> {
  // Loaded here, not with the command's registration: `hoist --help` builds every command.
  const [{ complete, formatCompletion }, { lookupInStore }] = await Promise.all([
    import('../completion/complete.ts'),
    import('../completion/store-lookup.ts'),
  ]);
  const none: Completion = { candidates: [], directive: 0 };
  const timer = setTimeout(() => {
    process.stdout.write(formatCompletion(none), () => process.exit(0));
  }, LOOKUP_TIMEOUT_MS);
  let result = none;
  try {
    const program = await buildProgram();
    result = await complete(program, words.slice(0, -1), words.at(-1) ?? '', lookupInStore);
  } catch {
    // quiet by design: no candidates
  } finally {
    clearTimeout(timer);
  }
  process.stdout.write(formatCompletion(result));
  return 0;
}

export function registerCompletionCommands(program: Command, buildProgram: () => Promise<Command>): void {
  program
    .command('completion')
    .description('Print the completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .addHelpText('after', INSTALL_HELP)
    .action((shell: Shell) => {
      process.stdout.write(completionScript(shell));
    });
  // Reached through commander only when global options come first (`hoist --root x __complete ...`);
  // main() answers `hoist __complete ...` before commander parses, which would take `--help` or a global
  // option among the words as its own.
  program
    .command(COMPLETE_COMMAND, { hidden: true })
    .description('Complete a command line (used by the completion scripts)')
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (words: string[]) => {
      await runComplete(words, buildProgram);
    });
}
