// --format as docker scripts use it, on an image pulled from the real registry: the JSON keys docker's
// `images --format '{{json .}}'` prints, `table TEMPLATE` headers as docker names them, templates per
// row, `image inspect -f`, and the other listings' JSON lines.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { humanSize } from '../../src/cli/output/units.ts';
import type { Digest } from '../../src/core/digest.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type HoistStore, jsonLines, tempStore } from '../helpers/run-hoist.ts';
import { startServe } from '../helpers/serve.ts';

let reg: TestRegistry;
let work: string;
let built: BuiltEntry[];
let h: HoistStore;
/** Longer than docker's 45-character CREATED BY column. */
const ADD_STEP = '/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in / ';
let repo: string;

before(async () => {
  reg = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'hoist-format-'));
  built = await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'v1',
      image: {
        layers: [{ 'etc/os-release': 'ID=test\n' }, { randomBytes: 200_000 }],
        config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['/bin/sh'] },
        configExtras: {
          history: [
            { created: '2024-01-01T00:00:00Z', created_by: ADD_STEP },
            { created: '2024-01-02T00:00:00Z', created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true },
            { created: '2024-01-03T00:00:00Z', created_by: 'RUN make', comment: 'built' },
          ],
        },
      },
    },
  ]);
  await pushLayout(join(work, 'layout'), 'team/fmt:1', reg.host, { srcTag: 'v1' });
  repo = `${reg.host}/team/fmt`;
  h = await tempStore();
  await h.ok('pull', '-q', '--plain-http', `${repo}:1`);
  await h.ok('tag', `${repo}:1`, `${repo}:2`);
});

after(async () => {
  await h?.cleanup();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The keys `docker images --format '{{json .}}'` prints (docker 24+). */
const DOCKER_IMAGE_KEYS = [
  'Containers',
  'CreatedAt',
  'CreatedSince',
  'Digest',
  'ID',
  'Repository',
  'SharedSize',
  'Size',
  'Tag',
  'UniqueSize',
  'VirtualSize',
];

test("images --format json: one object per line with docker's keys", async () => {
  const rows = jsonLines(await h.ok('images', '--format', 'json'));
  assert.equal(rows.length, 2);
  const target = built[0]!.top.digest;
  for (const r of rows) {
    for (const k of DOCKER_IMAGE_KEYS) assert.ok(k in r, `key ${k} in ${JSON.stringify(r)}`);
    assert.equal(r.ID, target.slice('sha256:'.length, 'sha256:'.length + 12));
    assert.equal(r.Repository, repo);
    assert.equal(r.Digest, target);
    assert.match(r.Size as string, /^\d+(\.\d+)?[kMG]?B$/);
    assert.match(r.CreatedAt as string, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/, "Go's time format");
  }
  assert.deepEqual(rows.map((r) => r.Tag).sort(), ['1', '2']);
  // `{{json .}}` is the same object.
  const since = (out: string) => out.replace(/"CreatedSince":"[^"]*"/g, '');
  assert.equal(
    since(await h.ok('images', '--format', '{{json .}}')),
    since(await h.ok('images', '--format', 'json')),
  );
});

test("images --format 'table {{.ID}}\\t{{.Repository}}…': docker's headers; a template per row", async () => {
  const out = await h.ok(
    'images',
    '--format',
    'table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}\\t{{.CreatedSince}}',
  );
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^IMAGE ID {3,}REPOSITORY {3,}TAG {3,}CREATED$/);
  assert.equal(lines.length, 3);
  const names = (await h.ok('images', '--format', '{{.Repository}}:{{.Tag}}')).trim().split('\n').sort();
  assert.deepEqual(names, [`${repo}:1`, `${repo}:2`]);
  const upper = await h.ok(
    'images',
    '--format',
    '{{if eq .Tag "1"}}{{upper .Tag}}{{else}}{{lower .Repository | len}}{{end}}',
  );
  assert.deepEqual(upper.trim().split('\n').sort(), ['1', String(repo.length)].sort());
});

test('a bad template: exit 1, HOIST_INVALID_ARGUMENT naming the position, nothing on stdout', async () => {
  const r = await h.run('images', '--format', '{{.ID}} {{if .Tag}}');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /line 1, column 9: unclosed \{\{if\}\}/);
  const f = await h.run('images', '--format', '{{.Nope}}');
  assert.equal(f.code, 1);
  assert.match(f.stderr, /can't evaluate field Nope/);
});

test('image inspect -f, RepoTags and RepoDigests as docker shows them', async () => {
  const target = built[0]!.top.digest;
  assert.equal((await h.ok('image', 'inspect', '-f', '{{.Id}}', `${repo}:1`)).trim(), target);
  assert.deepEqual(
    JSON.parse(await h.ok('image', 'inspect', '--format', '{{json .RepoTags}}', `${repo}:1`)),
    [`${repo}:1`, `${repo}:2`],
  );
  assert.deepEqual(
    JSON.parse(await h.ok('image', 'inspect', '-f', '{{json .RepoDigests}}', `${repo}:1`)),
    [`${repo}@${target}`],
    'one repo@digest per repository',
  );
  assert.equal(
    (await h.ok('image', 'inspect', '-f', '{{range .Config.Env}}{{.}};{{end}}', `${repo}:1`)).trim(),
    'PATH=/bin;A=1;',
  );
  const two = await h.ok('image', 'inspect', '-f', '{{.Id}}', `${repo}:1`, `${repo}:2`);
  assert.equal(two, `${target}\n${target}\n`, 'one line per image, as docker');
});

test('snapshot ls, image check, lease ls, namespace ls, system df, system check: JSON lines in the same key style', async () => {
  const snaps = jsonLines(await h.ok('snapshot', 'ls', '--format', 'json'));
  assert.ok(snaps.length >= 2);
  for (const s of snaps) assert.deepEqual(Object.keys(s).slice(0, 3), ['Name', 'Parent', 'Kind']);
  assert.equal(
    (await h.ok('snapshot', 'info', '-f', '{{.Kind}}', String(snaps[0]!.Name))).trim(),
    snaps[0]!.Kind,
  );
  const [check] = jsonLines(await h.ok('image', 'check', '--format', 'json', `${repo}:1`));
  assert.equal(check!.Name, `${repo}:1`);
  assert.equal(check!.Complete, true);
  assert.equal(check!.Digest, built[0]!.top.digest);
  assert.equal((await h.ok('image', 'check', '--format', '{{.Status}}', `${repo}:1`)).trim(), 'complete');
  assert.equal(await h.ok('lease', 'ls', '--format', 'json'), '');
  await h.ok('lease', 'create', '--id', 'l1');
  const [lease] = jsonLines(await h.ok('lease', 'ls', '--format', 'json'));
  assert.equal(lease!.ID, 'l1');
  assert.equal(lease!.State, 'held');
  assert.equal((await h.ok('namespace', 'ls', '--format', '{{.Name}}')).trim(), 'default');
  const df = jsonLines(await h.ok('system', 'df', '--format', 'json'));
  assert.deepEqual(Object.keys(df[0]!), ['Type', 'TotalCount', 'Active', 'Size', 'Reclaimable']);
  assert.equal(df[0]!.Type, 'Images');
  assert.equal(df[0]!.TotalCount, '1');
  const table = await h.ok('system', 'df', '--format', 'table {{.Type}}\\t{{.TotalCount}}');
  assert.match(table.split('\n')[0]!, /^TYPE {3,}TOTAL COUNT$/);
  const checkJson = jsonLines(await h.ok('system', 'check', '--format', 'json'));
  assert.equal(checkJson.length, 1, 'one report, one line');
  assert.deepEqual(Object.keys(checkJson[0]!), ['Ok', 'Checked', 'Problems', 'Notes']);
  assert.equal((checkJson[0]!.Checked as Record<string, number>).Images, 1);
  assert.equal((await h.ok('system', 'check', '--format', '{{.Ok}} {{len .Problems}}')).trim(), 'true 0');
});

/** The bytes of a built layer's uncompressed tar (its blob in the layout, gunzipped). */
async function tarBytes(digest: string): Promise<number> {
  return gunzipSync(await readFile(join(work, 'layout', 'blobs', 'sha256', digest.slice('sha256:'.length))))
    .length;
}

test('SIZE is the unpacked size as docker shows it, BLOB SIZE beside it as nerdctl; N/A when never unpacked', async () => {
  const img = built[0]!.images[0]!;
  const unpacked = (await tarBytes(img.layers[0]!.digest)) + (await tarBytes(img.layers[1]!.digest));
  const blobs = img.manifest.size + img.config.size + img.layers.reduce((a, l) => a + l.size, 0);
  assert.ok(unpacked > blobs - 2000, 'the fixture unpacks to more than it is compressed');
  const [row] = jsonLines(await h.ok('images', '--format', 'json', `${repo}:1`));
  assert.equal(row!.SizeBytes, unpacked);
  assert.equal(row!.BlobSizeBytes, blobs);
  assert.equal(row!.Size, humanSize(unpacked, 3));
  assert.equal(row!.VirtualSize, row!.Size);
  assert.equal(row!.BlobSize, humanSize(blobs, 3));
  const table = (await h.ok('images', `${repo}:1`)).split('\n');
  assert.match(table[0]!, /\sSIZE\s+BLOB SIZE$/);
  assert.match(table[1]!, new RegExp(` ${humanSize(unpacked, 3)}\\s+${humanSize(blobs, 3)}$`));
  const inspect = JSON.parse(await h.ok('image', 'inspect', `${repo}:1`))[0];
  assert.equal(inspect.Size, unpacked);
  assert.equal(inspect.BlobSize, blobs);

  const lazy = await tempStore();
  try {
    await lazy.ok('pull', '-q', '--plain-http', '--no-unpack', `${repo}:1`);
    const [r] = jsonLines(await lazy.ok('images', '--format', 'json'));
    assert.equal(r!.Size, 'N/A');
    assert.equal(r!.SizeBytes, null);
    assert.equal(r!.BlobSizeBytes, blobs);
    await lazy.ok('image', 'unpack', `${repo}:1`);
    const [u] = jsonLines(await lazy.ok('images', '--format', 'json'));
    assert.equal(u!.SizeBytes, unpacked, 'an unpack afterwards records it');
  } finally {
    await lazy.cleanup();
  }
});

test("image history: docker's columns, newest first, --no-trunc, -q, --format", async () => {
  const out = await h.ok('image', 'history', `${repo}:1`);
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^IMAGE {3,}CREATED {3,}CREATED BY {3,}SIZE {3,}COMMENT$/, "docker's header");
  assert.equal(lines.length, 4, 'three steps');
  const id = built[0]!.top.digest.slice('sha256:'.length, 'sha256:'.length + 12);
  assert.ok(lines[1]!.startsWith(`${id}   `), 'the newest step shows the image ID');
  assert.match(lines[1]!, /RUN make\s+\d+(\.\d+)?kB\s+built$/);
  assert.match(lines[2]!, /^<missing>\s+.*ENV A=1\s+0B$/, 'an empty layer is 0B');
  assert.ok(
    lines[3]!.includes(`   ${ADD_STEP.slice(0, 44)}…   `),
    `CREATED BY cut at 45 as docker: ${lines[3]}`,
  );
  const rows = jsonLines(await h.ok('history', '--format', 'json', '--no-trunc', `${repo}:1`));
  assert.deepEqual(Object.keys(rows[0]!).slice(0, 6), [
    'Comment',
    'CreatedAt',
    'CreatedBy',
    'CreatedSince',
    'ID',
    'Size',
  ]);
  assert.equal(rows[0]!.ID, built[0]!.top.digest);
  assert.equal(rows[2]!.CreatedBy, ADD_STEP);
  assert.equal(rows[2]!.CreatedAt, '2024-01-01T00:00:00Z');
  assert.equal(
    rows[0]!.SizeBytes,
    await tarBytes(built[0]!.images[0]!.layers[1]!.digest),
    'the unpacked size',
  );
  assert.equal(rows[0]!.BlobSizeBytes, built[0]!.images[0]!.layers[1]!.size);
  assert.deepEqual((await h.ok('history', '-q', `${repo}:1`)).trim().split('\n'), [
    id,
    '<missing>',
    '<missing>',
  ]);
  assert.equal(
    await h.ok('history', '--human=false', '--format', '{{.CreatedSince}}', `${repo}:1`),
    '2024-01-03T00:00:00Z\n2024-01-02T00:00:00Z\n2024-01-01T00:00:00Z\n',
  );
  assert.equal(
    await h.ok('history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', `${repo}:2`),
    `RUN make|built\n/bin/sh -c #(nop)  ENV A=1|\n${ADD_STEP}|\n`,
  );
});

test("version and info: docker's sections, --format json and templates; through hoist serve the server's version", async () => {
  const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const v = await h.ok('version');
  assert.match(
    v,
    new RegExp(`^Client:\\n Version: +${pkg.version.replaceAll('.', '\\.')}\\n Node version: +v24\\.`),
  );
  assert.match(v, /\n OS\/Arch: +linux\/(amd64|arm64)\n$/);
  assert.doesNotMatch(v, /Server:/, 'the embedded store has no server');
  const json = JSON.parse(await h.ok('version', '--format', 'json'));
  assert.equal(json.Client.Version, pkg.version);
  assert.equal(json.Server, null);
  assert.equal(await h.ok('version', '-f', '{{.Client.Version}}'), `${pkg.version}\n`);

  const info = JSON.parse(await h.ok('info', '--format', 'json'));
  assert.equal(info.Mode, 'embedded');
  assert.equal(info.Root, h.root);
  assert.equal(info.Namespace, 'default');
  assert.equal(info.Images, 1);
  assert.equal(info.Names, 2);
  assert.ok(info.Usage.ContentBlobs >= 4, JSON.stringify(info.Usage));
  assert.equal(await h.ok('info', '--format', '{{.Images}} {{.Snapshotter}}'), `1 ${info.Snapshotter}\n`);
  assert.match(
    await h.ok('info'),
    /\n Mode: +embedded \(no daemon\)\n Root Dir: +\S+\n Namespace: +default\n/,
  );

  const srv = await startServe();
  try {
    const sv = await srv.hoist('--address', srv.socket, 'version', '--format', '{{.Server.Version}}');
    assert.equal(sv.code, 0, sv.stderr);
    assert.match(sv.stdout, /^1\.6\.\d+\+hoist\.\S+\n$/, "containerd's Version service answered");
    const text = await srv.hoist('--address', srv.socket, 'version');
    assert.match(
      text.stdout,
      /\nServer:\n Version: +1\.6\.\d+\+hoist\.\S+\n Revision: +hoist-\S+\n Address: +\S+hoist\.sock\n$/,
    );
    const si = await srv.hoist('--address', srv.socket, 'info', '-f', '{{.Mode}} {{.Address}}');
    assert.equal(si.stdout, `daemon ${srv.socket}\n`);
  } finally {
    await srv.stop();
  }
});

test("docker's other spellings: image pull, image push, inspect, system info", async () => {
  const s = await tempStore();
  try {
    await s.ok('image', 'pull', '-q', '--plain-http', `${repo}:1`);
    const id = built[0]!.top.digest;
    assert.equal((await s.ok('inspect', '-f', '{{.Id}}', `${repo}:1`)).trim(), id);
    assert.equal(await s.ok('inspect', `${repo}:1`), await s.ok('image', 'inspect', `${repo}:1`));
    await s.ok('tag', `${repo}:1`, `${repo}:pushed`);
    await s.ok('image', 'push', '--plain-http', `${repo}:pushed`);
    assert.ok(reg.stats().requests.some((r) => r.method === 'PUT' && r.path.endsWith('/manifests/pushed')));
    assert.equal((await s.ok('system', 'info', '--format', '{{.Images}}')).trim(), '1');
    assert.equal(await s.ok('system', 'info', '--format', 'json'), await s.ok('info', '--format', 'json'));
  } finally {
    await s.cleanup();
  }
});

test('layers unpacked before hoist recorded their size: measured (snapshot usage) and recorded by the next unpack', async () => {
  const s = await tempStore();
  try {
    await s.ok('pull', '-q', '--plain-http', `${repo}:1`);
    // Make the store look like one an earlier hoist wrote: no size on the layer snapshots or the config.
    const { Hoist } = await import('../../src/index.ts');
    const hoist = await Hoist.open({ root: s.root });
    try {
      const ctx = { namespace: 'default' };
      const sn = hoist.backend.snapshotters.get('overlayfs')!;
      const key = 'hoist.io/uncompressed-size';
      for (const info of await sn.list(ctx))
        await sn.update(ctx, { name: info.name, labels: { [key]: '' } }, [`labels.${key}`]);
      const config = built[0]!.images[0]!.config.digest as Digest;
      await hoist.backend.content.update(ctx, { digest: config, labels: { 'hoist.io/unpacked-size': '' } }, [
        'labels.hoist.io/unpacked-size',
      ]);
      assert.ok(
        (await sn.list(ctx)).every((i) => i.labels[key] === undefined),
        'labels removed',
      );
    } finally {
      await hoist.close();
    }
    const [before] = jsonLines(await s.ok('images', '--format', 'json'));
    assert.equal(before!.Size, 'N/A', 'nothing recorded: not a guess');
    // history measures the snapshots instead (read-only: it records nothing).
    const steps = jsonLines(await s.ok('history', '--format', 'json', `${repo}:1`));
    assert.ok(
      (steps[0]!.SizeBytes as number) >= 200_000,
      `the random layer measured: ${steps[0]!.SizeBytes}`,
    );

    await s.ok('pull', '-q', '--plain-http', `${repo}:1`);
    const [after] = jsonLines(await s.ok('images', '--format', 'json'));
    assert.ok(
      (after!.SizeBytes as number) >= 200_000,
      `measured and recorded by the pull: ${after!.SizeBytes}`,
    );
    assert.notEqual(after!.Size, 'N/A');
  } finally {
    await s.cleanup();
  }
});
