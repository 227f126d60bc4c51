// Man pages from the commander definitions: hoist(1) and one page per command (hoist-pull(1),
// hoist-image-inspect(1), ...), with the synopsis, description, arguments, options with their defaults,
// the global options, subcommands, environment and cross references. Generated at build time
// (scripts/gen-man.ts), so a page says what `--help` says.
import type { Argument, Command, Option } from 'commander';
import { escapeText, paragraphs, preformatted, quotedArgument, textLine } from './roff.ts';

export interface ManPage {
  /** `hoist-image-inspect`; the file is `<name>.1`. */
  name: string;
  roff: string;
}

export interface ManPageInfo {
  version: string;
  /** The date in the page footer, YYYY-MM-DD. */
  date: string;
}

/** The variables hoist reads, on every page: a command's behaviour depends on them as much as on flags. */
const ENVIRONMENT: [string, string][] = [
  ['HOIST_ROOT', 'The store directory, as --root.'],
  ['HOIST_CONFIG', 'The config file, as --config.'],
  ['HOIST_NAMESPACE', 'The namespace, as -n.'],
  ['CONTAINERD_NAMESPACE', 'The namespace when HOIST_NAMESPACE is not set (as ctr and nerdctl read it).'],
  ['HOIST_ADDRESS', 'A containerd API socket to work through, as --address.'],
  ['CONTAINERD_ADDRESS', 'The socket when HOIST_ADDRESS is not set (as ctr and nerdctl read it).'],
  [
    'DOCKER_CONFIG',
    "The directory of Docker's config.json, where login keeps credentials (default ~/.docker).",
  ],
  ['HTTPS_PROXY, HTTP_PROXY, NO_PROXY', 'Proxies for registries, as docker and containerd read them.'],
  [
    'XDG_DATA_HOME, XDG_CONFIG_HOME',
    'Where the default store and config file are when not running as root (~/.local/share/hoist, ~/.config/hoist/config.toml).',
  ],
];

/** Commands with a page of their own: the visible ones, not commander's implicit `help`. */
function subcommands(cmd: Command): Command[] {
  return cmd
    .createHelp()
    .visibleCommands(cmd)
    .filter((c) => cmd.commands.includes(c));
}

function pageName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join('-');
}

function bold(text: string): string {
  return `\\fB${escapeText(text)}\\fR`;
}

function italic(text: string): string {
  return `\\fI${escapeText(text)}\\fR`;
}

function argumentSynopsis(a: Argument): string {
  const name = italic(a.name()) + (a.variadic ? '...' : '');
  return a.required ? name : `[${name}]`;
}

/** `-f, --format <format>` as roff: the flags bold, the value's name italic. */
function optionTerm(o: Option): string {
  const flags = [o.short, o.long].filter((f): f is string => Boolean(f)).map(bold);
  // `<os/arch[/variant]>`: the value's name may hold brackets itself.
  const value = o.required ? /<(.+)>/.exec(o.flags) : /\[(.+)\]/.exec(o.flags);
  const valueText = value ? (o.required ? ` ${italic(value[1]!)}` : ` [${italic(value[1]!)}]`) : '';
  return flags.join(', ') + valueText;
}

function optionDefault(o: Option): string | undefined {
  if (o.defaultValueDescription) return o.defaultValueDescription;
  if (o.negate || o.defaultValue === undefined || typeof o.defaultValue === 'boolean') return undefined;
  return Array.isArray(o.defaultValue) ? o.defaultValue.join(' ') : String(o.defaultValue);
}

function optionEntries(options: readonly Option[]): string[] {
  const out: string[] = [];
  for (const o of options) {
    out.push('.TP', optionTerm(o));
    const dflt = optionDefault(o);
    out.push(textLine(`${o.description}${dflt === undefined ? '' : ` (default: ${dflt})`}`));
  }
  return out;
}

/** What `addHelpText` adds to the command's --help (e.g. how to install completion), or ''. */
function helpExtras(cmd: Command): string {
  let written = '';
  const saved = cmd.configureOutput();
  cmd.configureOutput({ ...saved, writeOut: (s) => (written += s) });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(saved);
  }
  return written.replace(cmd.helpInformation(), '').trim();
}

function fullName(cmd: Command): string {
  return pageName(cmd).replaceAll('-', ' ');
}

function seeAlso(cmd: Command): string[] {
  const refs = new Set<string>();
  if (cmd.parent) refs.add(pageName(cmd.parent));
  for (const c of subcommands(cmd)) refs.add(pageName(c));
  // Siblings: the other commands of the same group (`image ls` and `image rm`).
  if (cmd.parent?.parent) for (const c of subcommands(cmd.parent)) if (c !== cmd) refs.add(pageName(c));
  const list = [...refs];
  return list.map((r, i) => `.BR ${escapeText(r)} (1)${i < list.length - 1 ? ',' : ''}`);
}

function page(cmd: Command, program: Command, info: ManPageInfo): ManPage {
  const name = pageName(cmd);
  const subs = subcommands(cmd);
  const lines: string[] = [
    `.TH ${quotedArgument(name.toUpperCase())} 1 ${quotedArgument(info.date)} ${quotedArgument(`hoist ${info.version}`)} "User Commands"`,
    '.SH NAME',
    `${escapeText(name)} \\- ${escapeText(cmd.summary() || cmd.description())}`,
    '.SH SYNOPSIS',
  ];
  const own = cmd === program ? '' : ' [\\fIoptions\\fR]';
  const head = `${bold(fullName(cmd))}${cmd === program ? ' [\\fIoptions\\fR]' : ''}`;
  if (subs.length > 0) lines.push(`${head}${own} \\fIcommand\\fR [\\fIargs\\fR...]`);
  else lines.push([`${head}${own}`, ...cmd.registeredArguments.map(argumentSynopsis)].join(' '));

  lines.push('.SH DESCRIPTION', ...paragraphs(cmd.description()));
  if (cmd.aliases().length > 0) {
    const parent = cmd.parent ? `${fullName(cmd.parent)} ` : '';
    lines.push(
      '.PP',
      textLine(
        `Also: ${cmd
          .aliases()
          .map((a) => `${parent}${a}`)
          .join(', ')}.`,
      ),
    );
  }
  const extras = helpExtras(cmd);
  if (extras) lines.push('.PP', ...preformatted(extras));

  const described = cmd.registeredArguments.filter((a) => a.description);
  if (described.length > 0) {
    lines.push('.SH ARGUMENTS');
    for (const a of described) lines.push('.TP', italic(a.name()), textLine(a.description));
  }
  if (subs.length > 0) {
    lines.push('.SH COMMANDS');
    for (const c of subs) {
      lines.push(
        '.TP',
        `${bold(c.name())}${c.aliases().length ? ` (${c.aliases().map(escapeText).join(', ')})` : ''}`,
      );
      // `\\%`: the page name is not hyphenated at a line end.
      lines.push(
        textLine(c.summary() || c.description()),
        '.br',
        `See \\fB\\%${escapeText(pageName(c))}\\fR(1).`,
      );
    }
  }
  const options = cmd.createHelp().visibleOptions(cmd);
  if (options.length > 0) lines.push('.SH OPTIONS', ...optionEntries(options));
  // Parents' options are accepted after the command too (`hoist pull -n k8s.io ...`).
  const inherited: Option[] = [];
  for (let c = cmd.parent; c; c = c.parent) inherited.push(...c.options.filter((o) => !o.hidden));
  const global = inherited.filter((o) => o.long !== '--version');
  if (global.length > 0) lines.push('.SH GLOBAL OPTIONS', ...optionEntries(global));

  lines.push('.SH ENVIRONMENT');
  for (const [variable, meaning] of ENVIRONMENT) lines.push('.TP', bold(variable), textLine(meaning));
  lines.push(
    '.SH EXIT STATUS',
    textLine('0 on success, 1 when the command failed, 2 for a usage error, 130 when interrupted.'),
  );
  lines.push('.SH SEE ALSO', ...seeAlso(cmd));
  return { name, roff: `${lines.join('\n')}\n` };
}

/** hoist(1) and a page per visible command, parents before their subcommands. */
export function manPages(program: Command, info: ManPageInfo): ManPage[] {
  const out: ManPage[] = [];
  const walk = (cmd: Command) => {
    out.push(page(cmd, program, info));
    for (const c of subcommands(cmd)) walk(c);
  };
  walk(program);
  return out;
}
