// A kubelet pull through `hoist serve --containerd` survives the daemon's SIGKILL: the layer's bytes sit in
// containerd's ingest, and when the restarted daemon gets the same CRI PullImage it asks the registry only
// for the rest (a Range request; the bytes are counted at the registry's proxy) and the image lands in
// containerd's k8s.io namespace under the CRI's names, with no ingest left behind.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { openGrpc } from '../../src/client/grpc/backend.ts';
import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { waitFor } from '../helpers/hoist-process.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { startServe } from '../helpers/serve.ts';

const skip = process.getuid?.() === 0 ? false : 'needs root (containerd)';
/** Random bytes do not compress: the layer blob is about this big. */
const LAYER_BYTES = 24 * 1024 * 1024;
/** Where the proxy holds the layer download. */
const HOLD_AT = 9 * 1024 * 1024;

let reg: TestRegistry;
let work: string;
let image: BuiltEntry;
let ref: string;
let d: Containerd;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-node-resume-'));
  [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'big', image: { layers: [{ randomBytes: LAYER_BYTES }] } },
  ])) as [BuiltEntry];
  reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'node/big:1', reg.registryHost, { srcTag: 'big' });
  ref = `${reg.host}/node/big:1`;
  d = await startContainerd();
});

after(async () => {
  await d?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('SIGKILL of hoist serve mid-pull; restarted, the same CRI pull resumes in containerd', {
  skip,
}, async () => {
  const layer = image.images[0]!.layers[0]!;
  const containerd = await openGrpc(d.socket);
  const k8s = { namespace: 'k8s.io' };
  const pull = (socket: string) => {
    const clients = new TestClients(socket);
    const p = unary<{ imageRef: string }>(
      clients.client(ImageService),
      'pullImage',
      { image: { image: ref } },
      new Metadata(),
    );
    return p.finally(() => clients.close());
  };
  try {
    const first = await startServe({ args: ['--containerd', d.socket] });
    const hold = reg.holdBlob(layer.digest, HOLD_AT);
    const killed = pull(first.socket).then(
      () => assert.fail('the pull finished although its layer was held'),
      () => undefined,
    );
    await hold.reached;
    // The held bytes are in containerd's ingest (written through its Content.Write stream).
    await waitFor(async () => {
      const s = await containerd.content.listStatuses(k8s);
      // containerd's ListStatuses leaves `expected` empty: hoist's ingest ref names the digest.
      return s.some((x) => x.ref.endsWith(layer.digest) && x.offset === HOLD_AT);
    }, 'the held bytes in containerd’s ingest');
    first.child.kill('SIGKILL');
    await killed;
    await first.cleanup();
    hold.release();

    reg.resetStats();
    const second = await startServe({ args: ['--containerd', d.socket] });
    try {
      const r = await pull(second.socket);
      assert.equal(r.imageRef, image.images[0]!.config.digest);
    } finally {
      await second.cleanup();
    }
    const gets = reg
      .stats()
      .requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${layer.digest}`));
    assert.equal(gets.length, 1, JSON.stringify(gets));
    assert.equal(gets[0]!.range, `bytes=${HOLD_AT}-`, 'asked only for the rest');
    assert.equal(gets[0]!.bytes, layer.size - HOLD_AT, 'the rest, counted at the proxy');

    const names = (await d.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q')).split('\n').filter(Boolean);
    assert.equal(names.length, 3, names.join(', '));
    assert.ok((await containerd.content.info(k8s, layer.digest as never)).size === layer.size);
    assert.deepEqual(await containerd.content.listStatuses(k8s), [], 'no ingest left');
  } finally {
    await containerd.close();
  }
});
