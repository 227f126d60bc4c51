// Hostile archives beyond archive-load's bad ones: duplicate entries, link loops, PAX headers carrying
// hostile or overlong paths, and archives with too many entries or too many loose files. Each is one
// clear error and leaves nothing stored (no image, no blob once GC has run).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { loadArchive } from '../../src/archive/load.ts';
import { spoolArchive } from '../../src/archive/spool.ts';
import { sha256 } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { tarOf } from '../helpers/image-builder.ts';
import { NODE } from '../helpers/run-hoist.ts';
import { type ScratchStore, scratchStore } from '../helpers/scratch-store.ts';

const run = promisify(execFile);
const stores: ScratchStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
});

interface Entry {
  name: string;
  data?: Buffer | string;
  type?: 'symlink' | 'link' | 'directory';
  linkname?: string;
  pax?: Record<string, string>;
}

async function collect(s: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function tarBuffer(entries: Iterable<Entry>): Promise<Buffer> {
  const pack = tar.pack();
  const done = collect(pack as unknown as AsyncIterable<Uint8Array>);
  for (const e of entries) {
    const header = { name: e.name, ...(e.pax ? { pax: e.pax } : {}) };
    if (e.type) pack.entry({ ...header, type: e.type, linkname: e.linkname ?? '' });
    else pack.entry(header, Buffer.from(e.data ?? ''));
  }
  pack.finalize();
  return done;
}

const blobEntry = (b: Buffer): Entry => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, data: b });
const desc = (mediaType: string, b: Buffer) => ({ mediaType, digest: sha256(b), size: b.length });

async function validImage(): Promise<{ entries: Entry[]; layerTar: Buffer; config: Buffer }> {
  const layerTar = await collect(tarOf({ 'etc/a': 'a' }));
  const layer = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: desc(MediaType.OciConfig, config),
      layers: [desc(MediaType.OciLayerGzip, layer)],
    }),
  );
  const index = {
    schemaVersion: 2,
    manifests: [
      { ...desc(MediaType.OciManifest, manifest), annotations: { 'io.containerd.image.name': 'x.io/a:1' } },
    ],
  };
  return {
    entries: [
      blobEntry(layer),
      blobEntry(config),
      blobEntry(manifest),
      { name: 'index.json', data: JSON.stringify(index) },
    ],
    layerTar,
    config,
  };
}

/** One ustar header block (name, type flag, size, link target), checksum included. */
function ustar(name: string, type: string, size: number, linkname = ''): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

async function refused(bytes: Buffer, code: string, message: RegExp): Promise<void> {
  const s = await scratchStore();
  stores.push(s);
  await assert.rejects(loadArchive(s.backend, s.ctx, Readable.from([bytes])), (err: unknown) => {
    assert.ok(err instanceof HoistError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    assert.ok(err.message.length < 600, `a message of ${err.message.length} characters`);
    return true;
  });
  await s.assertNothingStored();
}

test('the valid archive these cases start from loads', async () => {
  const s = await scratchStore();
  stores.push(s);
  await loadArchive(s.backend, s.ctx, Readable.from([await tarBuffer((await validImage()).entries)]));
  assert.deepEqual(
    (await s.backend.images.list(s.ctx)).map((i) => i.name),
    ['x.io/a:1'],
  );
});

test('duplicate entries are refused: a second index.json, a blob given twice', async () => {
  const { entries } = await validImage();
  const other = JSON.stringify({ schemaVersion: 2, manifests: [] });
  await refused(
    await tarBuffer([...entries, { name: 'index.json', data: other }]),
    'HOIST_INVALID_ARGUMENT',
    /entry "index.json" appears twice/,
  );
  await refused(
    await tarBuffer([entries[0]!, ...entries]),
    'HOIST_INVALID_ARGUMENT',
    /entry "blobs\/sha256\/[0-9a-f]{64}" appears twice/,
  );
  await refused(
    await tarBuffer([{ name: './index.json', data: other }, ...entries]),
    'HOIST_INVALID_ARGUMENT',
    /appears twice/,
  );
});

test('a link loop a manifest.json names is refused', async () => {
  const { layerTar, config } = await validImage();
  const bytes = await tarBuffer([
    { name: 'c.json', data: config },
    { name: 'L/a.tar', type: 'symlink', linkname: 'b.tar' },
    { name: 'L/b.tar', type: 'symlink', linkname: 'a.tar' },
    { name: 'L/real.tar', data: layerTar },
    {
      name: 'manifest.json',
      data: JSON.stringify([{ Config: 'c.json', RepoTags: ['a:1'], Layers: ['L/a.tar'] }]),
    },
  ]);
  await refused(bytes, 'HOIST_INVALID_ARGUMENT', /link "L\/a.tar" is part of a loop/);
});

test('PAX headers with hostile paths: .., absolute, NUL, and a 100,000-character name', async () => {
  const { entries } = await validImage();
  const cases: [Record<string, string>, RegExp][] = [
    [{ path: '../../etc/cron.d/x' }, /climbs out of the archive/],
    [{ path: '/etc/cron.d/x' }, /absolute path/],
    [{ path: 'blobs/sha256/x\u0000y' }, /NUL byte/],
    [{ path: `${'a/'.repeat(50_000)}../../../../x` }, /100013 characters\) climbs out/],
    [{ linkpath: '../../../etc/shadow' }, /points outside the archive/],
  ];
  for (const [pax, message] of cases) {
    const hostile: Entry = pax.linkpath
      ? { name: 'blobs/sha256/l', type: 'symlink', linkname: 'x', pax }
      : { name: 'innocent', data: 'x', pax };
    await refused(await tarBuffer([...entries, hostile]), 'HOIST_INVALID_ARGUMENT', message);
  }
});

test('more loose files than an image archive holds are refused before the store fills with them', async () => {
  const s = await scratchStore();
  stores.push(s);
  const bytes = await tarBuffer(Array.from({ length: 20 }, (_, i) => ({ name: `junk/${i}`, data: 'x' })));
  await assert.rejects(
    spoolArchive(s.backend.content, { ...s.ctx }, Readable.from([bytes]), {
      refPrefix: 't',
      maxLooseFiles: 5,
    }),
    (err: unknown) =>
      err instanceof HoistError && err.code === 'HOIST_TOO_LARGE' && /more than 5 files/.test(err.message),
  );
});

test('100,000 entries: refused at the entry cap, in bounded memory, nothing stored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-100k-'));
  try {
    // Cheap entries of each kind hoist keeps something for: documents, links, directories. Written as raw
    // ustar headers: tar-stream takes many seconds to pack 100,000 entries on a busy machine.
    const blocks: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) {
      if (i % 3 === 0) blocks.push(ustar(`d/${i}.json`, '0', 2), Buffer.alloc(512, 0).fill('{}', 0, 2));
      else if (i % 3 === 1) blocks.push(ustar(`l/${i}`, '2', 0, `${i + 1}`));
      else blocks.push(ustar(`dir/${i}/`, '5', 0));
    }
    blocks.push(Buffer.alloc(1024));
    const archive = join(dir, 'many.tar');
    await writeFile(archive, Buffer.concat(blocks));
    // In a child process, so its peak RSS is the load's alone.
    const script = `
      import { createReadStream } from 'node:fs';
      import { loadArchive } from ${JSON.stringify(new URL('../../src/archive/load.ts', import.meta.url).href)};
      import { openEmbedded } from ${JSON.stringify(new URL('../../src/embedded/backend.ts', import.meta.url).href)};
      const b = await openEmbedded(${JSON.stringify(join(dir, 'root'))});
      let error;
      try { await loadArchive(b, { namespace: 'default' }, createReadStream(${JSON.stringify(archive)})); }
      catch (e) { error = { code: e.code, message: e.message }; }
      const images = (await b.images.list({ namespace: 'default' })).length;
      const content = (await b.content.list({ namespace: 'default' })).length;
      await b.close();
      console.log(JSON.stringify({ error, images, content, maxRssKb: process.resourceUsage().maxRSS }));
    `;
    const { stdout } = await run(NODE, ['--input-type=module', '-e', script], { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout) as {
      error?: { code: string; message: string };
      images: number;
      content: number;
      maxRssKb: number;
    };
    assert.equal(r.error?.code, 'HOIST_TOO_LARGE', JSON.stringify(r));
    assert.match(r.error?.message ?? '', /more than 50000 entries/);
    assert.equal(r.images, 0);
    assert.equal(r.content, 0, 'the failed load collected what it had written');
    // Loose on purpose: the maps of 50,000 entries, Node and SQLite; an unbounded load grows without end.
    assert.ok(r.maxRssKb < 400 * 1024, `peak RSS ${Math.round(r.maxRssKb / 1024)} MiB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
