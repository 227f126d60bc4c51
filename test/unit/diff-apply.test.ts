import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { describe, test } from 'node:test';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { isHoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { applyLayer } from '../../src/diff/apply.ts';
import { decompressorFor } from '../../src/diff/decompress.ts';
import {
  apply,
  gzip,
  isRoot,
  packTar,
  rawEntry,
  rawTar,
  sha256,
  TGZ,
  TZST,
  withoutEnd,
  workspace,
  xattrOf,
  zstd,
} from './diff-fixtures.ts';

const T1 = new Date('2021-03-04T05:06:07Z');
const T2 = new Date('2022-01-02T03:04:05Z');
const perm = (mode: number) => mode & 0o7777;

const LONG_DIR = `deep/${'d'.repeat(120)}`;
const LONG_TARGET = `../${'t'.repeat(200)}`;

/** A layer with one of everything. */
async function everyKind(): Promise<Buffer> {
  return packTar([
    { header: { name: 'etc', type: 'directory', mode: 0o750, uid: 0, gid: 4, mtime: T1 } },
    { header: { name: 'etc/hello', mode: 0o644, uid: 1000, gid: 1001, mtime: T2 }, body: 'hello\n' },
    { header: { name: 'etc/hard', type: 'link', linkname: 'etc/hello' } },
    { header: { name: 'etc/rel', type: 'symlink', linkname: 'hello', uid: 1000, gid: 1000, mtime: T2 } },
    { header: { name: 'etc/abs', type: 'symlink', linkname: '/etc/hello' } },
    { header: { name: 'usr/bin/su', mode: 0o4755, uid: 0, gid: 0 }, body: '#!su' },
    { header: { name: 'usr/bin/wall', mode: 0o2755, uid: 0, gid: 5 }, body: '#!wall' },
    { header: { name: 'tmp', type: 'directory', mode: 0o1777, mtime: T2 } },
    { header: { name: 'run/fifo', type: 'fifo', mode: 0o620, mtime: T1 } },
    { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 } },
    { header: { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 } },
    { header: { name: `${LONG_DIR}/file-with-a-long-path`, mode: 0o600 }, body: 'long' },
    { header: { name: 'longlink', type: 'symlink', linkname: LONG_TARGET } },
    {
      header: {
        name: 'bigids',
        mode: 0o640,
        pax: { uid: '3000000', gid: '3000001', mtime: '1650000000.25' },
      },
      body: 'ids',
    },
  ]);
}

describe('applyLayer: entries', () => {
  test('every entry kind, with modes, owners, link targets, devices and times', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await everyKind();
    const r = await apply(layer, { root: ws.root, whiteouts: 'delete', privileged: true });
    assert.equal(r.diffId, sha256(layer));
    assert.equal(r.size, layer.length);
    assert.equal(r.entries, 14);
    assert.deepEqual(r.warnings, []);

    const at = (p: string) => join(ws.root, p);
    const etc = await lstat(at('etc'));
    assert.ok(etc.isDirectory());
    assert.equal(perm(etc.mode), 0o750);
    assert.equal(etc.gid, 4);
    assert.equal(etc.mtimeMs, T1.getTime(), 'directory time is set after its contents');

    const hello = await lstat(at('etc/hello'));
    assert.equal(await readFile(at('etc/hello'), 'utf8'), 'hello\n');
    assert.equal(perm(hello.mode), 0o644);
    assert.equal(hello.mtimeMs, T2.getTime());
    const hard = await lstat(at('etc/hard'));
    assert.equal(hard.ino, hello.ino, 'hardlink shares the inode');
    assert.equal(hard.nlink, 2);

    assert.equal(await readlink(at('etc/rel')), 'hello');
    assert.equal(await readlink(at('etc/abs')), '/etc/hello', 'symlink targets are stored as written');
    assert.equal((await lstat(at('etc/rel'))).mtimeMs, T2.getTime(), 'symlink time (lutimes)');
    assert.equal(await readlink(at('longlink')), LONG_TARGET);
    assert.equal(await readFile(at(`${LONG_DIR}/file-with-a-long-path`), 'utf8'), 'long');

    assert.equal(perm((await lstat(at('usr/bin/su'))).mode), 0o4755, 'setuid survives chown');
    assert.equal(perm((await lstat(at('usr/bin/wall'))).mode), 0o2755, 'setgid survives chown');
    assert.equal(perm((await lstat(at('tmp'))).mode), 0o1777, 'sticky');
    const fifo = await lstat(at('run/fifo'));
    assert.ok(fifo.isFIFO());
    assert.equal(perm(fifo.mode), 0o620);
    assert.equal(fifo.mtimeMs, T1.getTime());

    if (isRoot) {
      assert.equal(hello.uid, 1000);
      assert.equal(hello.gid, 1001);
      const rel = await lstat(at('etc/rel'));
      assert.equal(rel.uid, 1000, 'symlinks are lchowned');
      const big = await lstat(at('bigids'));
      assert.equal(big.uid, 3000000, 'PAX uid');
      assert.equal(big.gid, 3000001, 'PAX gid');
      assert.equal(big.mtimeMs, 1650000000250, 'PAX mtime with a fraction');
      const nul = await lstat(at('dev/null'));
      assert.ok(nul.isCharacterDevice());
      assert.equal(nul.rdev, 0x103);
      assert.equal(perm(nul.mode), 0o666);
      const loop = await lstat(at('dev/loop0'));
      assert.ok(loop.isBlockDevice());
      assert.equal(loop.rdev, 0x700);
      assert.equal(loop.gid, 6);
    }
    const names = await readdir(ws.root);
    assert.ok(!names.some((n) => n.startsWith('.hoist-')), `no helper files left: ${names.join(' ')}`);
  });

  test('gzip and zstd layers: diffID is the uncompressed tar', async (t) => {
    const layer = await everyKind();
    for (const [mediaType, blob] of [
      [TGZ, gzip(layer)],
      [TZST, zstd(layer)],
      [MediaType.DockerLayerGzip, gzip(layer)],
    ] as const) {
      const ws = await workspace();
      t.after(ws.done);
      const r = await apply(blob, { root: ws.root, whiteouts: 'delete', mediaType });
      assert.equal(r.diffId, sha256(layer), mediaType);
      assert.equal(r.size, layer.length);
      assert.equal(await readFile(join(ws.root, 'etc/hello'), 'utf8'), 'hello\n');
    }
  });

  test('a blob in a local file (a content store reader) is read by the applier itself, range included', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await everyKind();
    const blob = gzip(layer);
    // The blob sits between other bytes: only [start, end] is the layer.
    const file = join(ws.dir, 'blobs');
    await writeFile(file, Buffer.concat([Buffer.from('prefix'), blob, Buffer.from('suffix')]));
    const r = await applyLayer(createReadStream(file, { start: 6, end: 6 + blob.length - 1 }), {
      root: ws.root,
      whiteouts: 'delete',
      mediaType: TGZ,
    });
    assert.equal(r.diffId, sha256(layer));
    assert.equal(await readFile(join(ws.root, 'etc/hello'), 'utf8'), 'hello\n');
  });

  test('an uncompressed layer: trailing zero padding is part of the diffID', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = Buffer.concat([await packTar([{ header: { name: 'f' }, body: 'x' }]), Buffer.alloc(8192)]);
    const r = await apply(layer, { root: ws.root, whiteouts: 'delete' });
    assert.equal(r.diffId, sha256(layer));
    assert.equal(r.size, layer.length);
  });

  test('xattrs from PAX, binary values byte-exact (security.capability), SCHILY and LIBARCHIVE forms', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    // cap_setuid,cap_sys_nice+ep: bytes >= 0x80 that a UTF-8 decode would corrupt.
    const cap = Buffer.from('0100000280008000000000000000000000000000', 'hex');
    const layer = rawTar(
      rawEntry({
        name: 'bin/ping',
        body: 'ELF',
        mode: 0o755,
        pax: {
          'SCHILY.xattr.security.capability': cap,
          'SCHILY.xattr.user.comment': Buffer.from([0x00, 0xff, 0x3d, 0x0a]),
          'SCHILY.xattr.trusted.note': 'n',
        },
      }),
      rawEntry({ name: 'dir/', type: '5', pax: { 'LIBARCHIVE.xattr.user.lib%20name': Buffer.from('aGk=') } }),
    );
    const r = await apply(layer, { root: ws.root, whiteouts: 'delete', privileged: true });
    assert.deepEqual(r.warnings, []);
    assert.equal(xattrOf(join(ws.root, 'bin/ping'), 'security.capability'), `0x${cap.toString('hex')}`);
    assert.equal(xattrOf(join(ws.root, 'bin/ping'), 'user.comment'), '0x00ff3d0a');
    assert.equal(xattrOf(join(ws.root, 'bin/ping'), 'trusted.note'), '0x6e');
    assert.equal(xattrOf(join(ws.root, 'dir'), 'user.lib name'), '0x6869');
    assert.equal(perm((await lstat(join(ws.root, 'bin/ping'))).mode), 0o755);
  });

  test('names that are not UTF-8 are kept byte for byte', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const name = Buffer.from([0x64, 0xe9, 0x6a, 0xe0]); // "déjà" in latin1
    const layer = rawTar(
      rawEntry({ name: Buffer.concat([name, Buffer.from('/')]), type: '5' }),
      rawEntry({ name: Buffer.concat([name, Buffer.from('/f')]), body: 'x' }),
      rawEntry({ name: 'via-pax', pax: { path: Buffer.concat([name, Buffer.from('/g')]) }, body: 'y' }),
      rawEntry({ name: 'l', type: '2', linkname: Buffer.concat([name, Buffer.from('/f')]) }),
    );
    await apply(layer, { root: ws.root, whiteouts: 'delete' });
    const names = (await readdir(ws.root, { encoding: 'buffer' })).map((b) => b.toString('hex')).sort();
    assert.deepEqual(names, [name.toString('hex'), Buffer.from('l').toString('hex')].sort());
    const inner = await readdir(Buffer.concat([Buffer.from(`${ws.root}/`), name]), { encoding: 'buffer' });
    assert.deepEqual(inner.map(String).sort(), ['f', 'g']);
    assert.deepEqual(
      await readlink(join(ws.root, 'l'), { encoding: 'buffer' }),
      Buffer.concat([name, Buffer.from('/f')]),
    );
  });

  test('entries replace what is there; a directory over a directory keeps its contents', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const at = (p: string) => join(ws.root, p);
    await mkdir(at('keepdir'));
    await writeFile(at('keepdir/old'), 'old');
    await writeFile(at('file2dir'), 'f');
    await mkdir(at('dir2file/sub'), { recursive: true });
    await writeFile(at('dir2file/sub/x'), 'x');
    await writeFile(at('file2link'), 'f');
    await symlink('/nowhere', at('link2file'));
    await writeFile(at('overwrite'), 'a much longer old content');
    const layer = await packTar([
      { header: { name: 'keepdir', type: 'directory', mode: 0o700 } },
      { header: { name: 'file2dir', type: 'directory' } },
      { header: { name: 'file2dir/new' }, body: 'n' },
      { header: { name: 'dir2file' }, body: 'now a file' },
      { header: { name: 'file2link', type: 'symlink', linkname: 'keepdir' } },
      { header: { name: 'link2file' }, body: 'now a file' },
      { header: { name: 'overwrite' }, body: 'short' },
    ]);
    await apply(layer, { root: ws.root, whiteouts: 'delete' });
    assert.equal(await readFile(at('keepdir/old'), 'utf8'), 'old');
    assert.equal(perm((await lstat(at('keepdir'))).mode), 0o700);
    assert.equal(await readFile(at('file2dir/new'), 'utf8'), 'n');
    assert.equal(await readFile(at('dir2file'), 'utf8'), 'now a file');
    assert.equal(await readlink(at('file2link')), 'keepdir');
    assert.ok((await lstat(at('link2file'))).isFile());
    assert.equal(await readFile(at('overwrite'), 'utf8'), 'short');
  });

  test('without privileges: devices are skipped with one warning, no chown, root-only xattrs skipped', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = rawTar(
      withoutEnd(
        await packTar([
          { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
          { header: { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 } },
          { header: { name: 'ro', type: 'directory', mode: 0o555 } },
          { header: { name: 'ro/f', uid: 1234, gid: 1234 }, body: 'f' },
          { header: { name: 'p', type: 'fifo' } },
        ]),
      ),
      rawEntry({
        name: 'cap',
        body: 'x',
        pax: { 'SCHILY.xattr.security.capability': 'x', 'SCHILY.xattr.user.ok': 'y' },
      }),
    );
    const seen: string[] = [];
    const r = await apply(layer, {
      root: ws.root,
      whiteouts: 'delete',
      privileged: false,
      onWarning: (m) => seen.push(m),
    });
    assert.deepEqual(seen, r.warnings);
    const deviceWarnings = r.warnings.filter((w) => /device/.test(w));
    assert.equal(deviceWarnings.length, 1, r.warnings.join('\n'));
    assert.match(
      deviceWarnings[0]!,
      /skipped 2 device node\(s\) \(dev\/null, dev\/sda\): creating devices needs root/,
    );
    assert.ok(r.warnings.some((w) => /security\.capability on cap/.test(w)));
    await assert.rejects(lstat(join(ws.root, 'dev/null')), { code: 'ENOENT' });
    assert.ok((await lstat(join(ws.root, 'p'))).isFIFO(), 'FIFOs need no privilege');
    assert.equal((await lstat(join(ws.root, 'ro/f'))).uid, process.getuid!(), 'not chowned');
    assert.equal(
      perm((await lstat(join(ws.root, 'ro'))).mode),
      0o555,
      'final directory mode applied at the end',
    );
    assert.equal(xattrOf(join(ws.root, 'cap'), 'user.ok'), '0x79');
    assert.equal(xattrOf(join(ws.root, 'cap'), 'security.capability'), undefined);
  });
});

describe('applyLayer: failures', () => {
  test('a diffID mismatch fails naming both digests', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await packTar([{ header: { name: 'f' }, body: 'x' }]);
    const expected = sha256('something else');
    await assert.rejects(
      apply(gzip(layer), { root: ws.root, whiteouts: 'delete', mediaType: TGZ, expectedDiffId: expected }),
      (err) => {
        assert.ok(isHoistError(err, 'HOIST_DIGEST_MISMATCH'));
        assert.ok(err.message.includes(expected), err.message);
        assert.ok(err.message.includes(sha256(layer)), err.message);
        assert.match(err.message, /discarded/);
        return true;
      },
    );
    // The matching diffID passes.
    const ok = await workspace();
    t.after(ok.done);
    await apply(layer, { root: ok.root, whiteouts: 'delete', expectedDiffId: sha256(layer) });
  });

  test('a truncated gzip stream fails as corrupt compression', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const blob = gzip(await packTar([{ header: { name: 'f' }, body: 'x'.repeat(100_000) }]));
    await assert.rejects(
      apply(blob.subarray(0, blob.length - 50), { root: ws.root, whiteouts: 'delete', mediaType: TGZ }),
      (err) => isHoistError(err, 'HOIST_INVALID_ARGUMENT') && /not a valid gzip stream/.test(err.message),
    );
  });

  test('a truncated or corrupt tar fails as a malformed tar', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const layer = await packTar([{ header: { name: 'f' }, body: 'x'.repeat(5000) }]);
    await assert.rejects(
      apply(layer.subarray(0, 3000), { root: ws.root, whiteouts: 'delete' }),
      (err) =>
        isHoistError(err, 'HOIST_INVALID_ARGUMENT') &&
        /not a valid tar archive: it ends in the middle/.test(err.message),
    );
    const corrupt = Buffer.from(layer);
    corrupt[10] = 0x41; // the name changes, the checksum no longer matches
    await assert.rejects(
      apply(corrupt, { root: ws.root, whiteouts: 'delete' }),
      (err) => isHoistError(err, 'HOIST_INVALID_ARGUMENT') && /bad header checksum/.test(err.message),
    );
  });

  test('unknown media types are refused; known ones pick their decompressor', () => {
    assert.throws(
      () => decompressorFor('application/vnd.oci.image.layer.v1.tar+lz4'),
      (err) => isHoistError(err, 'HOIST_UNSUPPORTED_MEDIA_TYPE') && /tar\+lz4/.test(err.message),
    );
    assert.equal(decompressorFor(MediaType.OciLayer), null);
    assert.equal(decompressorFor(MediaType.DockerLayer), null);
    assert.equal(decompressorFor(MediaType.OciLayerNondistributable), null);
    for (const mt of [
      MediaType.OciLayerGzip,
      MediaType.OciLayerZstd,
      MediaType.OciLayerNondistributableGzip,
      MediaType.OciLayerNondistributableZstd,
      MediaType.DockerLayerGzip,
      MediaType.DockerLayerZstd,
      MediaType.DockerForeignLayerGzip,
    ]) {
      assert.ok(decompressorFor(mt) instanceof Transform, mt);
    }
  });

  test('unsupported entry types and a missing root are refused clearly', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    await assert.rejects(
      apply(rawTar(rawEntry({ name: 'sparse', type: 'S' })), { root: ws.root, whiteouts: 'delete' }),
      (err) => isHoistError(err, 'HOIST_INVALID_ARGUMENT') && /'sparse' has tar type 'S'/.test(err.message),
    );
    await assert.rejects(
      apply(await packTar([]), { root: join(ws.root, 'missing'), whiteouts: 'delete' }),
      (err) => isHoistError(err, 'HOIST_INVALID_ARGUMENT') && /not a directory/.test(err.message),
    );
  });

  test('an aborted apply fails as cancelled', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const ac = new AbortController();
    const source = new PassThrough();
    source.write((await packTar([{ header: { name: 'a' }, body: 'a' }])).subarray(0, 1024));
    const p = applyLayer(source, {
      root: ws.root,
      mediaType: MediaType.OciLayer,
      whiteouts: 'delete',
      signal: ac.signal,
    });
    setImmediate(() => ac.abort());
    await assert.rejects(p, (err) => isHoistError(err, 'HOIST_CANCELLED'));
  });
});

describe('applyLayer: bounded memory', () => {
  test('a 200 MiB file streams through without being buffered', async (t) => {
    const ws = await workspace();
    t.after(ws.done);
    const SIZE = 200 * 1024 * 1024;
    const pack = tar.pack();
    const tarHash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _e, cb) {
        tarHash.update(chunk);
        cb(null, chunk);
      },
    });
    const blob = pack.pipe(tap).pipe(createGzip({ level: 1 }));
    const writeBody = async () => {
      const entry = pack.entry({ name: 'zeros', size: SIZE });
      const chunk = Buffer.alloc(1024 * 1024);
      for (let written = 0; written < SIZE; written += chunk.length) {
        if (!entry.write(chunk)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
      }
      entry.end(Buffer.alloc(0)); // streamx's end() takes an optional last chunk, typed as required
      pack.finalize();
    };
    let peak = 0;
    const base = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }, 5);
    try {
      const [r] = await Promise.all([
        applyLayer(blob, { root: ws.root, mediaType: TGZ, whiteouts: 'delete' }),
        writeBody(),
      ]);
      assert.equal(r.diffId, `sha256:${tarHash.digest('hex')}`);
    } finally {
      clearInterval(sampler);
    }
    const st = await lstat(join(ws.root, 'zeros'));
    assert.equal(st.size, SIZE);
    const fileHash = createHash('sha256');
    for await (const c of createReadStream(join(ws.root, 'zeros'))) fileHash.update(c as Buffer);
    const zeros = createHash('sha256');
    const mib = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 200; i++) zeros.update(mib);
    assert.equal(fileHash.digest('hex'), zeros.digest('hex'));
    assert.ok(peak < 64 * 1024 * 1024, `peak buffer memory ${Math.round(peak / 1048576)} MiB`);
  });
});
