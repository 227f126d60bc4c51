// Bad input at the command line: malformed references, unknown flags and commands, unknown namespaces,
// missing images, unknown hosts and missing tags. Each is a clear message on stderr and a non-zero exit,
// with no stack trace unless --debug asks for one, and nothing is created in the store by a failed command.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, type RunResult, tempStore } from '../helpers/run-hoist.ts';

let h: HoistStore;
let reg: TestRegistry;

before(async () => {
  h = await tempStore();
  reg = await startRegistry();
});

after(async () => {
  await reg?.stop();
  await h?.cleanup();
});

const STACK = /\n\s+at .*[(:]/;

/** A hoist error: exit 1, `hoist: <message>` first, optionally a hint, no stack, nothing on stdout. */
function assertError(r: RunResult, message: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^hoist: /);
  assert.match(lines[0]!, message);
  assert.ok(lines.length === 1 || (lines.length === 2 && /^hint: /.test(lines[1]!)), r.stderr);
  assert.doesNotMatch(r.stderr, STACK);
}

/** A usage error from the argument parser: exit 2, the problem named, a pointer to --help. */
function assertUsage(r: RunResult, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.match(r.stderr, /--help/);
  assert.doesNotMatch(r.stderr, STACK);
}

test('malformed references are refused with the reason and the expected form', async () => {
  const cases: [string[], RegExp][] = [
    [['pull', 'Alpine'], /invalid reference "Alpine": repository names must be lowercase/],
    [['pull', 'a b'], /invalid reference "a b"/],
    [['pull', 'alpine@sha256:abc'], /"sha256:abc" is not a valid digest/],
    [['pull', 'alpine:-bad'], /tag "-bad" is invalid/],
    [['pull', ''], /invalid reference "": it is empty/],
    [['pull', 'alpine:tag:extra'], /invalid reference "alpine:tag:extra"/],
  ];
  for (const [args, message] of cases) {
    const r = await h.run(...args);
    assertError(r, message);
    assert.match(r.stderr, /^hint: use NAME\[:TAG\]\[@sha256:DIGEST\]/m);
  }
});

test('unknown commands, unknown flags and missing arguments are usage errors (exit 2)', async () => {
  assertUsage(await h.run('frobnicate'), /unknown command 'frobnicate'/);
  assertUsage(await h.run('pull', '--bogus', 'alpine'), /unknown option '--bogus'/);
  assertUsage(await h.run('images', '--bogus'), /unknown option '--bogus'/);
  assertUsage(await h.run('rmi', '--bogus', 'alpine'), /unknown option '--bogus'/);
  assertUsage(await h.run('pull'), /missing required argument 'reference'/);
  assertError(await h.run('pull', '--progress', 'fancy', 'alpine'), /invalid --progress "fancy"/);
  assertError(await h.run('pull', '--platform', 'a/b/c/d', 'alpine'), /invalid platform "a\/b\/c\/d"/);
});

test('rmi and inspect of a missing image, also in a namespace that does not exist; bad namespace names', async () => {
  assertError(await h.run('rmi', 'alpine'), /image "alpine": not found/);
  assertError(await h.run('rmi', 'sha256:0123456789ab'), /not found/);
  assertError(await h.run('image', 'inspect', 'alpine'), /image "alpine": not found/);
  assertError(await h.run('-n', 'nosuch', 'rmi', 'alpine'), /not found/);
  assertError(await h.run('-n', 'nosuch', 'image', 'inspect', 'alpine'), /not found/);
  assert.doesNotMatch(await h.ok('namespace', 'ls'), /nosuch/, 'a failed command creates no namespace');
  assertError(await h.run('-n', 'bad/ns', 'images'), /invalid namespace "bad\/ns"/);
});

test("messages are sentences: no containerd status name appended (': invalid argument')", async () => {
  const r = await h.run('namespace', 'create', 'Bad/ns');
  assertError(r, /namespace "Bad\/ns": identifier must match .* at most 76 characters$/m);
  assert.doesNotMatch(r.stderr, /: invalid argument$/m);
});

test('--debug adds the stack trace', async () => {
  const r = await h.run('--debug', 'rmi', 'alpine');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^hoist: image "alpine": not found/);
  assert.match(r.stderr, STACK);
});

test('a missing tag and an unknown host: one clear line naming what was asked for', async () => {
  assertError(await h.run('pull', '--plain-http', `${reg.host}/no/such:1`), /no\/such:1: not found/);
  const unknown = await h.run('pull', 'registry.hoist-test.invalid/app:1');
  assertError(unknown, /cannot reach registry registry\.hoist-test\.invalid/);
  assert.equal((await h.ok('images', '-q', '--all')).trim(), '');
});

test('a bad --max-concurrent-unpacks is refused before anything is fetched', async () => {
  for (const bad of ['0', 'two', '1.5']) {
    const r = await h.run('pull', '--plain-http', '--max-concurrent-unpacks', bad, `${reg.host}/no/such:1`);
    assertError(r, /invalid --max-concurrent-unpacks .*: use a whole number ≥ 1/);
  }
  assert.equal((await h.ok('images', '-q', '--all')).trim(), '');
});
