// The man pages scripts/gen-man.ts generates from the commander definitions: one per command, each read
// by groff without a warning, and with what --help says (options, their defaults, subcommands), the
// environment, and cross references that name pages there are. package.json's "man" list must name
// them all, or npm would leave some out of {prefix}/share/man (the generator fails; so does this test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.ts';
import { NODE } from '../helpers/run-hoist.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
let out: string;
let pages: string[];

before(async () => {
  out = await mkdtemp(join(tmpdir(), 'hoist-man-'));
  await run(NODE, [join(REPO, 'scripts', 'gen-man.ts'), out], { cwd: REPO });
  pages = (await readdir(out)).sort();
});

after(async () => {
  await rm(out, { recursive: true, force: true });
});

/** The page as man shows it, plain text (no bold/underline overstrikes), wide enough not to wrap flags. */
async function rendered(page: string): Promise<string> {
  const r = await run('man', ['-l', join(out, page)], {
    env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '' },
  });
  return r.stdout;
}

test('a page per visible command, and package.json lists exactly them', async () => {
  const program = await buildProgram();
  const expected: string[] = [];
  const walk = (cmd: Command, prefix: string[]) => {
    expected.push(`${[...prefix, cmd.name()].join('-')}.1`);
    for (const c of cmd.createHelp().visibleCommands(cmd))
      if (cmd.commands.includes(c)) walk(c, [...prefix, cmd.name()]);
  };
  walk(program, []);
  assert.deepEqual(pages, expected.sort());
  for (const p of [
    'hoist.1',
    'hoist-pull.1',
    'hoist-image-inspect.1',
    'hoist-snapshot-rm.1',
    'hoist-completion.1',
  ])
    assert.ok(pages.includes(p), p);
  assert.ok(!pages.some((p) => p.includes('__complete') || p === 'hoist-help.1'), 'no hidden or help pages');
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
    man: string[];
    files: string[];
  };
  assert.deepEqual(pkg.man, pages.map((p) => `man/man1/${p}`).sort());
  assert.ok(pkg.files.includes('man/'));
});

test('every page renders with groff -ww without a warning', async () => {
  for (const p of pages) {
    const r = await run('groff', ['-man', '-Tutf8', '-ww', '-z', join(out, p)]);
    assert.equal(r.stderr, '', `${p}: ${r.stderr}`);
  }
});

test('hoist-pull(1): synopsis, every option with its help and default, global options, environment', async () => {
  const text = await rendered('hoist-pull.1');
  assert.match(text, /^NAME\n\s+hoist-pull - Pull an image from a registry/m);
  assert.match(text, /SYNOPSIS\n\s+hoist pull \[options\] reference/);
  assert.match(text, /--platform os\/arch\[\/variant\]\n\s+pull this platform \(default: this host\)/);
  assert.match(text, /--progress mode\n\s+auto, tty, plain or quiet \(default: auto\)/);
  assert.match(text, /-q, --quiet\n\s+print only the image name/);
  assert.match(text, /GLOBAL OPTIONS[\s\S]*-n, --namespace ns/);
  for (const v of [
    'HOIST_ROOT',
    'HOIST_CONFIG',
    'HOIST_NAMESPACE',
    'CONTAINERD_NAMESPACE',
    'HOIST_ADDRESS',
    'CONTAINERD_ADDRESS',
  ])
    assert.match(text, new RegExp(`ENVIRONMENT[\\s\\S]*\\n\\s+${v}\\n`), v);
  assert.match(text, /SEE ALSO\n\s+hoist\(1\)/);
});

test('hoist(1) lists the commands; a group page its subcommands and aliases; completion its install help', async () => {
  const top = await rendered('hoist.1');
  for (const c of ['pull', 'images', 'image', 'snapshot', 'completion'])
    assert.match(top, new RegExp(`\\n\\s+${c}\\b`));
  assert.doesNotMatch(top, /__complete/);
  const image = await rendered('hoist-image-ls.1');
  assert.match(image, /Also: hoist image list\./);
  const completion = await rendered('hoist-completion.1');
  assert.match(completion, /hoist completion bash > \/etc\/bash_completion\.d\/hoist/);
  assert.match(completion, /~\/\.config\/fish\/completions\/hoist\.fish/);
});

test('SEE ALSO names only pages that exist', async () => {
  for (const p of pages) {
    const roff = await readFile(join(out, p), 'utf8');
    const seeAlso = roff.slice(roff.indexOf('.SH SEE ALSO'));
    for (const m of seeAlso.matchAll(/^\.BR (\S+) \(1\)/gm)) {
      const target = `${m[1]!.replaceAll('\\-', '-')}.1`;
      assert.ok(pages.includes(target), `${p} refers to ${target}`);
    }
  }
});
