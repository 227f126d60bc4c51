// Shared helpers for the diff-* tests: build layer tars in memory (tar-stream's pack for ordinary
// entries; a byte-exact writer for what pack cannot express: binary PAX values, non-UTF-8 names,
// arbitrary type flags), apply them, and watch a sentinel directory outside the root.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import tar from 'tar-stream';
import { type ApplyOptions, type ApplyResult, applyLayer } from '../../src/diff/apply.ts';

export const TAR = 'application/vnd.oci.image.layer.v1.tar';
export const TGZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const TZST = 'application/vnd.oci.image.layer.v1.tar+zstd';

export type PackEntry = { header: Parameters<tar.Pack['entry']>[0]; body?: string | Buffer };

/** A tar built by tar-stream's pack, with its end-of-archive blocks. */
export async function packTar(entries: PackEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const mtime = e.header.mtime ?? new Date(1_600_000_000_000);
    if (e.body === undefined) pack.entry({ ...e.header, mtime });
    else pack.entry({ ...e.header, mtime }, e.body);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function octal(buf: Buffer, value: number, offset: number, len: number): void {
  buf.write(`${value.toString(8).padStart(len - 1, '0')}\0`, offset, len, 'latin1');
}

export interface RawEntry {
  name: string | Buffer;
  /** Type flag character: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo. */
  type?: string;
  body?: Buffer | string;
  linkname?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** PAX records written as a preceding 'x' header; values are raw bytes. */
  pax?: Record<string, string | Buffer>;
}

function header(name: Buffer, type: string, size: number, e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  name.copy(h, 0, 0, Math.min(100, name.length));
  octal(h, e.mode ?? (type === '5' ? 0o755 : 0o644), 100, 8);
  octal(h, e.uid ?? 0, 108, 8);
  octal(h, e.gid ?? 0, 116, 8);
  octal(h, size, 124, 12);
  octal(h, e.mtime ?? 1_600_000_000, 136, 12);
  h.write(type, 156, 1, 'latin1');
  const link = e.linkname === undefined ? Buffer.alloc(0) : Buffer.from(e.linkname);
  link.copy(h, 157, 0, Math.min(100, link.length));
  h.write('ustar\x0000', 257, 8, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

export function paxRecords(records: Record<string, string | Buffer>): Buffer {
  const out: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), Buffer.from(value), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    out.push(Buffer.from(String(len)), body);
  }
  return Buffer.concat(out);
}

/** One entry, byte-exact, without end-of-archive blocks. */
export function rawEntry(e: RawEntry): Buffer {
  const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
  const parts: Buffer[] = [];
  if (e.pax) {
    const records = paxRecords(e.pax);
    parts.push(header(Buffer.from('PaxHeaders/entry'), 'x', records.length, { name: '' }), padded(records));
  }
  parts.push(header(Buffer.from(e.name), e.type ?? '0', body.length, e), padded(body));
  return Buffer.concat(parts);
}

/** A whole archive from raw entries and/or packTar output (whose end blocks are dropped). */
export function rawTar(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** A packTar result without its end-of-archive blocks, to splice raw entries after it. */
export function withoutEnd(tarBytes: Buffer): Buffer {
  let end = tarBytes.length;
  while (end >= 512 && tarBytes.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return tarBytes.subarray(0, end);
}

export const gzip = (b: Buffer): Buffer => gzipSync(b);
export const zstd = (b: Buffer): Buffer => zstdCompressSync(b);
export const sha256 = (b: Buffer | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function apply(
  bytes: Buffer,
  opts: Omit<ApplyOptions, 'mediaType'> & { mediaType?: string },
): Promise<ApplyResult> {
  return applyLayer(Readable.from([bytes]), { mediaType: TAR, ...opts });
}

/** A temp dir holding `root/` (the snapshot) and `sentinel/secret` (must never change). */
export async function workspace(): Promise<{
  dir: string;
  root: string;
  sentinel: string;
  done: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-diff-'));
  const root = join(dir, 'root');
  const sentinel = join(dir, 'sentinel');
  await mkdir(root);
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'secret'), 'untouched\n', { mode: 0o640 });
  return { dir, root, sentinel, done: () => rm(dir, { recursive: true, force: true }) };
}

/** Everything observable about the workspace outside root: names, types, modes, owners, times, xattrs. */
export async function outsideState(dir: string): Promise<string> {
  const lines: string[] = [];
  const visit = async (p: string, rel: string) => {
    const st = await lstat(p);
    const content = st.isFile()
      ? createHash('sha256')
          .update(await readFile(p))
          .digest('hex')
      : '';
    lines.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.nlink} ${content}`);
    if (st.isDirectory()) {
      for (const name of (await readdir(p)).sort()) {
        if (rel === '.' && name === 'root') continue;
        await visit(join(p, name), rel === '.' ? name : `${rel}/${name}`);
      }
    }
  };
  await visit(dir, '.');
  lines.push(xattrDump(dir), xattrDump(join(dir, 'sentinel'), true));
  return lines.join('\n');
}

/** `getfattr -d` output for a path, not following symlinks (recursively for a directory tree). */
export function xattrDump(path: string, recursive = false): string {
  try {
    return execFileSync(
      'getfattr',
      [...(recursive ? ['-R'] : []), '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? '');
  }
}

/** One xattr of a path as hex (`0x…`), or undefined. */
export function xattrOf(path: string, name: string): string | undefined {
  const out = xattrDump(path);
  const line = out.split('\n').find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1);
}

export const isRoot = process.getuid?.() === 0;
