// The HPACK reader that rewrites a `:authority` Node's HTTP/2 server would refuse (src/server/
// hpack-authority.ts, hpack-huffman.ts): Huffman round trips and RFC 7541's examples, the same-length
// stand-ins, and header blocks from a small reference encoder written here (every representation,
// Huffman or not, names indexed in the static or dynamic table, table size updates and evictions over a
// sequence of blocks): the rewrite touches only the authority values, keeps every length, and leaves
// valid values alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AuthorityTable,
  isValidAuthority,
  rewriteHeaderBlock,
  sameLengthAuthority,
} from '../../src/server/hpack-authority.ts';
import { codeLength, huffmanDecode, huffmanEncode, huffmanLength } from '../../src/server/hpack-huffman.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('Huffman: RFC 7541 C.4 examples', () => {
  assert.equal(hex(huffmanEncode(Buffer.from('www.example.com'))), 'f1e3c2e5f23a6ba0ab90f4ff');
  assert.equal(hex(huffmanEncode(Buffer.from('no-cache'))), 'a8eb10649cbf');
  assert.equal(hex(huffmanEncode(Buffer.from('custom-key'))), '25a849e95ba97d7f');
  assert.equal(hex(huffmanEncode(Buffer.from('custom-value'))), '25a849e95bb8e8b4bf');
  assert.equal(
    Buffer.from(huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex'))!).toString(),
    'www.example.com',
  );
});

test('Huffman: any bytes round-trip; bad padding and EOS are refused', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
      const encoded = huffmanEncode(data);
      assert.equal(encoded.length, huffmanLength(data));
      assert.deepEqual(huffmanDecode(encoded), data);
    }),
    { numRuns: 500 },
  );
  assert.equal(huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), undefined); // EOS inside
  assert.equal(huffmanDecode(Uint8Array.of(0x00)), undefined); // '0' then padding of zeros
  assert.equal(huffmanDecode(Uint8Array.of(0xff)), undefined); // 8 bits of padding
});

test('a same-length stand-in: valid, as many characters, as many Huffman bytes', () => {
  assert.equal(
    Buffer.from(sameLengthAuthority(Buffer.from('/tmp/x/hoist.sock'), 12)!).toString(),
    '-tmp-x-hoist.sock',
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (value) => {
      const bytes = huffmanLength(value);
      const out = sameLengthAuthority(value, bytes);
      if (out === undefined) {
        // Only when some code is longer than any valid character's (13 bits), and too long to make up.
        assert.ok(value.some((b) => codeLength(b) > 13));
        return;
      }
      assert.ok(isValidAuthority(out));
      assert.equal(out.length, value.length);
      assert.equal(huffmanLength(out), bytes);
      // Where every refused character is a '/' (a path), those become '-' and nothing else changes.
      if (value.every((b) => b === 0x2f || isValidAuthority(Uint8Array.of(b))))
        assert.deepEqual(
          out,
          value.map((b) => (b === 0x2f ? 0x2d : b)),
        );
    }),
    { numRuns: 500 },
  );
  // A path of the usual characters always has one.
  const pathChar = fc.constantFrom(...'/abcdefghijklmnopqrstuvwxyz0123456789-._ ~'.split(''));
  fc.assert(
    fc.property(fc.string({ unit: pathChar, maxLength: 107 }), (s) => {
      const value = Buffer.from(s, 'latin1');
      assert.notEqual(sameLengthAuthority(value, huffmanLength(value)), undefined);
    }),
    { numRuns: 300 },
  );
});

// --- a reference HPACK encoder ---

const STATIC = [':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status'];

interface Field {
  name: string;
  value: Buffer;
  rep: 'incremental' | 'without' | 'never';
  indexName: boolean;
  huffName: boolean;
  huffValue: boolean;
}

interface Span {
  start: number;
  end: number;
  huffman: boolean;
}

class Encoder {
  table: { name: string; value: Buffer; size: number }[] = [];
  max = 4096;
  bytes: number[] = [];
  authorities: Span[] = [];

  int(first: number, prefix: number, value: number): void {
    const max = 2 ** prefix - 1;
    if (value < max) {
      this.bytes.push(first | value);
      return;
    }
    this.bytes.push(first | max);
    value -= max;
    while (value >= 128) {
      this.bytes.push((value % 128) | 0x80);
      value = Math.floor(value / 128);
    }
    this.bytes.push(value);
  }

  string(data: Buffer, huffman: boolean): Span {
    const body = huffman ? huffmanEncode(data) : data;
    this.int(huffman ? 0x80 : 0, 7, body.length);
    const start = this.bytes.length;
    this.bytes.push(...body);
    return { start, end: this.bytes.length, huffman };
  }

  sizeUpdate(max: number): void {
    this.max = max;
    this.evict(0);
    this.int(0x20, 5, max);
  }

  field(f: Field): void {
    const exact = this.table.findIndex((e) => e.name === f.name && e.value.equals(f.value));
    if (f.rep === 'incremental' && exact >= 0 && f.indexName) {
      this.int(0x80, 7, 62 + exact);
      return;
    }
    const [first, prefix] = { incremental: [0x40, 6], without: [0x00, 4], never: [0x10, 4] }[f.rep] as [
      number,
      number,
    ];
    const staticAt = STATIC.indexOf(f.name);
    const dynamicAt = this.table.findIndex((e) => e.name === f.name);
    if (f.indexName && (staticAt >= 0 || dynamicAt >= 0))
      this.int(first, prefix, staticAt >= 0 ? staticAt + 1 : 62 + dynamicAt);
    else {
      this.int(first, prefix, 0);
      this.string(Buffer.from(f.name), f.huffName);
    }
    const span = this.string(f.value, f.huffValue);
    if (f.name === ':authority') this.authorities.push(span);
    if (f.rep === 'incremental') {
      const size = f.name.length + f.value.length + 32;
      if (size > this.max) this.table = [];
      else {
        this.evict(size);
        this.table.unshift({ name: f.name, value: f.value, size });
      }
    }
  }

  evict(room: number): void {
    let total = this.table.reduce((n, e) => n + e.size, 0);
    while (total + room > this.max && this.table.length > 0) total -= this.table.pop()!.size;
  }

  take(): { block: Buffer; authorities: Span[] } {
    const out = { block: Buffer.from(this.bytes), authorities: this.authorities };
    this.bytes = [];
    this.authorities = [];
    return out;
  }
}

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const arbValue = fc.oneof(
  printable.map((s) => Buffer.from(s, 'latin1')),
  fc
    .constantFrom('/run/hoist/hoist.sock', 'localhost', '/tmp/x y/a.sock', 'unix:///x')
    .map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)),
);
const arbField: fc.Arbitrary<Field> = fc.record({
  name: fc.constantFrom(
    ':authority',
    ':authority',
    ':method',
    ':path',
    'content-type',
    'x-custom',
    'user-agent',
  ),
  value: arbValue,
  rep: fc.constantFrom('incremental', 'incremental', 'without', 'never'),
  indexName: fc.boolean(),
  huffName: fc.boolean(),
  huffValue: fc.boolean(),
});
const arbBlock = fc.record({
  sizeUpdate: fc.option(fc.integer({ min: 0, max: 4096 }), { freq: 4 }),
  fields: fc.array(arbField, { maxLength: 8 }),
});

test('rewriteHeaderBlock: only authority values change, every length stays, valid values are left alone', () => {
  fc.assert(
    fc.property(fc.array(arbBlock, { minLength: 1, maxLength: 6 }), (blocks) => {
      const enc = new Encoder();
      const table = new AuthorityTable();
      for (const b of blocks) {
        if (b.sizeUpdate !== null) enc.sizeUpdate(b.sizeUpdate);
        for (const f of b.fields) enc.field(f);
        const { block, authorities } = enc.take();
        const before = Buffer.from(block);
        const seen: Buffer[] = [];
        const result = rewriteHeaderBlock(block, table, (v) => seen.push(Buffer.from(v)));
        assert.notEqual(result, 'malformed');
        assert.equal(block.length, before.length);
        assert.equal(seen.length, authorities.length, 'every literal authority is found, through any index');
        let changed = false;
        let at = 0;
        for (const span of authorities) {
          assert.ok(before.subarray(at, span.start).equals(block.subarray(at, span.start)));
          at = span.end;
          const decode = (bytes: Buffer) => (span.huffman ? huffmanDecode(bytes) : bytes);
          const original = decode(before.subarray(span.start, span.end))!;
          const now = decode(block.subarray(span.start, span.end));
          assert.ok(now, 'the rewritten value decodes');
          assert.equal(now.length, original.length, 'the table entry keeps its size');
          if (isValidAuthority(original)) assert.deepEqual(now, original);
          else if (isValidAuthority(now)) changed = true;
          else assert.ok(span.huffman, 'only a Huffman value with no same-length stand-in is left as it was');
        }
        assert.ok(before.subarray(at).equals(block.subarray(at)));
        assert.equal(result, changed ? 'rewritten' : 'unchanged');
      }
    }),
    { numRuns: 400 },
  );
});

test('rewriteHeaderBlock: truncated or garbled blocks are reported, not thrown', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = rewriteHeaderBlock(Buffer.from(bytes), new AuthorityTable());
      assert.ok(['unchanged', 'rewritten', 'malformed'].includes(r));
    }),
    { numRuns: 1000 },
  );
  const enc = new Encoder();
  enc.field({
    name: ':authority',
    value: Buffer.from('/a/b'),
    rep: 'incremental',
    indexName: true,
    huffName: false,
    huffValue: false,
  });
  const { block } = enc.take();
  assert.equal(rewriteHeaderBlock(block.subarray(0, block.length - 1), new AuthorityTable()), 'malformed');
  assert.equal(rewriteHeaderBlock(Buffer.from([0xbe]), new AuthorityTable()), 'malformed'); // index 62, empty table
});
