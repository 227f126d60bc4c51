// The client-to-server half of an HTTP/2 connection, read frame by frame on its way to grpc-js, so a
// `:authority` Node's HTTP/2 server would refuse is rewritten first.
//
// Why: a gRPC client that dials the socket path itself as its target (Go's `grpc.Dial("/run/x.sock",
// WithContextDialer(...))`) sends that path as `:authority`. nghttp2, under Node's HTTP/2 server, checks
// the value against RFC 3986 and resets every such stream with PROTOCOL_ERROR before grpc-js sees it;
// Node has no option to turn the check off, and containerd's Go server does not check. The value means
// nothing on a unix socket, so its refused characters are replaced ('/' becomes '-') in place, keeping
// every length (hpack-authority.ts).
//
// The filter only looks into header blocks (HEADERS and CONTINUATION frames, collected until
// END_HEADERS, at most MAX_BLOCK bytes); every other frame's payload passes through as it arrives, in
// pieces of the chunks read. It also drops the client's first SETTINGS acknowledgement, which answers the
// SETTINGS frame the listener (h2-listener.ts) sends ahead of grpc-js's, and while `answerPings` is set
// (before grpc-js has the connection) answers PINGs itself.

import { AuthorityTable, type BlockResult, rewriteHeaderBlock } from './hpack-authority.ts';

export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: a server's connection preface, with every setting at its default. */
export const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

const FRAME_HEADER = 9;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const PING = 0x6;
const CONTINUATION = 0x9;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** The most a header block may take here; past it the filter stops reading the connection. */
export const MAX_BLOCK = 256 << 10;

export interface FilterOptions {
  /** Send bytes back to the client (PING acknowledgements). */
  reply: (data: Buffer) => void;
  /** Each literal `:authority` value seen, and whether nghttp2 would take it. */
  onAuthority?: (value: Uint8Array, valid: boolean) => void;
}

export class ClientStreamFilter {
  /** Answer PINGs here (before grpc-js has the connection) instead of passing them on. */
  answerPings = true;
  /** Header blocks read, and how many of them had an authority rewritten. */
  headerBlocks = 0;
  rewrites = 0;
  /** The client acknowledged the listener's SETTINGS (and the acknowledgement was dropped). */
  ackSeen = false;
  /**
   * Not reading any more: the bytes were not HTTP/2, a header block was too large or not valid HPACK
   * (the server will end the connection itself). Everything passes through unchanged from then on.
   */
  blind = false;

  private readonly opts: FilterOptions;
  private readonly table = new AuthorityTable();
  private prefaceAt = 0;
  /** The frame being read: its header (as received), and for collected frames, the frame so far. */
  private header = Buffer.alloc(FRAME_HEADER);
  private headerAt = 0;
  private collecting: Buffer | undefined;
  private collectedAt = 0;
  /** Payload bytes of a passed-through frame still to come. */
  private passLeft = 0;
  /** Frames of a header block waiting for END_HEADERS. */
  private block: Buffer[] = [];
  private blockBytes = 0;

  constructor(opts: FilterOptions) {
    this.opts = opts;
  }

  /** Bytes read but not yet passed on (a partial frame, an unfinished header block). */
  get buffered(): number {
    return this.headerAt + this.collectedAt + this.blockBytes;
  }

  /** Take client bytes; returns what to pass on to the server, in order. */
  write(chunk: Buffer): Buffer[] {
    if (this.blind) return [chunk];
    const out: Buffer[] = [];
    let at = 0;
    if (this.prefaceAt < CLIENT_PREFACE.length) {
      const n = Math.min(CLIENT_PREFACE.length - this.prefaceAt, chunk.length);
      if (!chunk.subarray(0, n).equals(CLIENT_PREFACE.subarray(this.prefaceAt, this.prefaceAt + n))) {
        this.blind = true; // not HTTP/2: the server will say so
        return [chunk];
      }
      this.prefaceAt += n;
      at = n;
      out.push(chunk.subarray(0, n));
    }
    while (at < chunk.length && !this.blind) {
      if (this.passLeft > 0) {
        const n = Math.min(this.passLeft, chunk.length - at);
        out.push(chunk.subarray(at, at + n));
        this.passLeft -= n;
        at += n;
      } else if (this.collecting) {
        const n = Math.min(this.collecting.length - this.collectedAt, chunk.length - at);
        chunk.copy(this.collecting, this.collectedAt, at, at + n);
        this.collectedAt += n;
        at += n;
        if (this.collectedAt === this.collecting.length) this.collected(out);
      } else {
        const n = Math.min(FRAME_HEADER - this.headerAt, chunk.length - at);
        chunk.copy(this.header, this.headerAt, at, at + n);
        this.headerAt += n;
        at += n;
        if (this.headerAt === FRAME_HEADER) this.frameHeader(out);
      }
    }
    if (at < chunk.length) out.push(chunk.subarray(at));
    return out;
  }

  /**
   * What the filter holds, as received, for handing the connection over unfiltered; the filter must not
   * be used after.
   */
  drain(): Buffer[] {
    const out = [...this.block];
    if (this.collecting) out.push(this.collecting.subarray(0, this.collectedAt));
    else if (this.headerAt > 0) out.push(this.header.subarray(0, this.headerAt));
    this.blind = true;
    return out;
  }

  private frameHeader(out: Buffer[]): void {
    const h = this.header;
    const length = h.readUIntBE(0, 3);
    const type = h[3]!;
    const flags = h[4]!;
    const stream = h.readUInt32BE(5) & 0x7fffffff;
    this.headerAt = 0;
    if (this.block.length > 0 && type !== CONTINUATION) {
      // A header block cut by another frame: a protocol error the server will end the connection for.
      this.flushBlock(out);
      this.giveUp(out, Buffer.from(h));
      return;
    }
    if (type === HEADERS || type === CONTINUATION || (type === PING && this.answerPings && !(flags & ACK))) {
      if (FRAME_HEADER + length + this.blockBytes > MAX_BLOCK) {
        this.giveUp(out, Buffer.from(h));
        return;
      }
      this.collecting = Buffer.allocUnsafe(FRAME_HEADER + length);
      h.copy(this.collecting);
      this.collectedAt = FRAME_HEADER;
      if (length === 0) this.collected(out);
      return;
    }
    if (type === SETTINGS && flags & ACK && !this.ackSeen && length === 0 && stream === 0) {
      this.ackSeen = true;
      return;
    }
    out.push(Buffer.from(h));
    this.passLeft = length;
  }

  private collected(out: Buffer[]): void {
    const frame = this.collecting!;
    this.collecting = undefined;
    this.collectedAt = 0;
    const type = frame[3]!;
    if (type === PING) {
      if (this.answerPings && frame.length === FRAME_HEADER + 8) {
        frame[4] = ACK;
        this.opts.reply(frame);
      } else out.push(frame);
      return;
    }
    if (type === CONTINUATION && this.block.length === 0) {
      out.push(frame); // no header block open: the server will refuse it
      return;
    }
    this.block.push(frame);
    this.blockBytes += frame.length;
    if (frame[4]! & END_HEADERS) this.endBlock(out);
  }

  /** A complete header block: join its fragments, rewrite, put the bytes back, pass the frames on. */
  private endBlock(out: Buffer[]): void {
    const spans: [Buffer, number, number][] = [];
    for (const frame of this.block) {
      let start = FRAME_HEADER;
      let end = frame.length;
      if (frame[3] === HEADERS) {
        const flags = frame[4]!;
        if (flags & PADDED) end -= frame[start++] ?? 0;
        if (flags & PRIORITY) start += 5;
      }
      if (start > end) {
        this.giveUp(out);
        return;
      }
      spans.push([frame, start, end]);
    }
    let result: BlockResult;
    if (spans.length === 1) {
      const [frame, start, end] = spans[0]!;
      result = rewriteHeaderBlock(frame.subarray(start, end), this.table, this.opts.onAuthority);
    } else {
      const joined = Buffer.concat(spans.map(([f, s, e]) => f.subarray(s, e)));
      result = rewriteHeaderBlock(joined, this.table, this.opts.onAuthority);
      if (result === 'rewritten') {
        let at = 0;
        for (const [frame, start, end] of spans) at += joined.copy(frame, start, at, at + end - start);
      }
    }
    this.headerBlocks++;
    if (result === 'rewritten') this.rewrites++;
    this.flushBlock(out);
    if (result === 'malformed') this.blind = true;
  }

  private flushBlock(out: Buffer[]): void {
    out.push(...this.block);
    this.block = [];
    this.blockBytes = 0;
  }

  /** Stop reading: pass on what is held (then `extra`, a frame header just read) and all that follows. */
  private giveUp(out: Buffer[], extra?: Buffer): void {
    out.push(...this.drain());
    if (extra) out.push(extra);
    this.collecting = undefined;
    this.collectedAt = 0;
    this.block = [];
    this.blockBytes = 0;
  }
}
