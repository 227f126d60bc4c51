// The API guide's example (docs/api.md), runnable as it is:
//   node_modules/node/bin/node api-example.mjs REGISTRY/REPOSITORY:TAG [STORE-DIR [SOCKET]]
// It pulls with progress, shows one image with many names, saves and loads it, and removes it; given the
// socket of a running `hoist serve`, it does the same calls on the store that daemon holds.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { Hoist, HoistError } from 'hoist';

const [reference, root = './hoist-store', socket] = process.argv.slice(2);
const hoist = await Hoist.open({ root });
try {
  // 1. Pull, with progress per blob. A loopback registry here speaks plain HTTP.
  const pulled = await hoist.pull(reference, {
    plainHttp: true,
    onProgress: (blob, p) => {
      if (p.status === 'done' || p.status === 'unpacked') console.log(`${blob}: ${p.status}`);
    },
  });
  console.log(`pulled ${pulled.name} as ${pulled.target.digest}`);

  // 2. One image, many names: in k8s.io hoist writes the three names the CRI expects, and lists one row.
  const k8s = hoist.inNamespace('k8s.io');
  await k8s.pull(reference, { plainHttp: true });
  const rows = await k8s.images();
  const names = await k8s.images({ all: true });
  console.log(`k8s.io: ${rows.length} image, ${names.length} names: ${names.map((r) => r.name).join(', ')}`);

  // 3. Save to an archive, remove, load it back.
  const archive = `${root}/image.tar`;
  const out = createWriteStream(archive);
  const saved = await hoist.save([reference], out);
  if (!out.closed) await once(out, 'close');
  console.log(`saved ${saved.images.length} image, ${saved.blobs} blobs`);
  await hoist.remove([reference]);
  const loaded = await hoist.load(createReadStream(archive));
  console.log(`loaded ${loaded.images.map((i) => i.names.join(' ')).join(', ')}`);

  // 4. Remove by ID: every name of the image goes, and so do its blobs.
  const [row] = await hoist.images();
  const removed = await hoist.remove([row.id]);
  console.log(
    `removed ${removed.removed[0].names.length} name(s); ${(await hoist.images()).length} images left`,
  );
} catch (err) {
  // Every error is a HoistError with a stable code (and a hint where there is something to do).
  if (err instanceof HoistError) console.error(`${err.code}: ${err.message}`);
  throw err;
} finally {
  await hoist.close();
}

// 5. A store a daemon holds: the same object over its socket (a `hoist serve`, or a containerd).
if (socket) {
  const served = await Hoist.connect(socket);
  try {
    await served.pull(reference, { plainHttp: true });
    const [row] = await served.images();
    console.log(`served: ${row.name} ${row.id}`);
    await served.remove([row.id]);
  } finally {
    await served.close();
  }
}
