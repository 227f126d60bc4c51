// An HPACK reader (RFC 7541) just good enough to find each literal `:authority` value in a client's
// header blocks and rewrite one that Node's HTTP/2 server (nghttp2) would refuse, in place, to a value
// of the same encoded length and the same decoded length, so neither the frame lengths nor the size of
// the entry both sides' dynamic tables hold for it change. Used by h2-authority-filter.ts, which says
// why.
//
// The reader keeps the one piece of state a header block depends on: which dynamic table entries name
// `:authority` (a later literal may index its name there), with their sizes for evictions. Values are
// not kept: an indexed field that refers to an authority entry already carries the rewritten value,
// since the server's table was filled from the rewritten bytes.

import { codeLength, huffmanDecode, huffmanEncode } from './hpack-huffman.ts';

/** nghttp2 accepts these in `:authority` (RFC 3986's authority characters); anything else resets the stream. */
const AUTHORITY_OK = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@[]")
  AUTHORITY_OK[c.charCodeAt(0)] = 1;

export function isValidAuthority(value: Uint8Array): boolean {
  for (const b of value) if (!AUTHORITY_OK[b]) return false;
  return true;
}

const AUTHORITY_NAME = Buffer.from(':authority');
/** RFC 7541 4.1: an entry's size is its name's and value's lengths plus 32. */
const ENTRY_OVERHEAD = 32;
/** SETTINGS_HEADER_TABLE_SIZE's default, which Node's HTTP/2 server (and so grpc-js) advertises. */
export const DEFAULT_TABLE_SIZE = 4096;
/**
 * A Huffman-coded authority longer than this whose refused characters do not all have a stand-in of
 * their code length is left alone (the search is quadratic; a socket path has at most 107 bytes).
 */
const MAX_HUFFMAN_SEARCH = 256;

class HpackError extends Error {}

/**
 * The decoder's dynamic table, reduced to what the reader needs: each entry's name length and size, and
 * whether its name is `:authority`.
 */
export class AuthorityTable {
  /** Newest first. */
  private entries: { nameLength: number; size: number; authority: boolean }[] = [];
  private size = 0;
  private maxSize: number;
  constructor(maxSize = DEFAULT_TABLE_SIZE) {
    this.maxSize = maxSize;
  }

  get length(): number {
    return this.entries.length;
  }

  resize(max: number): void {
    this.maxSize = max;
    this.evict(0);
  }

  add(nameLength: number, valueLength: number, authority: boolean): void {
    const size = nameLength + valueLength + ENTRY_OVERHEAD;
    if (size > this.maxSize) {
      this.entries = [];
      this.size = 0;
      return;
    }
    this.evict(size);
    this.entries.unshift({ nameLength, size, authority });
    this.size += size;
  }

  /** The name of HPACK index `index` (static or dynamic): its length, and whether it is `:authority`. */
  name(index: number): { length: number; authority: boolean } {
    if (index <= STATIC_NAMES.length) {
      const name = STATIC_NAMES[index - 1]!;
      return { length: name.length, authority: index === 1 };
    }
    const entry = this.entries[index - STATIC_NAMES.length - 1];
    if (!entry) throw new HpackError(`index ${index} is not in the table`);
    return { length: entry.nameLength, authority: entry.authority };
  }

  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.entries.length > 0) this.size -= this.entries.pop()!.size;
  }
}

/** Reads integers and strings from a header block, from `at` on. */
class Reader {
  at = 0;
  readonly block: Uint8Array;
  constructor(block: Uint8Array) {
    this.block = block;
  }

  /** An integer with an N-bit prefix (RFC 7541 5.1). */
  int(prefixBits: number): number {
    const max = 2 ** prefixBits - 1;
    let value = this.byte() & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > 21) throw new HpackError('integer too large');
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
    }
  }

  /** A string literal: where its bytes are, and whether they are Huffman-coded. */
  string(): StringRef {
    if (this.at >= this.block.length) throw new HpackError('block ends inside a field');
    const huffman = (this.block[this.at]! & 0x80) !== 0;
    const length = this.int(7);
    const start = this.at;
    const end = start + length;
    if (end > this.block.length) throw new HpackError('string runs past the block');
    this.at = end;
    return { start, end, huffman };
  }

  private byte(): number {
    if (this.at >= this.block.length) throw new HpackError('block ends inside a field');
    return this.block[this.at++]!;
  }
}

type StringRef = { start: number; end: number; huffman: boolean };

function decode(block: Uint8Array, s: StringRef): Buffer {
  const raw = block.subarray(s.start, s.end);
  const bytes = s.huffman ? huffmanDecode(raw) : raw;
  if (!bytes) throw new HpackError('bad Huffman string');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The decoded length of a string (what an entry's size counts). */
function decodedLength(block: Uint8Array, s: StringRef): number {
  return s.huffman ? decode(block, s).length : s.end - s.start;
}

export type BlockResult = 'unchanged' | 'rewritten' | 'malformed';

/**
 * Walk one complete header block (the HEADERS and CONTINUATION fragments joined), updating `table`, and
 * rewrite in place every literal `:authority` value nghttp2 would refuse. `onAuthority` sees each
 * literal authority value as sent (before any rewrite). 'malformed' when the block is not valid HPACK
 * (the table is then out of step; the server's decoder will refuse the block and end the connection).
 */
export function rewriteHeaderBlock(
  block: Uint8Array,
  table: AuthorityTable,
  onAuthority?: (value: Uint8Array, valid: boolean) => void,
): BlockResult {
  const r = new Reader(block);
  let result: BlockResult = 'unchanged';
  try {
    while (r.at < block.length) {
      const first = block[r.at]!;
      if (first & 0x80) {
        const index = r.int(7);
        if (index === 0) throw new HpackError('index 0');
        table.name(index); // throws when the table has no such entry
        continue;
      }
      if ((first & 0xe0) === 0x20) {
        table.resize(r.int(5));
        continue;
      }
      const indexing = (first & 0xc0) === 0x40;
      const nameIndex = r.int(indexing ? 6 : 4);
      let name: { length: number; authority: boolean };
      if (nameIndex === 0) {
        const literal = r.string();
        const decoded = decode(block, literal);
        name = { length: decoded.length, authority: AUTHORITY_NAME.equals(decoded) };
      } else name = table.name(nameIndex);
      const value = r.string();
      if (name.authority && rewriteAuthority(block, value, onAuthority)) result = 'rewritten';
      if (indexing) table.add(name.length, decodedLength(block, value), name.authority);
    }
  } catch (err) {
    if (err instanceof HpackError) return 'malformed';
    throw err;
  }
  return result;
}

/** The static table's names (RFC 7541 Appendix A), index 1–61: a literal may index one for its name. */
const STATIC_NAMES = (
  ':authority :method :method :path :path :scheme :scheme :status :status :status :status :status :status ' +
  ':status accept-charset accept-encoding accept-language accept-ranges accept ' +
  'access-control-allow-origin age allow authorization cache-control content-disposition ' +
  'content-encoding content-language content-length content-location content-range content-type ' +
  'cookie date etag expect expires from host if-match if-modified-since if-none-match if-range ' +
  'if-unmodified-since last-modified link location max-forwards proxy-authenticate ' +
  'proxy-authorization range referer refresh retry-after server set-cookie strict-transport-security ' +
  'transfer-encoding user-agent vary via www-authenticate'
).split(' ');

/** For each code length some valid character has, one such character ('-' for 6 bits, the length of '/'). */
const STAND_INS = new Map<number, number>();
for (const c of "-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%!$&'()*+,;=:@[]") {
  const byte = c.charCodeAt(0);
  if (!STAND_INS.has(codeLength(byte))) STAND_INS.set(codeLength(byte), byte);
}
const DASH = 0x2d;

/** Rewrite one literal authority value in place when nghttp2 would refuse it; true when it did. */
function rewriteAuthority(
  block: Uint8Array,
  s: StringRef,
  onAuthority?: (value: Uint8Array, valid: boolean) => void,
): boolean {
  const raw = block.subarray(s.start, s.end);
  const value = s.huffman ? decode(block, s) : raw;
  const valid = isValidAuthority(value);
  onAuthority?.(Uint8Array.from(value), valid);
  if (valid) return false;
  if (!s.huffman) {
    for (let i = 0; i < raw.length; i++) if (!AUTHORITY_OK[raw[i]!]) raw[i] = DASH;
    return true;
  }
  const replacement = sameLengthAuthority(value, raw.length);
  if (!replacement) return false;
  raw.set(huffmanEncode(replacement));
  return true;
}

/**
 * A valid authority of as many characters as `value` whose Huffman code takes exactly `bytes` bytes:
 * each refused character becomes a valid one of the same code length where there is one ('/' becomes
 * '-'); where there is none (a '#', a byte above 0x7f) the code lengths must still add up to the same
 * byte count, which a small search over the total bit count settles, changing as few characters as it
 * can. undefined when no such value exists (a long run of bytes above 0x7f, whose codes are longer than
 * any valid character's).
 */
export function sameLengthAuthority(value: Uint8Array, bytes: number): Uint8Array | undefined {
  const direct = Uint8Array.from(value, (b) => (AUTHORITY_OK[b] ? b : (STAND_INS.get(codeLength(b)) ?? 0)));
  if (!direct.includes(0)) return direct;
  if (bytes > MAX_HUFFMAN_SEARCH) return undefined;
  const maxBits = bytes * 8;
  const minBits = Math.max(0, maxBits - 7);
  const width = maxBits + 1;
  const INF = 0xffff;
  // cost[i * width + t]: fewest changes for the first i characters taking t bits; pick: the byte chosen.
  const cost = new Uint16Array((value.length + 1) * width).fill(INF);
  const pick = new Uint8Array(value.length * width);
  cost[0] = 0;
  for (let i = 0; i < value.length; i++) {
    const orig = value[i]!;
    const origLen = codeLength(orig);
    const options: [number, number][] = [];
    if (AUTHORITY_OK[orig]) options.push([orig, 0]);
    for (const [len, byte] of STAND_INS)
      if (byte !== orig) options.push([byte, AUTHORITY_OK[orig] || len !== origLen ? 2 : 1]);
    for (let t = 0; t < width; t++) {
      const base = cost[i * width + t]!;
      if (base === INF) continue;
      for (const [byte, c] of options) {
        const next = t + codeLength(byte);
        if (next > maxBits) continue;
        const at = (i + 1) * width + next;
        if (base + c < cost[at]!) {
          cost[at] = base + c;
          pick[i * width + next] = byte;
        }
      }
    }
  }
  let best = -1;
  for (let t = minBits; t <= maxBits; t++)
    if (
      cost[value.length * width + t]! !== INF &&
      (best < 0 || cost[value.length * width + t]! < cost[value.length * width + best]!)
    )
      best = t;
  if (best < 0) return undefined;
  const out = new Uint8Array(value.length);
  for (let i = value.length - 1, t = best; i >= 0; i--) {
    out[i] = pick[i * width + t]!;
    t -= codeLength(out[i]!);
  }
  return out;
}
