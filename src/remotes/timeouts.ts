// Deadlines for one registry request, by phase: connecting (TCP and TLS), waiting for the response
// headers once the request is sent, and gaps in the body. Without them a server that accepts the
// connection and never answers kept a pull silent for as long as the client's default allowed (minutes,
// once per retry). A phase that runs out destroys the request with a RegistryTimeout naming the host and
// the phase, which http.ts turns into the user's error.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface RegistryTimeouts {
  /** Connecting: DNS, TCP and the TLS handshake (config `registry.connect_timeout`). */
  connectMs: number;
  /** From the request sent to the response headers (config `registry.header_timeout`). */
  headerMs: number;
  /** No bytes moving while sending the request or receiving the body (config `registry.idle_timeout`). */
  idleMs: number;
}

/** containerd and Docker dial with 30 s; a user hears of a dead registry within a minute. */
export const DEFAULT_TIMEOUTS: RegistryTimeouts = { connectMs: 30_000, headerMs: 30_000, idleMs: 30_000 };

export type TimeoutPhase = 'connect' | 'header' | 'idle';

const CONFIG_KEY: Record<TimeoutPhase, string> = {
  connect: 'registry.connect_timeout',
  header: 'registry.header_timeout',
  idle: 'registry.idle_timeout',
};

const WHAT: Record<TimeoutPhase, string> = {
  connect: 'no connection',
  header: 'no response headers',
  idle: 'no data',
};

export class RegistryTimeout extends Error {
  /** Retried like a reset connection only where progress was made (see fetcher.ts). */
  readonly code = 'ETIMEDOUT';
  readonly phase: TimeoutPhase;
  readonly host: string;

  constructor(host: string, phase: TimeoutPhase, ms: number) {
    super(`${WHAT[phase]} from ${host} within ${formatSeconds(ms)} (${phase} timeout)`);
    this.name = 'RegistryTimeout';
    this.phase = phase;
    this.host = host;
  }

  /** The config key that sets this phase's limit, for the hint. */
  get configKey(): string {
    return CONFIG_KEY[this.phase];
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * Arm the deadlines on a request just created. Returns what to call when the response headers arrive:
 * from then on only the idle deadline runs, and it counts only while the body's socket is read (a
 * consumer that lets the body's buffer fill up is not the server's stall).
 */
export function watchRequest(
  request: ClientRequest,
  host: string,
  secure: boolean,
  t: RegistryTimeouts,
): (res: IncomingMessage) => void {
  let response: IncomingMessage | undefined;
  let connected = false;
  let sent = false;
  let headerTimer: NodeJS.Timeout | undefined;
  const fail = (phase: TimeoutPhase, ms: number) => {
    const err = new RegistryTimeout(host, phase, ms);
    if (response) response.destroy(err);
    else request.destroy(err);
  };
  const connectTimer = setTimeout(() => fail('connect', t.connectMs), t.connectMs);
  const startHeaderTimer = () => {
    if (!connected || !sent || response || headerTimer) return;
    // While waiting for headers only their deadline counts (it may be longer than the idle one).
    request.setTimeout(0);
    headerTimer = setTimeout(() => fail('header', t.headerMs), t.headerMs);
  };
  const onConnected = () => {
    clearTimeout(connectTimer);
    connected = true;
    // Sending the request: a server that stops reading it (a stalled upload) is idle.
    if (!sent) request.setTimeout(t.idleMs);
    startHeaderTimer();
  };
  const onIdle = () => {
    if (!response) {
      if (!sent) fail('idle', t.idleMs);
      return;
    }
    // The body arrived whole, or its buffer is full (so the socket is no longer read): we are the ones
    // not reading. A paused body below its mark still reads the socket, so silence there is the server's.
    if (response.complete || response.readableLength >= response.readableHighWaterMark) {
      request.setTimeout(t.idleMs);
      return;
    }
    fail('idle', t.idleMs);
  };
  request.on('timeout', onIdle);
  request.once('socket', (socket: Socket) => {
    if (request.reusedSocket) onConnected();
    else socket.once(secure ? 'secureConnect' : 'connect', onConnected);
  });
  request.once('finish', () => {
    sent = true;
    startHeaderTimer();
  });
  request.once('close', () => {
    clearTimeout(connectTimer);
    clearTimeout(headerTimer);
  });
  return (res) => {
    response = res;
    clearTimeout(connectTimer);
    clearTimeout(headerTimer);
    request.setTimeout(t.idleMs);
  };
}
