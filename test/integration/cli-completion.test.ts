// Shell completion as a user's Tab gives it, in real bash, zsh and fish: the scripts `hoist completion`
// prints call `hoist __complete`, which completes commands, options and their values from the commander
// definitions and names from a real store (two images pulled from the real registry, one more name in
// docker.io's short form, another namespace, a lease, snapshots), without creating a store, and quietly.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ARGUMENT_KINDS, commandPath } from '../../src/cli/completion/kinds.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, jsonLines, MAIN, NODE, tempStore } from '../helpers/run-hoist.ts';
import { type CompletionShells, completionShells } from '../helpers/shell-completion.ts';

let reg: TestRegistry;
let work: string;
let h: HoistStore;
let shells: CompletionShells;
let repo: string;
let snapshotKeys: string[];

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-completion-'));
  await writeOciLayout(join(work, 'layout'), [
    { tag: 'one', image: { layers: [{ 'etc/one': 'one\n' }] } },
    { tag: 'two', image: { layers: [{ 'etc/two': 'two\n' }] } },
  ]);
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.host, { srcTag: 'one' });
  await pushLayout(join(work, 'layout'), 'team/tool:2', reg.host, { srcTag: 'two' });
  repo = `${reg.host}/team`;
  h = await tempStore();
  await h.ok('pull', '-q', '--plain-http', `${repo}/app:1`);
  await h.ok('pull', '-q', '--plain-http', `${repo}/tool:2`);
  await h.ok('tag', `${repo}/app:1`, 'alpine:3.20');
  await h.ok('-n', 'k8s.io', 'pull', '-q', '--plain-http', `${repo}/tool:2`);
  await h.ok('lease', 'create', '--id', 'completion-lease', '-x', '1h');
  snapshotKeys = jsonLines<{ Name: string }>(await h.ok('snapshot', 'ls', '--format', 'json'))
    .map((s) => s.Name)
    .sort();
  assert.ok(snapshotKeys.length >= 2, 'the pulls unpacked snapshots');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: h.home, HOIST_ROOT: h.root };
  for (const k of [
    'HOIST_CONFIG',
    'HOIST_NAMESPACE',
    'HOIST_ADDRESS',
    'CONTAINERD_NAMESPACE',
    'CONTAINERD_ADDRESS',
  ])
    delete env[k];
  shells = await completionShells(join(work, 'shell'), env);
});

after(async () => {
  await h?.cleanup();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const sorted = (xs: string[]) => [...xs].sort();

test('bash: commands from a prefix, subcommands, options, option values', async () => {
  const loaded = await shells.run('bash', [
    '--norc',
    '-c',
    'source <(hoist completion bash) && complete -p hoist',
  ]);
  assert.equal(loaded.stderr, '');
  assert.match(loaded.stdout, /complete -F __hoist_complete hoist/);
  assert.deepEqual(sorted(await shells.bash('hoist ima')), ['image', 'images']);
  const image = await shells.bash('hoist image ');
  for (const c of ['ls', 'inspect', 'rm', 'tag', 'save', 'load', 'unpack', 'history', 'convert'])
    assert.ok(image.includes(c), `image ${c} among ${image}`);
  assert.ok(!image.includes('__complete') && !(await shells.bash('hoist ')).includes('__complete'), 'hidden');
  const pull = await shells.bash('hoist pull --');
  for (const o of [
    '--platform',
    '--all-platforms',
    '--quiet',
    '--progress',
    '--plain-http',
    '--root',
    '--help',
  ])
    assert.ok(pull.includes(o), `pull ${o} among ${pull}`);
  assert.ok(!pull.includes('-q'), 'only long forms after --');
  assert.ok((await shells.bash('hoist pull -')).includes('-q'), 'short forms after -');
  assert.deepEqual(sorted(await shells.bash('hoist images --format ')), ['json', 'table']);
  assert.deepEqual(await shells.bash('hoist image inspect --format '), ['json'], 'inspect prints no table');
  // `=` splits the word for readline: only the part after it is replaced.
  assert.deepEqual(await shells.bash('hoist images --format=j'), ['json']);
  assert.deepEqual(sorted(await shells.bash('hoist pull --progress ')), ['auto', 'plain', 'quiet', 'tty']);
  assert.deepEqual(sorted(await shells.bash('hoist completion ')), ['bash', 'fish', 'zsh']);
  assert.deepEqual(await shells.bash('hoist ns'), ['ns'], 'an alias completes when only it matches');
  assert.deepEqual(sorted(await shells.bash('hoist help ima')), ['image', 'images']);
});

test('bash: image names, namespaces, leases and snapshot keys from the store', async () => {
  const names = [`${repo}/app:1`, `${repo}/tool:2`, 'alpine:3.20'].sort();
  for (const line of ['hoist rmi ', 'hoist image inspect ', 'hoist tag ', 'hoist push ', 'hoist image save '])
    assert.deepEqual(sorted(await shells.bash(line)), names, line);
  assert.deepEqual(await shells.bash('hoist tag alpine:3.20 '), [], "tag's second argument is a new name");
  assert.deepEqual(await shells.bash('hoist rmi al'), ['alpine:3.20'], "docker.io's short form");
  // Readline replaces what follows the last colon of the word: candidates are cut to match.
  assert.deepEqual(await shells.bash(`hoist rmi ${repo}/app:`), ['1']);
  assert.deepEqual(sorted(await shells.bash('hoist -n ')), ['default', 'k8s.io']);
  assert.deepEqual(await shells.bash('hoist -n k8s.io rmi '), [`${repo}/tool:2`], 'the namespace typed');
  assert.deepEqual(await shells.bash('hoist rmi -n k8s.io '), [`${repo}/tool:2`], 'after the command too');
  assert.deepEqual(await shells.bash('hoist lease rm '), ['completion-lease']);
  assert.deepEqual(sorted(await shells.bash('hoist snapshot rm ')), snapshotKeys);
  assert.deepEqual(sorted(await shells.bash('hoist snapshots --snapshotter native info ')), [], 'none there');
  // --root on the line picks the store; one that does not exist gives nothing and is not created.
  const missing = join(work, 'no-store');
  assert.deepEqual(await shells.bash(`hoist --root ${missing} rmi `), []);
  assert.ok(!existsSync(missing), 'completing created no store directory');
  const other = await tempStore();
  try {
    await other.ok('images'); // an empty store
    assert.deepEqual(
      await shells.bash(`hoist --root ${other.root} rmi `),
      [],
      'the store on the line, not HOIST_ROOT',
    );
  } finally {
    await other.cleanup();
  }
});

test('bash: file and directory values complete file names', async () => {
  const dir = join(work, 'files');
  await mkdir(join(dir, 'outdir'), { recursive: true });
  await writeFile(join(dir, 'archive.tar'), '');
  assert.deepEqual(sorted(await shells.bash('hoist save -o ', dir)), ['archive.tar', 'outdir']);
  assert.deepEqual(await shells.bash('hoist image unpack --to ', dir), ['outdir'], 'directories only');
  assert.deepEqual(await shells.bash('hoist pull ', dir), [], 'a registry reference is not a file');
});

test('zsh: the script loads, registers with compinit and yields commands, descriptions and image names', async () => {
  assert.deepEqual(sorted(await shells.zsh('hoist ima')), ['image', 'images']);
  assert.ok((await shells.zsh('hoist image ')).includes('inspect'));
  assert.deepEqual(
    sorted(await shells.zsh('hoist rmi ')),
    [`${repo}/app:1`, `${repo}/tool:2`, 'alpine:3.20'].sort(),
  );
  assert.deepEqual(sorted(await shells.zsh('hoist images --format=')), ['--format=json', '--format=table']);
  assert.deepEqual(await shells.zsh('hoist save -o '), ['_files ']);
  const described = await shells.run('zsh', [
    '-f',
    '-c',
    `autoload -Uz compinit && compinit -u -D; source <(hoist completion zsh); _describe() { print -rl -- "\${(@P)4}" }; words=(hoist pul); CURRENT=2; _hoist`,
  ]);
  assert.equal(
    described.stdout.trim(),
    'pull:Pull an image from a registry (resumes an interrupted pull of the same image)',
  );
});

test('zsh, interactive: Tab in a terminal completes an image name and lists subcommands with descriptions', async () => {
  const unique = await shells.zshTyped('hoist rmi al\t', 'alpine:3.20');
  assert.match(unique, /hoist rmi alpine:3\.20/);
  const listing = await shells.zshTyped('hoist image \t\t', 'Show an image as JSON');
  assert.match(listing, /inspect\s+-- Show an image as JSON/);
  assert.match(listing, /ls\s+-- List images/);
});

test('fish: commands, options, values and image names', async () => {
  assert.deepEqual(sorted(await shells.fish('hoist ima')), ['image', 'images']);
  const pull = await shells.fish('hoist pull --');
  assert.ok(pull.includes('--platform') && pull.includes('--quiet'), `pull options: ${pull}`);
  assert.deepEqual(sorted(await shells.fish('hoist images --format=')), ['--format=json', '--format=table']);
  assert.deepEqual(
    sorted(await shells.fish('hoist rmi ')),
    [`${repo}/app:1`, `${repo}/tool:2`, 'alpine:3.20'].sort(),
  );
  assert.deepEqual(sorted(await shells.fish('hoist -n ')), ['default', 'k8s.io']);
});

test('__complete is quiet and quick when the store cannot be reached, and on odd input', async () => {
  const run = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string; ms: number }>((resolve) => {
      const start = Date.now();
      execFile(NODE, [MAIN, '__complete', ...args], { env: shells.env }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr, ms: Date.now() - start }),
      );
    });
  for (const args of [
    ['--address', join(work, 'no-daemon.sock'), 'rmi', ''],
    ['--config', join(work, 'missing.toml'), 'rmi', ''],
    ['-n', 'not a namespace!', 'rmi', ''],
    ['--help', '--version', ''],
    ['no-such-command', '--nope', ''],
    [],
  ]) {
    const r = await run(...args);
    assert.equal(r.code, 0, `exit 0 for ${args}`);
    assert.equal(r.stderr, '', `nothing on stderr for ${args}`);
    assert.match(r.stdout, /(^|\n):\d+\n$/, `a directive line for ${args}`);
    assert.ok(r.ms < 10_000, `answered in ${r.ms} ms`);
  }
  assert.equal((await run('--address', join(work, 'no-daemon.sock'), 'rmi', '')).stdout, ':0\n');
});

test('every command path in the completion table exists in the program', async () => {
  const program = await buildProgram();
  const paths = new Set<string>();
  const walk = (c: typeof program) => {
    paths.add(commandPath(c));
    for (const s of c.commands) walk(s);
  };
  walk(program);
  for (const p of Object.keys(ARGUMENT_KINDS)) assert.ok(paths.has(p), `no command "${p}"`);
});
