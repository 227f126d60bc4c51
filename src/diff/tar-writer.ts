// A minimal streaming tar writer for layers hoist creates (commit, rebuilt layers): ustar headers plus a
// PAX extended header whenever a field does not fit or carries bytes (long or non-ASCII names, xattrs
// such as security.capability, large ids). Written here rather than with tar-stream because tar-stream
// encodes PAX values as UTF-8 text, which corrupts binary xattr values; a layer must carry them exactly.
import type { Readable } from 'node:stream';

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

const TYPEFLAG: Record<TarType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export interface TarHeader {
  /** Path inside the layer, as bytes (directories without a trailing slash; it is added). */
  name: Buffer;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (fractions kept in PAX `mtime`). */
  mtime: number;
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  /** xattr name → raw value, written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Array<[string, Buffer]>;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> <key>=<value>\n" where len counts itself: find the fixed point.
  const rest = Buffer.byteLength(` ${key}=`) + value.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length + rest !== len) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function octal(buf: Buffer, offset: number, width: number, value: number): boolean {
  const s = Math.floor(value).toString(8);
  if (s.length > width - 1) return false;
  buf.write(s.padStart(width - 1, '0'), offset, 'latin1');
  buf[offset + width - 1] = 0;
  return true;
}

function ustar(h: {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  h.name.copy(b, 0, 0, Math.min(100, h.name.length));
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156); // checksum computed over spaces
  b.write(h.typeflag, 156, 'latin1');
  h.linkname.copy(b, 157, 0, Math.min(100, h.linkname.length));
  b.write('ustar\u000000', 257, 'latin1');
  octal(b, 329, 8, h.devmajor);
  octal(b, 337, 8, h.devminor);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return b;
}

const fits = (v: number, width: number) => Math.floor(v).toString(8).length <= width - 1;
const isAscii = (b: Buffer) => b.every((c) => c < 0x80);

/** The header block(s) for one entry: a PAX header first when anything does not fit ustar. */
export function encodeHeader(h: TarHeader): Buffer {
  const name =
    h.type === 'dir' && h.name[h.name.length - 1] !== 0x2f
      ? Buffer.concat([h.name, Buffer.from('/')])
      : h.name;
  const linkname = h.linkname ?? Buffer.alloc(0);
  const records: Buffer[] = [];
  if (name.length > 100 || !isAscii(name)) records.push(paxRecord('path', name));
  if (linkname.length > 100 || !isAscii(linkname)) records.push(paxRecord('linkpath', linkname));
  if (!fits(h.uid, 8)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (!fits(h.gid, 8)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (!fits(h.size, 12)) records.push(paxRecord('size', Buffer.from(String(h.size))));
  if (!Number.isInteger(h.mtime)) records.push(paxRecord('mtime', Buffer.from(h.mtime.toFixed(9))));
  for (const [k, v] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustar({
    name: name.length > 100 ? name.subarray(0, 100) : name,
    mode: h.mode,
    uid: fits(h.uid, 8) ? h.uid : 0,
    gid: fits(h.gid, 8) ? h.gid : 0,
    size: fits(h.size, 12) ? h.size : 0,
    mtime: Math.floor(h.mtime),
    typeflag: TYPEFLAG[h.type],
    linkname: linkname.length > 100 ? linkname.subarray(0, 100) : linkname,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const pax = ustar({
    name: Buffer.from('PaxHeader'),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: Math.floor(h.mtime),
    typeflag: 'x',
    linkname: Buffer.alloc(0),
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([pax, body, padding(body.length), main]);
}

export function padding(size: number): Buffer {
  const rem = size % 512;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - rem);
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

/** Yield an entry: its header, then (for files) the body streamed from `body`, then padding. */
export async function* tarEntry(h: TarHeader, body?: () => Readable): AsyncGenerator<Buffer> {
  yield encodeHeader(h);
  if (h.type !== 'file' || h.size === 0 || !body) return;
  let seen = 0;
  for await (const chunk of body()) {
    const c = chunk as Buffer;
    seen += c.length;
    // A file that grew while being read would corrupt the archive: stop at the size in the header.
    if (seen > h.size) {
      yield c.subarray(0, c.length - (seen - h.size));
      seen = h.size;
      break;
    }
    yield c;
  }
  if (seen < h.size) throw new Error(`file shrank while being archived (${seen} of ${h.size} bytes)`);
  yield padding(h.size);
}
