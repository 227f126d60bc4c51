// A push parser for layer tars: bytes in, entries and their bodies out, synchronously, in one pass.
//
// The applier runs it in a worker thread with synchronous file-system calls, so it must not need an event
// loop turn per entry: each decompressed chunk is pushed through, every header in it is decoded and every
// body slice is handed to the sink before push() returns. It hashes every byte it sees (the diffID).
//
// Names, link names and PAX values are kept as latin1 byte strings / raw bytes: tar-stream decodes them as
// UTF-8, which corrupts binary xattr values and names that are not UTF-8. Header fields are read the way
// Go's archive/tar (containerd's reader) reads them: octal or GNU base-256 numbers, ustar prefixes, GNU
// long names and links, PAX local and global records; header-only types (links, devices, directories,
// FIFOs) carry no body whatever their size field says.
import { DigestVerifier } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';

/** One entry's header, decoded. Strings are latin1 byte strings; times are seconds. */
export interface TarHeader {
  /** '0'..'7' → 0..7; NUL → 0; a regular file whose name ends in '/' → 5 (a directory). */
  typeflag: number;
  name: string;
  linkname: string;
  /** Body bytes (0 for header-only types). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  devmajor: number;
  devminor: number;
  /** PAX records (local merged over global), or null. */
  pax: Map<string, Buffer> | null;
}

export interface TarSink {
  /** A header; for a regular file, its body follows through data() and then endEntry(). */
  entry(header: TarHeader): void;
  data(chunk: Buffer): void;
  endEntry(): void;
}

const BLOCK = 512;
/** Largest long-name or PAX block accepted (tar-stream's and Go's limits are of this order). */
const MAX_META = 4 * 1024 * 1024;
const TYPE_GNU_LONG_LINK = 27; // 'K'
const TYPE_GNU_LONG_NAME = 28; // 'L'
const TYPE_GNU_LONG_NAME_OLD = 30; // 'N'
const TYPE_PAX_GLOBAL = 55; // 'g'
const TYPE_PAX = 72; // 'x'
const TYPE_DIR = 5;
/** Types whose body is data; everything else is header-only (Go's isHeaderOnlyType). */
const HAS_BODY = new Set([0, 7]);

export function malformedTar(why: string): HoistError {
  return new HoistError('HOIST_INVALID_ARGUMENT', `layer is not a valid tar archive: ${why}`, {
    hint: 'the layer blob is corrupt or not a tar; pull the image again or report it to its publisher',
  });
}

function cstring(buf: Buffer, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return buf.toString('latin1', start, end);
}

/** Numeric header field: octal text (spaces/NULs tolerated) or GNU base-256. */
function numeric(buf: Buffer, start: number, len: number): number {
  const first = buf[start]!;
  if ((first & 0x80) !== 0) {
    const negative = first === 0xff;
    if (!negative && first !== 0x80) return Number.NaN;
    let sum = 0;
    for (let i = start + 1; i < start + len; i++) sum = sum * 256 + (negative ? 0xff - buf[i]! : buf[i]!);
    return negative ? -sum : sum;
  }
  let i = start;
  const stop = start + len;
  while (i < stop && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < stop; i++) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) return Number.NaN;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : value;
}

/** Unsigned and signed header checksums (old tars used signed bytes; Go accepts both). */
function checksums(block: Buffer): [number, number] {
  let unsigned = 8 * 0x20; // the checksum field itself counts as spaces
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) {
      i = 155;
      continue;
    }
    const b = block[i]!;
    unsigned += b;
    signed += b < 128 ? b : b - 256;
  }
  return [unsigned, signed];
}

function isZeroBlock(block: Buffer, at: number): boolean {
  for (let i = at; i < at + BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** PAX records: `<len> <key>=<value>\n`, values kept as raw bytes. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let rest = buf;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space <= 0) break;
    const len = Number.parseInt(rest.toString('latin1', 0, space), 10);
    if (!(len > space + 1) || len > rest.length) break;
    const record = rest.subarray(space + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) break;
    out.set(record.toString('latin1', 0, eq), Buffer.from(record.subarray(eq + 1)));
    rest = rest.subarray(len);
  }
  return out;
}

type State = 'header' | 'meta' | 'body' | 'skip';

export class TarReader {
  /** sha256 of every byte pushed: the layer's diffID once the stream ends. */
  readonly verifier = new DigestVerifier('sha256');
  readonly #sink: TarSink;
  #state: State = 'header';
  readonly #block = Buffer.alloc(BLOCK);
  #filled = 0;
  /** Body bytes left (body), or bytes to skip (skip). */
  #left = 0;
  #padding = 0;
  #meta: Buffer = Buffer.alloc(0);
  #metaType = 0;
  #longName: string | null = null;
  #longLink: string | null = null;
  #pax: Map<string, Buffer> | null = null;
  #paxGlobal: Map<string, Buffer> | null = null;
  #lastName = '';
  entries = 0;

  constructor(sink: TarSink) {
    this.#sink = sink;
  }

  push(chunk: Buffer): void {
    this.verifier.update(chunk);
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      switch (this.#state) {
        case 'body': {
          const take = Math.min(this.#left, n - off);
          this.#left -= take;
          this.#sink.data(chunk.subarray(off, off + take));
          off += take;
          if (this.#left === 0) {
            this.#sink.endEntry();
            this.#skip(this.#padding);
          }
          break;
        }
        case 'skip': {
          const take = Math.min(this.#left, n - off);
          this.#left -= take;
          off += take;
          if (this.#left === 0) this.#state = 'header';
          break;
        }
        case 'meta': {
          const take = Math.min(this.#meta.length - this.#filled, n - off);
          chunk.copy(this.#meta, this.#filled, off, off + take);
          this.#filled += take;
          off += take;
          if (this.#filled === this.#meta.length) {
            this.#filled = 0;
            this.#endMeta();
          }
          break;
        }
        default: {
          if (this.#filled === 0 && n - off >= BLOCK) {
            // A whole header in this chunk: decode it in place, no copy.
            const at = off;
            off += BLOCK;
            this.#header(chunk, at);
          } else {
            const take = Math.min(BLOCK - this.#filled, n - off);
            chunk.copy(this.#block, this.#filled, off, off + take);
            this.#filled += take;
            off += take;
            if (this.#filled === BLOCK) {
              this.#filled = 0;
              this.#header(this.#block, 0);
            }
          }
        }
      }
    }
  }

  /** The stream ended: fail when it stopped in the middle of an entry. */
  end(): void {
    if (this.#state !== 'header' || this.#filled !== 0) {
      const where = this.#lastName ? ` (after '${this.#lastName}')` : '';
      throw malformedTar(`it ends in the middle of an entry${where}`);
    }
  }

  #skip(n: number): void {
    this.#left = n;
    this.#state = n > 0 ? 'skip' : 'header';
  }

  #header(buf: Buffer, at: number): void {
    if (isZeroBlock(buf, at)) return; // end-of-archive marker or padding
    const block = at === 0 && buf.length === BLOCK ? buf : buf.subarray(at, at + BLOCK);
    const stored = numeric(block, 148, 8);
    const [unsigned, signed] = checksums(block);
    if (stored !== unsigned && stored !== signed) {
      throw malformedTar(`bad header checksum after '${this.#lastName}' (is it compressed?)`);
    }
    let typeflag = block[156] === 0 ? 0 : block[156]! - 0x30;
    let name = cstring(block, 0, 100);
    const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
    if (ustar && block[345] !== 0) name = `${cstring(block, 345, 155)}/${name}`;
    if (typeflag === 0 && name.endsWith('/')) typeflag = TYPE_DIR;
    let size = numeric(block, 124, 12);
    switch (typeflag) {
      case TYPE_GNU_LONG_LINK:
      case TYPE_GNU_LONG_NAME:
      case TYPE_GNU_LONG_NAME_OLD:
      case TYPE_PAX:
      case TYPE_PAX_GLOBAL:
        if (!(size >= 0) || size > MAX_META) throw malformedTar(`an extended header of ${size} bytes`);
        this.#metaType = typeflag;
        this.#meta = Buffer.alloc(size);
        this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
        if (size === 0) this.#endMeta();
        else this.#state = 'meta';
        return;
    }
    let linkname = block[157] === 0 ? '' : cstring(block, 157, 100);
    if (this.#longName !== null) name = this.#longName;
    if (this.#longLink !== null) linkname = this.#longLink;
    const pax = this.#pax;
    if (pax) {
      const path = pax.get('path');
      const linkpath = pax.get('linkpath');
      const paxSize = pax.get('size');
      if (path?.length) name = path.toString('latin1');
      if (linkpath?.length) linkname = linkpath.toString('latin1');
      if (paxSize?.length) size = Number.parseInt(paxSize.toString('latin1'), 10);
    }
    this.#longName = this.#longLink = this.#pax = null;
    if (!(size >= 0) || !Number.isSafeInteger(size))
      throw malformedTar(`entry '${name}' has an invalid size`);
    const mode = numeric(block, 100, 8);
    const uid = numeric(block, 108, 8);
    const gid = numeric(block, 116, 8);
    const mtime = numeric(block, 136, 12);
    if (Number.isNaN(mode) || Number.isNaN(uid) || Number.isNaN(gid) || Number.isNaN(mtime)) {
      throw malformedTar(`entry '${name}' has an invalid numeric field`);
    }
    const hasBody = HAS_BODY.has(typeflag);
    const magic = block.toString('latin1', 257, 262) === 'ustar'; // ustar and GNU have device fields
    const header: TarHeader = {
      typeflag,
      name,
      linkname,
      size: hasBody ? size : 0,
      mode,
      uid,
      gid,
      mtime,
      devmajor: magic ? numeric(block, 329, 8) || 0 : 0,
      devminor: magic ? numeric(block, 337, 8) || 0 : 0,
      pax,
    };
    this.#lastName = name;
    this.entries++;
    this.#sink.entry(header);
    if (!hasBody) {
      // Header-only: the next header follows at once, whatever the size field says (Go's reader).
      this.#skip(0);
      return;
    }
    this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) {
      this.#sink.endEntry();
      this.#skip(0);
      return;
    }
    this.#left = size;
    this.#state = 'body';
  }

  #endMeta(): void {
    const buf = this.#meta;
    switch (this.#metaType) {
      case TYPE_GNU_LONG_NAME:
      case TYPE_GNU_LONG_NAME_OLD:
        this.#longName = cstring(buf, 0, buf.length);
        break;
      case TYPE_GNU_LONG_LINK:
        this.#longLink = cstring(buf, 0, buf.length);
        break;
      case TYPE_PAX_GLOBAL:
        this.#paxGlobal = parsePax(buf);
        break;
      case TYPE_PAX: {
        const local = parsePax(buf);
        this.#pax = this.#paxGlobal ? new Map([...this.#paxGlobal, ...local]) : local;
        break;
      }
    }
    this.#meta = Buffer.alloc(0);
    this.#skip(this.#padding);
  }
}
