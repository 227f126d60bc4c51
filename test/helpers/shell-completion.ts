// Drive hoist's completion scripts in real shells, as a user's Tab would: a `hoist` on PATH (a wrapper
// around the sources), the script from `hoist completion <shell>` loaded, the shell's completion entry
// point called with the line typed so far, and the candidates it produced read back.
import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAIN, NODE } from './run-hoist.ts';

export interface CompletionShells {
  /** PATH with the `hoist` wrapper first. */
  env: NodeJS.ProcessEnv;
  bash(line: string, cwd?: string): Promise<string[]>;
  zsh(line: string): Promise<string[]>;
  fish(line: string): Promise<string[]>;
  /**
   * Type `keys` (Tabs included) at an interactive zsh with compinit in a pseudo-terminal (zsh/zpty) and
   * return the screen's text, escapes removed, once it shows `expect` (or after 15 s).
   */
  zshTyped(keys: string, expect: string): Promise<string>;
  /** Run a shell with the environment; stdout, stderr and the exit code. */
  run(shell: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** `hoist` for the shells: node on the CLI sources, as the installed bin/hoist runs the bundle. */
export async function completionShells(work: string, env: NodeJS.ProcessEnv): Promise<CompletionShells> {
  const bin = join(work, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'hoist'), `#!/bin/sh\nexec ${NODE} ${MAIN} "$@"\n`);
  await chmod(join(bin, 'hoist'), 0o755);
  const shellEnv = { ...env, PATH: `${bin}:${env.PATH ?? '/usr/bin:/bin'}` };
  const run = (shell: string, args: string[], cwd = work) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(shell, args, { env: shellEnv, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  const lines = (out: string) => out.split('\n').filter((l) => l !== '');
  const ok = async (shell: string, args: string[], cwd?: string) => {
    const r = await run(shell, args, cwd);
    if (r.code !== 0 || r.stderr !== '')
      throw new Error(`${shell} exited ${r.code}: ${r.stderr}\nstdout: ${r.stdout}`);
    return r.stdout;
  };

  return {
    env: shellEnv,
    run,
    // COMP_LINE/COMP_POINT as readline sets them, and COMP_WORDS/COMP_CWORD split as bash would at
    // spaces (the script reads the line itself, so the split at : and = does not matter here).
    async bash(line, cwd) {
      const script = [
        'source <(hoist completion bash)',
        `COMP_LINE=$LINE; COMP_POINT=\${#COMP_LINE}`,
        `read -r -a COMP_WORDS <<<"$COMP_LINE"; [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')`,
        `COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))`,
        'COMPREPLY=()',
        '__hoist_complete',
        `(( \${#COMPREPLY[@]} > 0 )) && printf '%s\\n' "\${COMPREPLY[@]}"`,
        'true',
      ].join('\n');
      return lines(
        await ok('bash', ['--norc', '--noprofile', '-c', `LINE=${shellQuote(line)}\n${script}`], cwd),
      );
    },
    // Outside a completion widget compsys cannot run, so its two functions the script calls record their
    // arguments instead: _describe's candidates (`value:description`, colons in values escaped) and
    // _files. `words` and CURRENT are set as zsh sets them for the line.
    async zsh(line) {
      const script = [
        'autoload -Uz compinit && compinit -u -D',
        'source <(hoist completion zsh)',
        '[[ $_comps[hoist] == _hoist ]] || { print -u2 "hoist not registered: $_comps[hoist]"; exit 1 }',
        `_describe() { print -rl -- "\${(@P)4}" }`,
        '_files() { print -r -- "_files $*" }',
        `words=(\${(z)LINE}); [[ $LINE == *' ' ]] && words+=('')`,
        `CURRENT=\${#words}`,
        '_hoist',
        'true',
      ].join('\n');
      // `value:description`: the value ends at the first colon not escaped as `\:`.
      return lines(await ok('zsh', ['-f', '-c', `LINE=${shellQuote(line)}\n${script}`])).map((l) =>
        l.startsWith('_files') ? l : (/^((?:\\:|[^:])*)/.exec(l)?.[1] ?? l).replaceAll('\\:', ':'),
      );
    },
    async zshTyped(keys, expect) {
      const script = [
        'zmodload zsh/zpty',
        'zpty z zsh -f -i',
        `zpty -w z 'PROMPT="> "; autoload -Uz compinit; compinit -u -D; source <(hoist completion zsh); print READY'`,
        `zpty -r z junk '*READY*'`,
        'zpty -w -n z "$KEYS"',
        'screen=""',
        'for i in {1..75}; do',
        '  sleep 0.2',
        '  while zpty -r -t z chunk; do screen+=$chunk; done',
        '  [[ $screen == *"$EXPECT"* ]] && break',
        'done',
        'zpty -d z',
        'print -r -- "$screen"',
      ].join('\n');
      const r = await run('zsh', [
        '-f',
        '-c',
        `KEYS=$'${keys.replaceAll('\t', '\\t')}'\nEXPECT=${shellQuote(expect)}\n${script}`,
      ]);
      // Terminal escapes (colours, cursor moves) and the bell out; carriage returns as line ends.
      return r.stdout
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .replace(/[\x07\b]/g, '')
        .replace(/\r/g, '\n');
    },
    async fish(line) {
      const script = `hoist completion fish | source; complete -C ${shellQuote(line)}`;
      return lines(await ok('fish', ['--no-config', '-c', script])).map((l) => l.split('\t')[0]!);
    },
  };
}

/** A word in single quotes for sh, bash, zsh and fish alike (no `'` inside: test lines have none). */
function shellQuote(s: string): string {
  if (s.includes("'")) throw new Error(`test line with a quote: ${s}`);
  return `'${s}'`;
}
