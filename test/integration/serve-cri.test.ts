// The Kubernetes CRI image service, driven by a CRI client (grpc-js + hoist's CRI proto) against hoist
// serve and against containerd 1.6's own CRI plugin, on the same image from the loopback registry: the
// answers agree field by field, and on hoist the CRI view, the native view (ctr) and the CLI agree.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tableRows } from '../helpers/run-hoist.ts';
import { startServe } from '../helpers/serve.ts';

const isRoot = process.getuid?.() === 0;
let reg: TestRegistry;
let dir: string;
let built: BuiltEntry[];
let ref: string;

interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string | bigint;
  uid?: { value: string | bigint };
  username: string;
  pinned: boolean;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hoist-cri-'));
  built = await writeOciLayout(join(dir, 'layout'), [
    {
      tag: 'v1',
      image: { layers: [{ 'etc/os-release': 'ID=cri\n' }, { 'bin/app': 'app\n' }], config: { User: '1000' } },
    },
  ]);
  reg = await startRegistry();
  await pushLayout(join(dir, 'layout'), 'cri/app:v1', reg.registryHost);
  ref = `${reg.registryHost}/cri/app:v1`;
});

after(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** What a kubelet or crictl does, in its order: ImageFsInfo first, then pull, list, status, remove. */
async function criSession(socket: string) {
  const clients = new TestClients(socket);
  const c = clients.client(ImageService);
  const call = <T>(method: string, req: unknown) => unary<T>(c, method, req, new Metadata());
  const fs = await call<{ imageFilesystems: { fsId: { mountpoint: string } }[] }>('imageFsInfo', {});
  const pulled = await call<{ imageRef: string }>('pullImage', { image: { image: ref } });
  const list = await call<{ images: CriImage[] }>('listImages', { filter: { image: { image: '' } } });
  const status = await call<{ image?: CriImage; info: Record<string, string> }>('imageStatus', {
    image: { image: ref },
    verbose: true,
  });
  const missing = await call<{ image?: CriImage }>('imageStatus', {
    image: { image: `${reg.registryHost}/cri/nope:1` },
  });
  return { clients, call, fs, pulled, list, status, missing };
}

const normalize = (i: CriImage) => ({
  id: i.id,
  repoTags: i.repoTags,
  repoDigests: i.repoDigests,
  size: String(i.size),
  uid: i.uid ? String(i.uid.value) : undefined,
  username: i.username,
});

let containerdView: ReturnType<typeof normalize> | undefined;

test('containerd 1.6 CRI: the reference answers', {
  skip: !isRoot && 'needs root (containerd)',
}, async () => {
  const d = await startContainerd({ cri: true });
  try {
    const s = await criSession(d.socket);
    try {
      const img = built[0]!.images[0]!;
      assert.equal(s.pulled.imageRef, img.config.digest);
      assert.equal(s.list.images.length, 1);
      containerdView = normalize(s.list.images[0]!);
      assert.equal(s.missing.image, undefined, 'a missing image is an empty answer');
      await s.call('removeImage', { image: { image: ref } });
      assert.equal((await s.call<{ images: CriImage[] }>('listImages', {})).images.length, 0);
    } finally {
      s.clients.close();
    }
  } finally {
    await d.stop();
  }
});

test('hoist serve CRI: the same answers, and the CRI, ctr and CLI views agree', async () => {
  const srv = await startServe();
  try {
    const s = await criSession(srv.socket);
    try {
      const img = built[0]!.images[0]!;
      assert.ok(s.fs.imageFilesystems[0]!.fsId.mountpoint.length > 0);
      assert.equal(s.pulled.imageRef, img.config.digest, 'image_ref is the image ID (config digest)');
      assert.equal(s.list.images.length, 1);
      const mine = normalize(s.list.images[0]!);
      assert.deepEqual(mine.repoTags, [ref]);
      assert.deepEqual(mine.repoDigests, [`${reg.registryHost}/cri/app@${img.manifest.digest}`]);
      assert.equal(mine.uid, '1000');
      if (containerdView) assert.deepEqual(mine, containerdView, 'field by field as containerd 1.6 answers');
      assert.equal(s.status.image?.id, img.config.digest);
      assert.match(s.status.info.info ?? '', /"chainID":"sha256:[0-9a-f]{64}"/);
      assert.equal(s.missing.image, undefined, 'a missing image is an empty answer');

      // One image, three names, everywhere.
      const names = (await srv.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q'))
        .split('\n')
        .filter(Boolean)
        .sort();
      assert.deepEqual(
        names,
        [img.config.digest, ref, `${reg.registryHost}/cri/app@${img.manifest.digest}`].sort(),
      );
      const rows = tableRows((await srv.hoist('-n', 'k8s.io', 'images')).stdout);
      assert.equal(rows.length, 1);
      assert.equal(tableRows((await srv.hoist('-n', 'k8s.io', 'images', '--all')).stdout).length, 3);

      // hoist rmi <id> removes it from the CRI view …
      const rmi = await srv.hoist('-n', 'k8s.io', 'rmi', img.manifest.digest.slice(7, 19));
      assert.equal(rmi.code, 0, rmi.stderr);
      assert.deepEqual((await s.call<{ images: CriImage[] }>('listImages', {})).images, []);
      // … and a CRI RemoveImage removes every name (ctr sees none left); removing again succeeds.
      await s.call('pullImage', { image: { image: ref } });
      await s.call('removeImage', { image: { image: img.config.digest.slice(7, 19) } });
      assert.equal((await srv.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q')).trim(), '');
      await s.call('removeImage', { image: { image: ref } });
    } finally {
      s.clients.close();
    }
  } finally {
    await srv.cleanup();
  }
});
