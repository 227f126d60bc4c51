// grpc-js clients for the server tests, built from the generated descriptors (the same definitions the
// server uses): metadata, unary calls as promises, a one-message-at-a-time Write stream, status checks.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { DescService } from '@bufbuild/protobuf';
import {
  type Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  Content,
  type WriteContentRequest,
  type WriteContentResponse,
} from '../../src/api/gen/containerd/services/content/v1/content_pb.ts';
import { serviceDefinition } from '../../src/api/service-definition.ts';

export type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

/** Clients for one socket, all closed together. */
export class TestClients {
  readonly #path: string;
  #clients: Client[] = [];

  constructor(socketPath: string) {
    this.#path = socketPath;
  }

  client(service: DescService): AnyClient {
    const Ctor = makeGenericClientConstructor(serviceDefinition(service), service.name);
    return this.raw(Ctor);
  }

  /** A client from any grpc-js constructor (e.g. a hand-written definition of a service hoist lacks). */
  raw(Ctor: ReturnType<typeof makeGenericClientConstructor>): AnyClient {
    const c = new Ctor(`unix:${this.#path}`, credentials.createInsecure()) as unknown as AnyClient;
    this.#clients.push(c);
    return c;
  }

  close(): void {
    for (const c of this.#clients.splice(0)) c.close();
  }
}

export function md(ns: string | undefined, lease?: string): Metadata {
  const m = new Metadata();
  if (ns !== undefined) m.set('containerd-namespace', ns);
  if (lease !== undefined) m.set('containerd-lease', lease);
  return m;
}

export function unary<T>(c: AnyClient, method: string, req: unknown, meta: Metadata): Promise<T> {
  return new Promise((resolve, reject) => {
    c[method]!(req, meta, (err: ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

export interface WriteStream {
  call: ClientDuplexStream<unknown, WriteContentResponse>;
  /** Send one request and wait for its reply (rejects with the call's status on failure). */
  send(req: Partial<WriteContentRequest>): Promise<WriteContentResponse>;
  /** The next reply, or undefined once the server ended the stream. */
  recv(): Promise<WriteContentResponse | undefined>;
  close(): void;
}

/** A Write stream driven one message at a time, like containerd's remote writer. */
export function writeStream(clients: TestClients, meta: Metadata): WriteStream {
  const call = clients.client(Content).write!(meta) as ClientDuplexStream<unknown, WriteContentResponse>;
  const responses: WriteContentResponse[] = [];
  const waiters: { resolve: (r: WriteContentResponse | undefined) => void; reject: (e: unknown) => void }[] =
    [];
  let failure: ServiceError | undefined;
  let ended = false;
  call.on('data', (r: WriteContentResponse) => {
    const w = waiters.shift();
    if (w) w.resolve(r);
    else responses.push(r);
  });
  call.on('error', (e: ServiceError) => {
    failure = e;
    for (const w of waiters.splice(0)) w.reject(e);
  });
  call.on('end', () => {
    ended = true;
    for (const w of waiters.splice(0)) w.resolve(undefined);
  });
  const recv = () =>
    new Promise<WriteContentResponse | undefined>((resolve, reject) => {
      const r = responses.shift();
      if (r) return resolve(r);
      if (failure) return reject(failure);
      if (ended) return resolve(undefined);
      waiters.push({ resolve, reject });
    });
  return {
    call,
    async send(req) {
      call.write(req);
      const r = await recv();
      assert.ok(r, 'stream ended without a reply');
      return r;
    },
    recv,
    close: () => call.end(),
  };
}

export async function rejectsWith(p: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: ServiceError) => {
    assert.equal(err.code, code, `code ${err.code} (${err.details}), expected ${code}`);
    if (message) assert.match(err.details, message);
    return true;
  });
}

export const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
