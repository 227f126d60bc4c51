// The real ctr unpacks through hoist serve (Snapshots + Diff services): `ctr images pull` with unpack
// into overlayfs and native, `ctr images check` sees it unpacked, `ctr snapshots ls|info|usage|tree|rm`
// work, and the tree ctr unpacked through hoist equals `hoist image unpack --to`.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Metadata } from '@grpc/grpc-js';
import { Diff } from '../../src/api/gen/containerd/services/diff/v1/diff_pb.ts';
import { Leases } from '../../src/api/gen/containerd/services/leases/v1/leases_pb.ts';
import { Snapshots } from '../../src/api/gen/containerd/services/snapshots/v1/snapshots_pb.ts';
import type { Digest } from '../../src/core/digest.ts';
import { chainIds } from '../../src/images/rootfs.ts';
import { layer1, layer2, layer3 } from '../helpers/fixture-rootfs.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { type ServedStore, startServe } from '../helpers/serve.ts';
import { describeTree, diffTrees } from '../helpers/tree.ts';

const isRoot = process.getuid?.() === 0;
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;
let srv: ServedStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-serve-sn-'));
  built = await writeOciLayout(join(dir, 'layout'), [
    { tag: 'v1', image: { layers: [await layer1(), await layer2(), await layer3()] } },
  ]);
  reg = await startRegistry();
  await pushLayout(join(dir, 'layout'), 'sn/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/sn/app:v1`;
  srv = await startServe();
});

after(async () => {
  await srv?.cleanup();
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('ctr images pull unpacks through hoist serve; ctr snapshots commands; same tree as hoist', {
  skip: !isRoot && 'needs root (fixture ownership, devices)',
}, async () => {
  const chains = chainIds(built[0]!.images[0]!.layers.map((l) => l.diffId as Digest));
  for (const sn of ['overlayfs', 'native']) {
    await srv.ctrOk('images', 'pull', '--plain-http', '--snapshotter', sn, ref);
    const check = await srv.ctrOk('images', 'check', '--snapshotter', sn);
    assert.match(check.split('\n').find((l) => l.startsWith(ref)) ?? '', /complete.*\strue\s*$/, check);
    const ls = await srv.ctrOk('snapshots', '--snapshotter', sn, 'ls');
    for (const c of chains) assert.ok(ls.includes(c), `${sn}: ${c} listed:\n${ls}`);
    assert.match(ls, /Committed/);
    const info = JSON.parse(await srv.ctrOk('snapshots', '--snapshotter', sn, 'info', chains[2]!)) as {
      Parent: string;
      Kind: string;
    };
    assert.equal(info.Parent, chains[1]);
    assert.match(
      await srv.ctrOk('snapshots', '--snapshotter', sn, 'usage', chains[0]!),
      /KEY\s+SIZE\s+INODES/,
    );
    assert.match(
      await srv.ctrOk('snapshots', '--snapshotter', sn, 'tree'),
      new RegExp(chains[2]!.replace(':', '.')),
    );
  }

  // The native snapshot ctr made through hoist, viewed and read, equals hoist's own extraction.
  // The committed top snapshot's own directory (a lease-less view could be collected before it is read):
  // native snapshots are full trees, numbered in creation order, so the top chain is the highest id.
  const base = join(srv.root, 'snapshots', 'native', 'snapshots');
  const ids = (await readdir(base))
    .map(Number)
    .filter(Number.isInteger)
    .sort((a, b) => a - b);
  assert.equal(ids.length, 3, `three committed native snapshots: ${ids.join(',')}`);
  const source = join(base, String(ids.at(-1)), 'fs');
  const plain = join(dir, 'plain');
  const r = await srv.hoist('image', 'unpack', ref, '--to', plain);
  assert.equal(r.code, 0, r.stderr);
  const want = await describeTree(plain, { mtimes: true });
  const got = await describeTree(source, { mtimes: true });
  const diff = diffTrees(want, got, ['hoist image unpack --to', 'ctr via hoist serve']);
  assert.deepEqual(diff, [], diff.join('\n'));

  // rm: a parent with children is refused with containerd's message.
  const busy = await srv.ctr('snapshots', '--snapshotter', 'native', 'rm', chains[1]!);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /cannot remove snapshot with child/);
});

test('Diff.Diff: the layer between two native snapshots, stored as a gzip blob', {
  skip: !isRoot && 'needs root (fixture ownership, devices)',
}, async () => {
  const chains = chainIds(built[0]!.images[0]!.layers.map((l) => l.diffId as Digest));
  const clients = new TestClients(srv.socket);
  try {
    const meta = new Metadata();
    meta.set('containerd-namespace', 'default');
    // Under a lease, as containerd's clients do: without one the daemon's GC (scheduled a few seconds
    // after the pulls above dropped theirs) may take these snapshots while the test uses them.
    const lease = await unary<{ lease: { id: string } }>(clients.client(Leases), 'create', {}, meta);
    meta.set('containerd-lease', lease.lease.id);
    const source = async (method: 'prepare' | 'view', key: string) =>
      (
        await unary<{ mounts: { source: string }[] }>(
          clients.client(Snapshots),
          method,
          { snapshotter: 'native', key, parent: chains[2]! },
          meta,
        )
      ).mounts[0]!.source;
    const work = await source('prepare', 'd-work');
    const left = await source('view', 'd-left');
    await writeFile(join(work, 'etc/added-by-diff'), 'hello\n');
    const bind = (source: string) => ({ type: 'bind', source, target: '', options: ['rbind', 'ro'] });
    const r = await unary<{ diff: { digest: string; mediaType: string } }>(
      clients.client(Diff),
      'diff',
      { left: [bind(left)], right: [bind(work)], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
      meta,
    );
    assert.equal(r.diff.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const blob = await srv.ctr('content', 'get', r.diff.digest);
    assert.equal(blob.code, 0, blob.stderr);
    const tar = gunzipSync(Buffer.from(blob.stdout, 'latin1')).toString('latin1');
    assert.ok(tar.includes('etc/added-by-diff'), 'the new file is in the layer');
    assert.ok(!tar.includes('usr/bin/busybox'), 'unchanged files are not');
  } finally {
    clients.close();
  }
});
