// A pass-through that hashes the uncompressed tar (the diffID) and reads its headers byte-exactly.
//
// tar-stream decodes names and PAX records as UTF-8, which corrupts binary xattr values (a
// `security.capability` with a byte >= 0x80) and names that are not UTF-8. This scanner sits in front of
// tar-stream's extractor, walks the same header/data boundaries, and queues for every entry its raw
// name, link name and PAX records; the applier takes one from the queue per extracted entry and checks
// that both parsers agree. tar-stream still does the streaming of entry bodies.
import { Transform, type TransformCallback } from 'node:stream';
import { DigestVerifier } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';

/** What the scanner saw for one entry. Strings are latin1 byte strings. */
export interface ScannedEntry {
  /** The typeflag as tar-stream numbers it ('0'..'7' → 0..7; NUL → 0; a name ending in '/' → 5). */
  typeflag: number;
  name: string;
  linkname: string;
  size: number;
  /** PAX records (local, merged over global ones as tar-stream does), or null. */
  pax: Map<string, Buffer> | null;
}

const BLOCK = 512;
/** tar-stream's limit for one long-name or PAX block; larger ones are refused there too. */
const MAX_META = 4 * 1024 * 1024;
const TYPE_GNU_LONG_LINK = 27; // 'K'
const TYPE_GNU_LONG_NAME = 28; // 'L'
const TYPE_GNU_LONG_NAME_OLD = 30; // 'N'
const TYPE_PAX_GLOBAL = 55; // 'g'
const TYPE_PAX = 72; // 'x'
const TYPE_DIR = 5;

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

/** Numeric header field: octal text (spaces/NULs tolerated) or GNU base-256. Same reading as tar-stream. */
function numeric(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len);
  if ((field[0]! & 0x80) !== 0) {
    const negative = field[0] === 0xff;
    if (!negative && field[0] !== 0x80) return Number.NaN;
    let sum = 0;
    for (let i = 1; i < field.length; i++) sum = sum * 256 + (negative ? 0xff - field[i]! : field[i]!);
    return negative ? -sum : sum;
  }
  let i = 0;
  while (i < field.length && field[i] === 0x20) i++;
  let end = field.indexOf(0x20, i);
  if (end === -1) end = field.length;
  while (i < end && field[i] === 0) i++;
  if (i === end) return 0;
  return Number.parseInt(field.toString('latin1', i, end), 8);
}

function checksum(block: Buffer): number {
  let sum = 8 * 0x20; // the checksum field itself counts as spaces
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  return sum;
}

function isUstar(block: Buffer): boolean {
  return block.toString('latin1', 257, 263) === 'ustar\0';
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

type State = 'header' | 'meta' | 'skip';

export class TarScanner extends Transform {
  readonly verifier = new DigestVerifier('sha256');
  readonly #queue: ScannedEntry[] = [];
  #state: State = 'header';
  #block = Buffer.alloc(BLOCK);
  #filled = 0;
  #skip = 0;
  #meta: Buffer = Buffer.alloc(0);
  #metaType = 0;
  #metaPadding = 0;
  #longName: string | null = null;
  #longLink: string | null = null;
  #pax: Map<string, Buffer> | null = null;
  #paxGlobal: Map<string, Buffer> | null = null;
  #lastName = '';

  /** The next entry's raw header, in archive order. */
  shift(): ScannedEntry | undefined {
    return this.#queue.shift();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.verifier.update(chunk);
    try {
      this.#scan(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const midEntry = this.#state !== 'header' || this.#filled !== 0;
    cb(midEntry ? malformedTar(`it ends in the middle of an entry (after '${this.#lastName}')`) : null);
  }

  #scan(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#state === 'skip') {
        const n = Math.min(this.#skip, chunk.length - off);
        this.#skip -= n;
        off += n;
        if (this.#skip === 0) this.#state = 'header';
      } else if (this.#state === 'meta') {
        const n = Math.min(this.#meta.length - this.#filled, chunk.length - off);
        chunk.copy(this.#meta, this.#filled, off, off + n);
        this.#filled += n;
        off += n;
        if (this.#filled === this.#meta.length) {
          this.#filled = 0;
          this.#endMeta();
        }
      } else {
        const n = Math.min(BLOCK - this.#filled, chunk.length - off);
        chunk.copy(this.#block, this.#filled, off, off + n);
        this.#filled += n;
        off += n;
        if (this.#filled === BLOCK) {
          this.#filled = 0;
          this.#header(this.#block);
        }
      }
    }
  }

  #skipBytes(n: number): void {
    this.#skip = n;
    this.#state = n > 0 ? 'skip' : 'header';
  }

  #header(block: Buffer): void {
    const sum = checksum(block);
    if (sum === 8 * 0x20) return; // an all-zero block: end-of-archive marker or padding
    if (sum !== numeric(block, 148, 8)) {
      throw malformedTar(`bad header checksum after '${this.#lastName}' (is it compressed?)`);
    }
    let typeflag = block[156] === 0 ? 0 : block[156]! - 0x30;
    let name = cstring(block, 0, 100);
    if (isUstar(block) && block[345] !== 0) name = `${cstring(block, 345, 155)}/${name}`;
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
        this.#metaPadding = (BLOCK - (size % BLOCK)) % BLOCK;
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
    if (!(size >= 0)) throw malformedTar(`entry '${name}' has an invalid size`);
    this.#lastName = name;
    this.#queue.push({ typeflag, name, linkname, size, pax });
    // tar-stream reads no body for directories, whatever their size field says; neither do we.
    if (size === 0 || typeflag === TYPE_DIR) this.#skipBytes(0);
    else this.#skipBytes(size + ((BLOCK - (size % BLOCK)) % BLOCK));
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
    this.#skipBytes(this.#metaPadding);
  }
}
