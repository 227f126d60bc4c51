// A Kubernetes node's image side, end to end on real components: containerd 1.6 with its CRI plugin runs
// pods (runc, host network), and `hoist serve --containerd` answers the kubelet's image calls on that
// containerd's store. A CRI client makes the kubelet's calls: pulls through hoist from a registry that
// wants credentials, then RunPodSandbox, CreateContainer and StartContainer through containerd's CRI with
// those images; the container's exit status and log come back. Both CRIs agree on the images, hoist's
// RemoveImage leaves neither names nor blobs in containerd, ImageFsInfo matches the snapshotter's disk.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { type Containerd, startContainerd } from '../helpers/containerd.ts';
import { RuntimeService } from '../helpers/gen/k8s/cri/runtime/v1/runtime_pb.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { type BuiltEntry, pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tableRows } from '../helpers/run-hoist.ts';
import { type ServedStore, startServe } from '../helpers/serve.ts';

const isRoot = process.getuid?.() === 0;
const BUSYBOX = '/bin/busybox'; // Debian's busybox-static: one static binary, no libc needed in the image
const skip = !isRoot ? 'needs root (containerd, runc, overlay mounts)' : false;

let reg: TestRegistry;
let work: string;
let pause: BuiltEntry;
let app: BuiltEntry;
let pauseRef: string;
let appRef: string;
let d: Containerd;
let srv: ServedStore;
let hoistCri: TestClients;
let ctrdCri: TestClients;

interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string | bigint;
}

const call = <T>(
  clients: TestClients,
  svc: typeof ImageService | typeof RuntimeService,
  method: string,
  req: unknown,
) => unary<T>(clients.client(svc), method, req, new Metadata());
const hoistImages = <T>(method: string, req: unknown) => call<T>(hoistCri, ImageService, method, req);
const ctrdImages = <T>(method: string, req: unknown) => call<T>(ctrdCri, ImageService, method, req);
const runtime = <T>(method: string, req: unknown) => call<T>(ctrdCri, RuntimeService, method, req);

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'hoist-node-'));
  const busybox = { content: readFileSync(BUSYBOX), mode: 0o755 };
  // The pause image: busybox sleeping as the sandbox's process. The app shares its busybox layer.
  [pause, app] = (await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'pause',
      image: {
        layers: [{ 'bin/busybox': busybox }],
        config: { Entrypoint: ['/bin/busybox', 'sleep', '86400'] },
      },
    },
    {
      tag: 'app',
      image: {
        layers: [{ 'bin/busybox': busybox }, { 'etc/message': 'hello from an image hoist pulled\n' }],
        config: { Cmd: ['/bin/busybox', 'sh', '-c', 'cat /etc/message; echo to-stderr >&2; exit 7'] },
      },
    },
  ])) as [BuiltEntry, BuiltEntry];
  reg = await startRegistry({ auth: 'basic' });
  const creds = { username: 'testuser', password: reg.users.testuser! };
  await pushLayout(join(work, 'layout'), 'node/pause:1', reg.registryHost, { srcTag: 'pause', creds });
  await pushLayout(join(work, 'layout'), 'node/app:1', reg.registryHost, { srcTag: 'app', creds });
  pauseRef = `${reg.host}/node/pause:1`;
  appRef = `${reg.host}/node/app:1`;
  d = await startContainerd({ cri: true, sandboxImage: pauseRef });
  srv = await startServe({ args: ['--containerd', d.socket] });
  hoistCri = new TestClients(srv.socket);
  ctrdCri = new TestClients(d.socket);
});

after(async () => {
  hoistCri?.close();
  ctrdCri?.close();
  await srv?.cleanup();
  await d?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const auth = () => ({ username: 'testuser', password: reg.users.testuser!, serverAddress: reg.host });
const contentDigests = async () =>
  (await d.ctrOk('-n', 'k8s.io', 'content', 'ls', '-q')).split('\n').filter(Boolean).sort();
const names = async () =>
  (await d.ctrOk('-n', 'k8s.io', 'images', 'ls', '-q')).split('\n').filter(Boolean).sort();

test('the kubelet’s pulls go through hoist into containerd’s store, and containerd’s CRI sees them', {
  skip,
}, async () => {
  const fs0 = await hoistImages<{ imageFilesystems: { fsId: { mountpoint: string } }[] }>('imageFsInfo', {});
  assert.equal(
    fs0.imageFilesystems[0]!.fsId.mountpoint,
    join(d.root, 'io.containerd.snapshotter.v1.overlayfs'),
  );

  // Without credentials the registry refuses; with the pod's pull secret the pull goes through.
  await assert.rejects(
    hoistImages('pullImage', { image: { image: appRef } }),
    /401|unauthori[sz]ed|credentials/i,
  );
  const pulledPause = await hoistImages<{ imageRef: string }>('pullImage', {
    image: { image: pauseRef },
    auth: auth(),
  });
  const pulled = await hoistImages<{ imageRef: string }>('pullImage', {
    image: { image: appRef },
    auth: auth(),
  });
  const appImg = app.images[0]!;
  assert.equal(pulled.imageRef, appImg.config.digest);
  assert.equal(pulledPause.imageRef, pause.images[0]!.config.digest);

  // The records containerd's CRI would have made: three names per image, in k8s.io, one row in hoist's CLI.
  assert.deepEqual(
    await names(),
    [
      appImg.config.digest,
      pause.images[0]!.config.digest,
      appRef,
      `${reg.host}/node/app@${appImg.manifest.digest}`,
      pauseRef,
      `${reg.host}/node/pause@${pause.images[0]!.manifest.digest}`,
    ].sort(),
  );
  const rows = tableRows((await srv.hoist('--address', d.socket, '-n', 'k8s.io', 'images')).stdout);
  assert.equal(rows.length, 2, 'one row per image');
  // Unpacked by hoist into containerd's overlayfs (through its Diff service), not left to the runtime.
  const snaps = await d.ctrOk('-n', 'k8s.io', 'snapshots', '--snapshotter', 'overlayfs', 'ls');
  assert.equal(snaps.split('\n').filter((l) => l.includes('Committed')).length, 2, snaps);

  // containerd's CRI learns of the images from its event stream (no call of its own pulled them).
  const seen = await until('containerd’s CRI to see the image', async () => {
    const s = await ctrdImages<{ image?: CriImage }>('imageStatus', { image: { image: appRef } });
    return s.image;
  });
  assert.equal(seen.id, appImg.config.digest);
  // The fields the kubelet reads, per image, in a fixed order.
  const view = (l: { images: CriImage[] }) =>
    JSON.stringify(
      l.images
        .map((i) => ({
          id: i.id,
          repoTags: [...i.repoTags].sort(),
          repoDigests: [...i.repoDigests].sort(),
          size: String(i.size),
        }))
        .sort((a, b) => a.id.localeCompare(b.id)),
    );
  await until('both CRIs to list the same images', async () => {
    const [mine, theirs] = await Promise.all([
      hoistImages<{ images: CriImage[] }>('listImages', {}),
      ctrdImages<{ images: CriImage[] }>('listImages', {}),
    ]);
    const [a, b] = [view(mine), view(theirs)];
    return a === b && mine.images.length === 2 ? true : undefined;
  });
});

test('ImageFsInfo through hoist: the snapshotter’s disk, as containerd’s CRI reports it', {
  skip,
}, async () => {
  type Fs = {
    imageFilesystems: {
      fsId: { mountpoint: string };
      usedBytes: { value: string | bigint };
      inodesUsed: { value: string | bigint };
    }[];
  };
  const mine = (await hoistImages<Fs>('imageFsInfo', {})).imageFilesystems[0]!;
  const root = join(d.root, 'io.containerd.snapshotter.v1.overlayfs');
  // What du(1) counts in the snapshots' directories (each snapshot's fs/, as containerd's usage walks it).
  const du = promisify(execFile);
  const bytes = Number(
    (await du('sh', ['-c', `du -s -B1 -c ${root}/snapshots/*/fs | tail -1`])).stdout.split(/\s/)[0],
  );
  const inodes = Number(
    (await du('sh', ['-c', `du -s --inodes -c ${root}/snapshots/*/fs | tail -1`])).stdout.split(/\s/)[0],
  );
  assert.equal(Number(mine.usedBytes.value), bytes);
  assert.equal(Number(mine.inodesUsed.value), inodes);
  // containerd's CRI refreshes its own numbers every 10 s.
  await until(
    'containerd’s CRI to report the same usage',
    async () => {
      const theirs = (await ctrdImages<Fs>('imageFsInfo', {})).imageFilesystems[0]!;
      return String(theirs.usedBytes.value) === String(mine.usedBytes.value) &&
        theirs.fsId.mountpoint === mine.fsId.mountpoint
        ? true
        : undefined;
    },
    25_000,
  );
});

test('containerd’s CRI runs a pod from the images hoist pulled: exit status and log', { skip }, async () => {
  const imageRef = app.images[0]!.config.digest; // what PullImage answered, as the kubelet passes it on
  // The kubelet's pod: sandbox (the pause image hoist pulled), then the app container by image ID. A
  // host-network pod gets no hostname from the kubelet (it would need a UTS namespace of its own).
  const logDir = join(work, 'pods', 'default_demo_uid1');
  await mkdir(logDir, { recursive: true });
  const sandboxConfig = {
    metadata: { name: 'demo', uid: 'uid1', namespace: 'default', attempt: 0 },
    logDirectory: logDir,
    linux: { securityContext: { namespaceOptions: { network: 2 } } }, // NODE: host network, no CNI
  };
  const { podSandboxId } = await runtime<{ podSandboxId: string }>('runPodSandbox', {
    config: sandboxConfig,
  });
  try {
    const { containerId } = await runtime<{ containerId: string }>('createContainer', {
      podSandboxId,
      config: {
        metadata: { name: 'app', attempt: 0 },
        image: { image: imageRef },
        logPath: 'app/0.log',
      },
      sandboxConfig,
    });
    await mkdir(join(logDir, 'app'), { recursive: true });
    await runtime('startContainer', { containerId });
    const status = await until('the container to exit', async () => {
      const r = await runtime<{ status: { state: string | number; exitCode: number; imageRef: string } }>(
        'containerStatus',
        { containerId },
      );
      return r.status.state === 'CONTAINER_EXITED' || r.status.state === 2 ? r.status : undefined;
    });
    assert.equal(status.exitCode, 7);
    const log = await readFile(join(logDir, 'app', '0.log'), 'utf8');
    // CRI log format: <time> <stream> <F|P> <text>
    assert.match(log, /stdout F hello from an image hoist pulled/);
    assert.match(log, /stderr F to-stderr/);
    await runtime('removeContainer', { containerId });
  } finally {
    await runtime('stopPodSandbox', { podSandboxId });
    await runtime('removePodSandbox', { podSandboxId });
  }
});

test('RemoveImage through hoist: no name and no blob left in containerd, and its CRI forgets it', {
  skip,
}, async () => {
  const appImg = app.images[0]!;
  await hoistImages('removeImage', { image: { image: appRef } });
  assert.ok(!(await names()).some((n) => n.includes('/node/app') || n === appImg.config.digest));
  const left = await contentDigests();
  for (const digest of [appImg.manifest.digest, appImg.config.digest, appImg.layers[1]!.digest])
    assert.ok(!left.includes(digest), `${digest} still in containerd's content store`);
  assert.ok(left.includes(appImg.layers[0]!.digest), 'the busybox layer the pause image shares stays');
  await until('containerd’s CRI to forget the image', async () => {
    const s = await ctrdImages<{ image?: CriImage }>('imageStatus', { image: { image: appRef } });
    return s.image ? undefined : true;
  });
  // The last image: every blob and snapshot goes.
  await hoistImages('removeImage', { image: { image: pause.images[0]!.config.digest } });
  assert.deepEqual(await names(), []);
  assert.deepEqual(await contentDigests(), []);
  assert.equal((await d.ctrOk('-n', 'k8s.io', 'snapshots', 'ls')).split('\n').filter(Boolean).length, 1);
});

test('the CLI on the node: containerd_address in the config is its default address', { skip }, async () => {
  const config = join(work, 'node.toml');
  await writeFile(config, `containerd_address = ${JSON.stringify(d.socket)}\nnamespace = "k8s.io"\n`);
  const home = join(srv.dir, 'home', '.docker');
  await mkdir(home, { recursive: true });
  const token = Buffer.from(`testuser:${reg.users.testuser}`).toString('base64');
  await writeFile(join(home, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: token } } }));
  const pull = await srv.hoist('--config', config, 'pull', '-q', '--plain-http', appRef);
  assert.equal(pull.code, 0, pull.stderr);
  const rows = tableRows((await srv.hoist('--config', config, 'images')).stdout);
  assert.equal(rows.length, 1, 'one row for the image');
  // containerd's CRI sees what the CLI pulled, as the kubelet would.
  const seen = await until('containerd’s CRI to see the CLI’s pull', async () => {
    const s = await ctrdImages<{ image?: CriImage }>('imageStatus', { image: { image: appRef } });
    return s.image;
  });
  assert.equal(seen.id, app.images[0]!.config.digest);
  const rmi = await srv.hoist('--config', config, 'rmi', app.images[0]!.config.digest.slice(7, 19));
  assert.equal(rmi.code, 0, rmi.stderr);
  assert.deepEqual(await names(), []);
  assert.deepEqual(await contentDigests(), []);
});
