// The client-to-server HTTP/2 filter in front of grpc-js (src/server/h2-authority-filter.ts): real
// node:http2 client bytes (Huffman-coded authorities, dynamic table references) read in any chunking give
// the same output, every refused authority comes out valid and nothing else changes; hand-made frames
// for PADDED and PRIORITY flags, CONTINUATION, the dropped SETTINGS acknowledgement, PINGs, and the
// cases where the filter stops reading.
import assert from 'node:assert/strict';
import { unlink } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { CLIENT_PREFACE, ClientStreamFilter, MAX_BLOCK } from '../../src/server/h2-authority-filter.ts';
import { isValidAuthority } from '../../src/server/hpack-authority.ts';

interface Call {
  authority: string;
  path: string;
  metadata: string;
}

/** What a node:http2 client writes for these calls (its server never answers). */
async function clientBytes(calls: Call[]): Promise<Buffer> {
  const path = join(tmpdir(), `h2-filter-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const chunks: Buffer[] = [];
  const server = createServer((s) => s.on('data', (d: Buffer) => chunks.push(d)));
  await new Promise<void>((r) => server.listen(path, r));
  const session = h2connect('http://localhost', { createConnection: () => connect(path) });
  session.on('error', () => undefined);
  let want = 0;
  for (const c of calls) {
    const req = session.request({
      ':method': 'POST',
      ':path': c.path,
      ':authority': c.authority,
      'content-type': 'application/grpc',
      'x-meta': c.metadata,
    });
    req.on('error', () => undefined);
    req.end(Buffer.alloc(5));
    want += 5;
  }
  // Until the last call's data is out.
  for (let i = 0; i < 100 && Buffer.concat(chunks).length < CLIENT_PREFACE.length + 9 + want; i++)
    await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  session.destroy();
  await new Promise((r) => server.close(r));
  await unlink(path).catch(() => undefined);
  return Buffer.concat(chunks);
}

/** Feed `input` cut at `cuts`; what the filter passes on. */
function run(filter: ClientStreamFilter, input: Buffer, cuts: number[] = []): { out: Buffer } {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b), input.length]) {
    out.push(...filter.write(input.subarray(at, cut)));
    at = cut;
  }
  return { out: Buffer.concat(out) };
}

function newFilter(seen: { value: Buffer; valid: boolean }[] = [], replies: Buffer[] = []) {
  return new ClientStreamFilter({
    reply: (d) => replies.push(Buffer.from(d)),
    onAuthority: (value, valid) => seen.push({ value: Buffer.from(value), valid }),
  });
}

const authorityChar = fc.constantFrom(...'/abcxyz019-._ ~#?'.split(''));
const arbCall: fc.Arbitrary<Call> = fc.record({
  authority: fc.oneof(
    fc.constantFrom(
      '/run/hoist/hoist.sock',
      '/tmp/hoist-serve-abc/hoist.sock',
      'localhost',
      'unix:///x.sock',
    ),
    fc.string({ unit: authorityChar, minLength: 1, maxLength: 60 }),
  ),
  path: fc.constantFrom('/containerd.services.version.v1.Version/Version', '/a/b'),
  metadata: fc.string({ unit: authorityChar, maxLength: 30 }),
});

test('real client bytes in any chunking: same output, authorities made valid, nothing else changed', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(arbCall, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(2000), { maxLength: 12 }),
      async (calls, cuts) => {
        const input = await clientBytes(calls);
        const seen: { value: Buffer; valid: boolean }[] = [];
        const whole = run(newFilter(seen), input).out;
        assert.ok(run(newFilter(), input, cuts).out.equals(whole), 'the chunking does not matter');
        assert.equal(whole.length, input.length, 'every length is kept');
        // Every authority a call sent appears as a literal at least once (the first time), in order.
        const literal = seen.map((s) => s.value.toString('latin1'));
        for (const a of new Set(calls.map((c) => c.authority))) assert.ok(literal.includes(a), a);
        // Read again, the output holds only valid authorities, as many as before.
        const again: { value: Buffer; valid: boolean }[] = [];
        const second = newFilter(again);
        assert.ok(run(second, whole).out.equals(whole), 'a second pass changes nothing');
        assert.equal(second.rewrites, 0);
        assert.equal(again.length, seen.length);
        assert.ok(again.every((s) => s.valid));
        again.forEach((s, i) => {
          assert.equal(s.value.length, seen[i]!.value.length);
          if (seen[i]!.valid) assert.ok(s.value.equals(seen[i]!.value));
        });
        // Outside the header blocks' authority values, every byte is the same.
        let differ = 0;
        for (let i = 0; i < input.length; i++) if (input[i] !== whole[i]) differ++;
        assert.ok(differ <= seen.reduce((n, s) => n + s.value.length, 0));
      },
    ),
    { numRuns: 25 },
  );
});

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

const SETTINGS_ACK = frame(0x4, 0x1, 0, Buffer.alloc(0));
const settings = frame(0x4, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
// :authority (static index 1, literal with incremental indexing), raw "/a/b", then :method GET (indexed).
const block = Buffer.from([0x41, 0x04, ...Buffer.from('/a/b'), 0x82]);
const fixed = Buffer.from([0x41, 0x04, ...Buffer.from('-a-b'), 0x82]);

test('PADDED and PRIORITY flags, a block split over CONTINUATION frames, the first SETTINGS ACK dropped', () => {
  const headers = (b: Buffer) =>
    frame(
      0x1,
      0x8 | 0x20, // PADDED | PRIORITY, no END_HEADERS
      1,
      Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), b.subarray(0, 3), Buffer.alloc(3)]),
    );
  const cont = (b: Buffer) => frame(0x9, 0x4, 1, b.subarray(3));
  const data = frame(0x0, 0x1, 1, Buffer.from('hello'));
  const input = Buffer.concat([
    CLIENT_PREFACE,
    settings,
    SETTINGS_ACK,
    headers(block),
    cont(block),
    data,
    SETTINGS_ACK,
  ]);
  const want = Buffer.concat([CLIENT_PREFACE, settings, headers(fixed), cont(fixed), data, SETTINGS_ACK]);
  for (let cut = 0; cut <= input.length; cut++) {
    const f = newFilter();
    assert.ok(run(f, input, [cut]).out.equals(want), `cut at ${cut}`);
    assert.equal(f.ackSeen, true);
    assert.equal(f.headerBlocks, 1);
    assert.equal(f.rewrites, 1);
  }
});

test('PINGs are answered while answerPings is set, passed on after', () => {
  const ping = frame(0x6, 0, 0, Buffer.from('12345678'));
  const replies: Buffer[] = [];
  const f = newFilter([], replies);
  const out = run(f, Buffer.concat([CLIENT_PREFACE, settings, ping])).out;
  assert.ok(out.equals(Buffer.concat([CLIENT_PREFACE, settings])));
  assert.deepEqual(replies, [frame(0x6, 0x1, 0, Buffer.from('12345678'))]);
  f.answerPings = false;
  assert.ok(Buffer.concat(f.write(ping)).equals(ping));
});

test('drain gives back what is held, as received', () => {
  const input = Buffer.concat([CLIENT_PREFACE, settings, frame(0x1, 0x4, 1, block)]);
  for (let cut = CLIENT_PREFACE.length; cut < input.length; cut++) {
    const f = newFilter();
    const out = Buffer.concat(f.write(input.subarray(0, cut)));
    assert.ok(Buffer.concat([out, ...f.drain()]).equals(input.subarray(0, cut)), `cut at ${cut}`);
  }
});

test('bytes that are not HTTP/2, an oversized or malformed header block: passed on unchanged from there', () => {
  const junk = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const f1 = newFilter();
  assert.ok(run(f1, junk, [3]).out.equals(junk));
  assert.equal(f1.blind, true);

  const big = frame(0x1, 0x4, 1, Buffer.alloc(MAX_BLOCK, 0x82));
  const later = frame(0x1, 0x4, 3, block);
  const input = Buffer.concat([CLIENT_PREFACE, settings, big, later]);
  const f2 = newFilter();
  assert.ok(run(f2, input, [100, 5000]).out.equals(input));
  assert.equal(f2.blind, true);

  const garbled = frame(0x1, 0x4, 1, Buffer.from([0x41, 0x7f])); // a string longer than the block
  const input3 = Buffer.concat([CLIENT_PREFACE, settings, garbled, later]);
  const f3 = newFilter();
  assert.ok(run(f3, input3).out.equals(input3));
  assert.equal(f3.blind, true);

  // A header block cut by a frame other than CONTINUATION.
  const open = frame(0x1, 0, 1, block);
  const input4 = Buffer.concat([CLIENT_PREFACE, settings, open, frame(0x0, 0, 1, Buffer.from('x')), later]);
  const f4 = newFilter();
  assert.ok(run(f4, input4).out.equals(input4));
});

test('a valid authority goes through untouched', () => {
  const ok = Buffer.from([0x41, 0x09, ...Buffer.from('localhost')]);
  const input = Buffer.concat([CLIENT_PREFACE, settings, frame(0x1, 0x4, 1, ok)]);
  const seen: { value: Buffer; valid: boolean }[] = [];
  const f = newFilter(seen);
  assert.ok(run(f, input).out.equals(input));
  assert.equal(f.rewrites, 0);
  assert.deepEqual(
    seen.map((s) => [s.value.toString(), s.valid]),
    [['localhost', true]],
  );
  assert.ok(isValidAuthority(Buffer.from('localhost')));
});
