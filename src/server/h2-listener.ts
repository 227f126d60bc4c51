// The unix socket's listener: hoist accepts connections itself and hands each to grpc-js (a connection
// injector), so it can see a connection's first header block before grpc-js does (h2-authority-filter.ts
// says why).
//
// Per connection: an empty SETTINGS frame goes out at once as the server's preface (a Go client waits
// for one before it sends any call; grpc-js's own SETTINGS follow as a second frame, which HTTP/2
// allows), and the client's bytes are read until its first header block and the acknowledgement of that
// SETTINGS frame (dropped: grpc-js did not send it). Then:
//   - the authority is fine (every client that dials `unix://PATH`, containerd's and grpc-js's
//     included): the bytes read go back into the socket (unshift) and grpc-js gets the socket itself,
//     read natively with no JavaScript per byte;
//   - the authority was rewritten: grpc-js gets a stream that runs the rest of the client's bytes
//     through the filter (a later header block may carry the literal again).
// A client that sends more than PENDING_LIMIT bytes first, or bytes that are not HTTP/2, is handed over
// as it is (through the filter when its acknowledgement is still to come). One that sends nothing stays
// here, costing a socket and a few bytes, until it does or the server stops.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from '../core/log.ts';
import { ClientStreamFilter, EMPTY_SETTINGS } from './h2-authority-filter.ts';

/** Client bytes held while waiting for the first header block and the acknowledgement. */
export const PENDING_LIMIT = 64 << 10;

export interface Injector {
  injectConnection(connection: Duplex): void;
}

export interface Listener {
  /** Stop accepting (the socket file goes) and hand every connection still being read to grpc-js. */
  close(): void;
  /** Connections handed over through the filter so far (for tests and logs). */
  readonly filtered: number;
}

/** Listen on `path` (a unix socket), or on `{ fd }` (one systemd passed), and give every connection to `injector`. */
export function listen(path: string | { fd: number }, injector: Injector, log: Logger): Promise<Listener> {
  const pending = new Set<() => void>();
  let filtered = 0;
  // Not half-open, like Node's HTTP/2 server: a client's FIN ends the connection.
  const server: NetServer = createServer({ allowHalfOpen: false }, (socket) => {
    const conn = new PendingConnection(socket, injector, log, () => filtered++);
    pending.add(conn.handOver);
    conn.done = () => pending.delete(conn.handOver);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error('socket listener failed', { error: err.message }));
      resolve({
        close() {
          server.close();
          for (const handOver of [...pending]) handOver();
        },
        get filtered() {
          return filtered;
        },
      });
    });
  });
}

class PendingConnection {
  done: () => void = () => undefined;
  private readonly socket: Socket;
  private readonly injector: Injector;
  private readonly filter: ClientStreamFilter;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private readonly onFiltered: () => void;

  constructor(socket: Socket, injector: Injector, log: Logger, onFiltered: () => void) {
    this.socket = socket;
    this.injector = injector;
    this.onFiltered = onFiltered;
    this.filter = new ClientStreamFilter({
      reply: (data) => socket.write(data),
      onAuthority: (value, valid) => {
        if (!valid)
          log.debug('rewriting a :authority Node would refuse', {
            authority: Buffer.from(value).toString('latin1').slice(0, 200),
          });
      },
    });
    socket.on('data', this.onData);
    socket.on('error', this.onGone);
    socket.on('close', this.onGone);
    socket.write(EMPTY_SETTINGS);
  }

  private readonly onData = (chunk: Buffer): void => {
    for (const b of this.filter.write(chunk)) {
      this.held.push(b);
      this.heldBytes += b.length;
    }
    const f = this.filter;
    if (f.rewrites > 0) this.handOver(true);
    else if (f.blind || (f.headerBlocks > 0 && f.ackSeen)) this.handOver();
    else if (this.heldBytes + f.buffered > PENDING_LIMIT) this.handOver();
  };

  private readonly onGone = (): void => {
    this.detach();
    this.socket.destroy();
  };

  /** Give the connection to grpc-js: the socket itself, or through the filter (`filter`, or when it must). */
  readonly handOver = (filter = false): void => {
    this.detach();
    const { socket } = this;
    if (socket.destroyed) return;
    if (filter || (!this.filter.ackSeen && !this.filter.blind)) {
      this.filter.answerPings = false;
      this.onFiltered();
      this.injector.injectConnection(new FilteredConnection(socket, this.filter, this.held));
      return;
    }
    socket.pause();
    const held = [...this.held, ...this.filter.drain()];
    if (held.length > 0) socket.unshift(Buffer.concat(held));
    this.injector.injectConnection(socket);
  };

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onGone);
    this.socket.off('close', this.onGone);
    this.done();
  }
}

/** The client's bytes through the filter; the server's straight to the socket. */
class FilteredConnection extends Duplex {
  private readonly socket: Socket;

  constructor(socket: Socket, filter: ClientStreamFilter, held: Buffer[]) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    for (const b of held) this.push(b);
    socket.on('data', (chunk: Buffer) => {
      let more = true;
      for (const b of filter.write(chunk)) more = this.push(b) && more;
      if (!more) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback();
    else this.socket.once('drain', () => callback());
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.socket.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = this.socket.write(chunk);
    this.socket.uncork();
    if (ok) callback();
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }
}
