// What a command's arguments and option values are, for completion: the knowledge commander's definitions
// do not carry (that `rmi`'s argument is an image in the store, `--to` a directory, `--progress` one of four
// words). Keyed by command path and flag, so the command modules stay as they are; the completion test
// checks every path named here still exists.
import type { Argument, Command, Option } from 'commander';
import { LOG_FORMATS, LOG_LEVELS } from '../../core/log.ts';
import type { StoreKind } from './complete.ts';

/** The command's path of names from the program down (`image inspect`), the key of the kinds table. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export type CompletionKind =
  | { type: 'values'; values: readonly string[]; noSpace?: boolean }
  | { type: 'files' }
  | { type: 'dirs' }
  | { type: 'store'; store: StoreKind }
  | { type: 'none' };

const none: CompletionKind = { type: 'none' };
const files: CompletionKind = { type: 'files' };
const dirs: CompletionKind = { type: 'dirs' };
const image: CompletionKind = { type: 'store', store: 'image' };
const snapshot: CompletionKind = { type: 'store', store: 'snapshot' };
const values = (v: readonly string[], noSpace = false): CompletionKind => ({
  type: 'values',
  values: v,
  noSpace,
});

/** Per command path, the kind of each positional argument (a variadic last one repeats). */
export const ARGUMENT_KINDS: Record<string, CompletionKind[]> = {
  images: [image],
  'image ls': [image],
  rmi: [image],
  'image rm': [image],
  tag: [image, none],
  'image tag': [image, none],
  'image inspect': [image],
  inspect: [image],
  history: [image],
  'image history': [image],
  push: [image, none],
  'image push': [image, none],
  save: [image],
  'image save': [image],
  unpack: [image],
  'image unpack': [image],
  'image check': [image],
  'image convert': [image, none],
  'image mount': [image, dirs],
  'image unmount': [dirs],
  'snapshot usage': [snapshot],
  'snapshot info': [snapshot],
  'snapshot rm': [snapshot],
  'snapshot prepare': [none, snapshot],
  commit: [snapshot, none],
  'lease rm': [{ type: 'store', store: 'lease' }],
  'namespace rm': [{ type: 'store', store: 'namespace' }],
};

/** The platforms registries commonly serve (any `os/arch[/variant]` is accepted). */
const PLATFORMS = [
  'linux/amd64',
  'linux/arm64',
  'linux/arm/v7',
  'linux/arm/v6',
  'linux/386',
  'linux/ppc64le',
  'linux/s390x',
  'linux/riscv64',
];

/** `images --filter`'s keys: the value follows with no space. */
const IMAGE_FILTERS = ['reference=', 'dangling=true', 'dangling=false', 'label=', 'before=', 'since='];

/** Per long flag, the kind of its value wherever it appears. */
const OPTION_KINDS: Record<string, CompletionKind> = {
  '--root': dirs,
  '--config': files,
  '--namespace': { type: 'store', store: 'namespace' },
  '--address': files,
  '--snapshotter': values(['overlayfs', 'native']),
  '--progress': values(['auto', 'tty', 'plain', 'quiet']),
  '--platform': values(PLATFORMS),
  '--log-level': values(LOG_LEVELS),
  '--log-format': values(LOG_FORMATS),
  '--human': values(['true', 'false']),
  '--output': files,
  '--input': files,
  '--hosts-dir': dirs,
  '--to': dirs,
  '--mount': dirs,
  '--from': image,
};

export function optionKind(cmd: Command, o: Option): CompletionKind {
  if (o.argChoices) return values(o.argChoices);
  const flag = o.long ?? o.short ?? '';
  if (flag === '--format')
    // Listings take `table` too; inspect-style commands print JSON or a template.
    return values(
      o.description.includes("'table'") || o.description.startsWith('table') ? ['table', 'json'] : ['json'],
    );
  if (flag === '--filter')
    return commandPath(cmd).match(/^(images|image ls)$/) ? values(IMAGE_FILTERS, true) : none;
  return OPTION_KINDS[flag] ?? none;
}

export function argumentKind(cmd: Command, arg: Argument, index: number): CompletionKind {
  if (arg.argChoices) return values(arg.argChoices);
  return ARGUMENT_KINDS[commandPath(cmd)]?.[index] ?? none;
}
