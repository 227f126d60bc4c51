// What `hoist __complete WORDS... CURRENT` answers: the words a shell may put in place of CURRENT, worked
// out from the commander definitions themselves (commands, aliases, options, arguments), so a new command
// or flag completes without touching the shell scripts. The shells' scripts (scripts.ts) only call it.
// Cobra's protocol, as docker and nerdctl use it: one candidate a line, `value<TAB>description`, then a
// last line `:<directive>` telling the shell what else to do (complete file names, add no space).
import type { Argument, Command, Option } from 'commander';
import { argumentKind, type CompletionKind, optionKind } from './kinds.ts';

export interface Candidate {
  value: string;
  description?: string;
}

/** Bits of the directive line. */
export const Directive = {
  /** Complete file names (after the candidates, if any). */
  files: 1,
  /** Complete directory names. */
  dirs: 2,
  /** No space after the completed word (`--filter reference=` wants its value next). */
  noSpace: 4,
} as const;

export interface Completion {
  candidates: Candidate[];
  directive: number;
}

/** What the words already typed say about which store to ask: `--root`, `-n`, `--address`, ... */
export interface LineContext {
  root?: string;
  config?: string;
  namespace?: string;
  address?: string;
  snapshotter?: string;
}

export type StoreKind = 'image' | 'namespace' | 'snapshot' | 'lease';

/** Names from the store (empty when there is none, or it cannot be read). */
export type StoreLookup = (kind: StoreKind, line: LineContext, current: string) => Promise<string[]>;

const REMEMBERED = new Set<keyof LineContext>(['root', 'config', 'namespace', 'address', 'snapshotter']);

function visibleCommands(cmd: Command): Command[] {
  return cmd.createHelp().visibleCommands(cmd);
}

/** The command's own options, then its parents' (commander accepts a parent's option after a subcommand). */
function optionsInScope(cmd: Command): Option[] {
  const out: Option[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) out.push(...c.createHelp().visibleOptions(c));
  return out;
}

function findOption(cmd: Command, flag: string): Option | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const found = c.options.find((o) => o.long === flag || o.short === flag);
    if (found) return found;
  }
  return undefined;
}

/** A value follows the flag (`<value>`; an optional `[value]` is left alone: the next word may be anything). */
function takesValue(o: Option): boolean {
  return o.required;
}

function findSubcommand(cmd: Command, word: string): Command | undefined {
  return cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
}

/** `--flag=value` as flag and value; `-nvalue` for a short flag that takes one. */
function splitFlag(cmd: Command, word: string): { flag: string; inline?: string } {
  if (word.startsWith('--')) {
    const eq = word.indexOf('=');
    return eq < 0 ? { flag: word } : { flag: word.slice(0, eq), inline: word.slice(eq + 1) };
  }
  if (word.length > 2) {
    const short = findOption(cmd, word.slice(0, 2));
    if (short && takesValue(short)) return { flag: word.slice(0, 2), inline: word.slice(2) };
  }
  return { flag: word };
}

interface Parsed {
  cmd: Command;
  /** Positional arguments given to `cmd` so far. */
  positional: number;
  /** After `--`: every word is an argument. */
  dashDash: boolean;
  /** `hoist help ...`: the words name a command. */
  helping: boolean;
  /** The option whose value the current word is. */
  pendingOption?: Option;
  line: LineContext;
}

function parseWords(program: Command, done: string[]): Parsed {
  const p: Parsed = { cmd: program, positional: 0, dashDash: false, helping: false, line: {} };
  const remember = (o: Option | undefined, value: string | undefined) => {
    const key = o?.attributeName() as keyof LineContext | undefined;
    if (key && REMEMBERED.has(key) && value !== undefined) p.line[key] = value;
  };
  for (let i = 0; i < done.length; i++) {
    const w = done[i]!;
    if (!p.dashDash && w === '--') {
      p.dashDash = true;
    } else if (!p.dashDash && w.startsWith('-') && w !== '-') {
      const { flag, inline } = splitFlag(p.cmd, w);
      const o = findOption(p.cmd, flag);
      if (o && takesValue(o) && inline === undefined) {
        if (i + 1 === done.length) p.pendingOption = o;
        remember(o, done[++i]);
      } else remember(o, inline);
    } else {
      const sub = p.positional === 0 ? findSubcommand(p.cmd, w) : undefined;
      if (sub) p.cmd = sub;
      else if (p.positional === 0 && !p.helping && w === 'help' && p.cmd.commands.length > 0)
        p.helping = true;
      else p.positional++;
    }
  }
  return p;
}

function subcommandCandidates(cmd: Command, current: string): Candidate[] {
  const commands = visibleCommands(cmd);
  const byName = commands
    .filter((c) => c.name().startsWith(current))
    .map((c) => ({ value: c.name(), description: c.summary() || c.description() }));
  if (byName.length > 0) return byName;
  // Only an alias matches (`ns` for namespace): offer it as typed.
  return commands.flatMap((c) =>
    c
      .aliases()
      .filter((a) => a.startsWith(current))
      .map((a) => ({ value: a, description: c.summary() || c.description() })),
  );
}

function optionCandidates(cmd: Command, current: string): Candidate[] {
  const out: Candidate[] = [];
  const seen = new Set<string>();
  for (const o of optionsInScope(cmd)) {
    for (const flag of [o.long, current.startsWith('--') ? undefined : o.short]) {
      if (!flag || seen.has(flag) || !flag.startsWith(current)) continue;
      seen.add(flag);
      out.push({ value: flag, description: o.description });
    }
  }
  return out;
}

function argumentAt(cmd: Command, index: number): { arg: Argument; index: number } | undefined {
  const args = cmd.registeredArguments;
  const last = args.length - 1;
  if (index <= last) return { arg: args[index]!, index };
  if (last >= 0 && args[last]!.variadic) return { arg: args[last]!, index: last };
  return undefined;
}

async function kindCandidates(
  kind: CompletionKind,
  current: string,
  prefix: string,
  line: LineContext,
  lookup: StoreLookup,
): Promise<Completion> {
  const completion = (values: readonly string[], directive = 0): Completion => ({
    candidates: values.filter((v) => v.startsWith(current)).map((v) => ({ value: prefix + v })),
    directive,
  });
  switch (kind.type) {
    case 'values':
      return completion(kind.values, kind.noSpace ? Directive.noSpace : 0);
    case 'files':
      return { candidates: [], directive: Directive.files };
    case 'dirs':
      return { candidates: [], directive: Directive.dirs };
    case 'store':
      return completion(await lookup(kind.store, line, current));
    case 'none':
      return { candidates: [], directive: 0 };
  }
}

/**
 * The completion of `current`, the word under the cursor, after the words `done` (the program's name left
 * out). `lookup` answers for the names a store holds.
 */
export async function complete(
  program: Command,
  done: string[],
  current: string,
  lookup: StoreLookup,
): Promise<Completion> {
  const p = parseWords(program, done);
  if (p.pendingOption) return kindCandidates(optionKind(p.cmd, p.pendingOption), current, '', p.line, lookup);
  if (!p.dashDash && current.startsWith('--') && current.includes('=')) {
    const { flag, inline } = splitFlag(p.cmd, current);
    const o = findOption(p.cmd, flag);
    if (!o || !takesValue(o)) return { candidates: [], directive: 0 };
    return kindCandidates(optionKind(p.cmd, o), inline ?? '', `${flag}=`, p.line, lookup);
  }
  if (!p.dashDash && current.startsWith('-'))
    return { candidates: optionCandidates(p.cmd, current), directive: 0 };
  if (p.helping) return { candidates: subcommandCandidates(p.cmd, current), directive: 0 };
  if (p.positional === 0 && visibleCommands(p.cmd).length > 0)
    return { candidates: subcommandCandidates(p.cmd, current), directive: 0 };
  const at = argumentAt(p.cmd, p.positional);
  if (!at) return { candidates: [], directive: 0 };
  return kindCandidates(argumentKind(p.cmd, at.arg, at.index), current, '', p.line, lookup);
}

/** The protocol's text: candidates a line (`value<TAB>description`), then `:<directive>`. */
export function formatCompletion(c: Completion): string {
  const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
  const lines = c.candidates.map((x) => (x.description ? `${x.value}\t${oneLine(x.description)}` : x.value));
  return `${[...lines, `:${c.directive}`].join('\n')}\n`;
}
