// hoist as a user installs it: `npm pack` (which compiles the TypeScript into dist/), then `npm install -g`
// of the tarball into a temporary prefix with the system's npm, whatever Node it runs on (the package
// brings its own Node 24). The installed `hoist` pulls, lists, removes and serves against the real
// registry, and signals reach the process that does the work: bin/hoist execs Node, so the pid you start
// is hoist's own.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { layerIngestBytes, waitFor } from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const LAYER_BYTES = 16 * 1024 * 1024;
const HOLD_AT = 4 * 1024 * 1024;

let reg: TestRegistry;
let work: string;
let bin: string;
let image: BuiltEntry;
let name: string;
let tarballPath: string;
const npmEnv = {
  ...process.env,
  npm_config_loglevel: 'error',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hoist-package-'));
  reg = await startRegistry();
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: LAYER_BYTES }] } },
  ])) as [BuiltEntry];
  await pushLayout(join(work, 'layout'), 'pkg/app:1', reg.host, { srcTag: 'app' });
  name = `${reg.host}/pkg/app:1`;
  // The system's npm, as a user has it (not the pinned Node's).
  await run('npm', ['pack', '--pack-destination', work], { cwd: REPO, env: npmEnv, maxBuffer: 1 << 24 });
  const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');
  tarballPath = join(work, tarball);
  await run('npm', ['install', '-g', '--prefix', join(work, 'prefix'), tarballPath], {
    env: npmEnv,
    maxBuffer: 1 << 24,
  });
  bin = join(work, 'prefix', 'bin', 'hoist');
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  const home = join(work, 'home');
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    DOCKER_CONFIG: join(home, '.docker'),
  };
}

async function hoist(root: string, ...args: string[]): Promise<string> {
  const r = await run(bin, ['--root', root, ...args], { env: env(), maxBuffer: 1 << 24 });
  return r.stdout;
}

function start(root: string, ...args: string[]): { child: ChildProcess; exited: Promise<number | string> } {
  const child = spawn(bin, ['--root', root, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.resume();
  child.stderr.resume();
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the packed package installs with npm install -g and ships bundled JavaScript, not the sources', async () => {
  const pkg = join(work, 'prefix', 'lib', 'node_modules', 'hoist');
  assert.ok(existsSync(join(pkg, 'dist', 'main.js')));
  assert.ok(existsSync(join(pkg, 'dist', 'apply-worker.js')), 'the applier worker is bundled beside it');
  assert.ok(!existsSync(join(pkg, 'src')), 'no TypeScript sources in the package');
  assert.match((await run(bin, ['--version'])).stdout, /^\d+\.\d+\.\d+/);
});

test('npm install -g links the man pages and the installed hoist completes', async () => {
  const manDir = join(work, 'prefix', 'share', 'man');
  assert.ok(existsSync(join(manDir, 'man1', 'hoist.1')), 'hoist(1) linked into {prefix}/share/man/man1');
  const { stdout } = await run('man', ['-M', manDir, 'hoist-pull'], {
    env: { ...env(), MANWIDTH: '200', MANPAGER: 'cat' },
  });
  assert.match(stdout, /^NAME\n\s+hoist-pull - Pull an image from a registry/m);
  assert.match(stdout, /--platform os\/arch\[\/variant\]\n\s+pull this platform/);
  assert.match(stdout, /--all-platforms\n\s+pull every platform of a multi-platform image/);
  assert.match(stdout, /--progress mode\n\s+auto, tty, plain or quiet \(default: auto\)/);
  assert.match((await run('man', ['-M', manDir, 'hoist-image-inspect'], { env: env() })).stdout, /--format/);
  // The bundle carries completion: the script, and the command it calls.
  assert.match((await run(bin, ['completion', 'bash'])).stdout, /complete -F __hoist_complete hoist/);
  const completed = await run(bin, ['__complete', 'ima'], { env: env() });
  assert.deepEqual(
    completed.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0])
      .sort(),
    [':0', 'image', 'images'],
  );
});

test('the installed hoist images loads no HTTP stack and no built-in only other commands need', async () => {
  // The bundle hoists every static import to the top of one file: a static `node:http` (whose ESM facade
  // loads undici) or gRPC code reached at load time costs every command its start-up. Which built-in
  // modules a listing loaded is read from the process itself.
  const report = join(work, 'modules.txt');
  const probe = join(work, 'probe.mjs');
  await writeFile(
    probe,
    `process.on('exit', () => process.getBuiltinModule('node:fs').writeFileSync(${JSON.stringify(report)}, process.moduleLoadList.join('\\n')));\n`,
  );
  await run(bin, ['--root', join(work, 'store-empty'), 'images'], {
    env: { ...env(), NODE_OPTIONS: `--import=${probe}` },
  });
  const loaded = (await readFile(report, 'utf8')).split('\n');
  // The HTTP stack; then what src/core/builtins.ts and the bundle's stand-ins (scripts/bundle-shims) load
  // on first use: child processes, compression, worker threads, prompts, crypto's full module.
  const unwanted = ['internal/deps/undici/undici', 'http2', 'tls', 'child_process', 'dgram', 'zlib'];
  unwanted.push('worker_threads', 'readline/promises', 'vm', 'v8', 'internal/crypto/webcrypto');
  for (const m of unwanted) assert.ok(!loaded.includes(`NativeModule ${m}`), `hoist images loaded ${m}`);
  assert.ok(loaded.includes('NativeModule sqlite'), 'the probe saw the listing open the store');
});

test('the installed hoist pulls, lists, removes and serves', async () => {
  const root = join(work, 'store-1');
  await hoist(root, 'pull', '--plain-http', '-q', name);
  const id = (await hoist(root, 'images', '-q')).trim();
  assert.match(id, /^[0-9a-f]{12}$/);
  assert.match(await hoist(root, 'images'), /pkg\/app/);
  assert.match(await hoist(root, 'rmi', id), /Deleted: sha256:/);
  assert.equal((await hoist(root, 'images', '-q')).trim(), '');

  const socket = join(work, 'serve.sock');
  const serve = start(root, 'serve', '--address', socket);
  await waitFor(async () => existsSync(socket), 'the socket');
  // The CLI goes through the daemon that owns the store.
  await hoist(root, '--address', socket, 'pull', '--plain-http', '-q', name);
  assert.match(await hoist(root, '--address', socket, 'images'), /pkg\/app/);
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0, 'SIGTERM stops serve cleanly');
  assert.ok(!existsSync(socket), 'the socket is removed');
  assert.ok(!alive(serve.child.pid!), 'no hoist process is left');
});

test('signals reach the installed hoist: SIGINT gives 130, SIGKILL leaves no process, the next pull resumes', async () => {
  const root = join(work, 'store-2');
  const layer = image.images[0]!.layers[0]!;
  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    const hold = reg.holdBlob(layer.digest, HOLD_AT);
    const pull = start(root, 'pull', '--plain-http', '--progress', 'plain', name);
    await hold.reached;
    await waitFor(
      async () => (await layerIngestBytes(root, 'default', layer.digest)) >= HOLD_AT,
      'held bytes',
    );
    pull.child.kill(signal);
    assert.equal(await pull.exited, signal === 'SIGINT' ? 130 : 'SIGKILL');
    hold.release();
    await waitFor(async () => !alive(pull.child.pid!), 'the pull process to be gone');
  }
  reg.resetStats();
  await hoist(root, 'pull', '--plain-http', '-q', name);
  const gets = reg
    .stats()
    .requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`));
  assert.equal(gets.length, 1);
  assert.match(gets[0]!.range ?? '', /^bytes=[1-9]\d*-$/, 'resumed with a Range request');
});

test("as a dependency of another project: the API guide's example runs against the registry", async () => {
  const project = join(work, 'consumer');
  await mkdir(project);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run('npm', ['install', tarballPath], { cwd: project, env: npmEnv, maxBuffer: 1 << 24 });
  await copyFile(join(REPO, 'docs', 'api-example.mjs'), join(project, 'api-example.mjs'));
  // The Node 24 the package brings along.
  const node = join(project, 'node_modules', 'node', 'bin', 'node');
  // A served store too: the installed `hoist serve` on a store of its own.
  const socket = join(work, 'example.sock');
  const serve = start(join(work, 'served-store'), 'serve', '--address', socket);
  await waitFor(async () => existsSync(socket), 'the socket');
  const { stdout } = await run(node, ['api-example.mjs', name, join(project, 'store'), socket], {
    cwd: project,
    env: env(),
    maxBuffer: 1 << 24,
  }).finally(() => serve.child.kill('SIGTERM'));
  assert.equal(await serve.exited, 0);
  assert.match(stdout, /^pulled .*pkg\/app:1 as sha256:[0-9a-f]{64}$/m);
  assert.match(stdout, /^k8s\.io: 1 image, 3 names: /m, 'one image with the three CRI names');
  assert.match(stdout, /^saved 1 image, \d+ blobs$/m);
  assert.match(stdout, /^loaded .*pkg\/app:1/m);
  assert.match(stdout, /^removed 1 name\(s\); 0 images left$/m);
  assert.match(stdout, /^served: .*pkg\/app:1 sha256:[0-9a-f]{64}$/m, 'the same calls through hoist serve');
});
