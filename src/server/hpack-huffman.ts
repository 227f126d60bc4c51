// HPACK's static Huffman code (RFC 7541 Appendix B), for the few header strings hoist serve must read
// and rewrite on a connection whose client sends a `:authority` Node's HTTP/2 server refuses (see
// h2-authority-filter.ts). The code is canonical: codes are handed out in order of length, then of
// symbol, so the table of code lengths below is all there is to it.

/** Bit length of the code of each symbol 0–255, then EOS (256). */
// biome-ignore format: the table reads as 16 symbols a row.
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const MAX_LENGTH = 30;

/** The code of each symbol (its low `CODE_LENGTHS[s]` bits). */
const CODES: number[] = new Array(CODE_LENGTHS.length).fill(0);
/** Symbols in code order; for each length, the first code of that length and its place in that order. */
const SORTED: number[] = [];
const FIRST_CODE: number[] = new Array(MAX_LENGTH + 1).fill(0);
const FIRST_INDEX: number[] = new Array(MAX_LENGTH + 1).fill(0);
const COUNT: number[] = new Array(MAX_LENGTH + 1).fill(0);
{
  for (let len = 1; len <= MAX_LENGTH; len++)
    for (let s = 0; s < CODE_LENGTHS.length; s++) if (CODE_LENGTHS[s] === len) SORTED.push(s);
  let code = 0;
  let prev = CODE_LENGTHS[SORTED[0]!]!;
  SORTED.forEach((s, i) => {
    const len = CODE_LENGTHS[s]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    CODES[s] = code;
    if (COUNT[len] === 0) {
      FIRST_CODE[len] = code;
      FIRST_INDEX[len] = i;
    }
    COUNT[len]!++;
  });
}

/** The bit length of a byte's code. */
export function codeLength(byte: number): number {
  return CODE_LENGTHS[byte]!;
}

/**
 * Decode a Huffman-coded string; undefined when it is not valid HPACK (EOS inside, padding of 8 bits or
 * more, or padding that is not a prefix of EOS), as a peer's decoder would refuse it too.
 */
export function huffmanDecode(data: Uint8Array): Uint8Array | undefined {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const offset = code - FIRST_CODE[len]!;
      if (COUNT[len]! > 0 && offset >= 0 && offset < COUNT[len]!) {
        const symbol = SORTED[FIRST_INDEX[len]! + offset]!;
        if (symbol === EOS) return undefined;
        out.push(symbol);
        code = 0;
        len = 0;
      } else if (len >= MAX_LENGTH) return undefined;
    }
  }
  // What is left is padding: fewer than 8 bits, all ones.
  if (len > 7 || code !== 2 ** len - 1) return undefined;
  return Uint8Array.from(out);
}

/** The encoded length in bytes of `data`. */
export function huffmanLength(data: Uint8Array): number {
  let bits = 0;
  for (const byte of data) bits += CODE_LENGTHS[byte]!;
  return Math.ceil(bits / 8);
}

/** Huffman-encode `data`, padded with the most significant bits of EOS (ones). */
export function huffmanEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanLength(data));
  let acc = 0; // pending bits, at most 7 + 30: kept below 2^53 as a plain number
  let pending = 0;
  let at = 0;
  for (const byte of data) {
    const len = CODE_LENGTHS[byte]!;
    acc = acc * 2 ** len + CODES[byte]!;
    pending += len;
    while (pending >= 8) {
      pending -= 8;
      const top = Math.floor(acc / 2 ** pending);
      out[at++] = top;
      acc -= top * 2 ** pending;
    }
  }
  if (pending > 0) out[at] = (acc * 2 ** (8 - pending) + (2 ** (8 - pending) - 1)) & 0xff;
  return out;
}
