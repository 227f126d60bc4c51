// Adapters from typed async handlers to grpc-js call handlers (the service definitions themselves are
// in src/api/service-definition.ts): every call gets a CallContext, errors become containerd-shaped statuses,
// streams honour back-pressure, and each call is logged and tracked for a clean shutdown.
import { once } from 'node:events';
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import type {
  Metadata,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { UndecodableRequest } from '../api/service-definition.ts';
import { GrpcCode, HoistError, invalidArgument } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { type CallContext, callContext } from './call-context.ts';
import { isServerFault, toServiceError, toStatus } from './status.ts';

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  req: MessageShape<I>,
  call: CallContext,
) => Promise<MessageInitShape<O>>;

export type ServerStreamHandler<I extends DescMessage, O extends DescMessage> = (
  req: MessageShape<I>,
  call: CallContext,
  send: (msg: MessageInitShape<O>) => Promise<void>,
) => Promise<void>;

/** A bidirectional stream, strictly one message at a time in each direction. */
export interface BidiStream<I extends DescMessage, O extends DescMessage> {
  /** The next client message, or undefined when the client closed its side. */
  recv(): Promise<MessageShape<I> | undefined>;
  send(msg: MessageInitShape<O>): Promise<void>;
}

export type BidiHandler<I extends DescMessage, O extends DescMessage> = (
  stream: BidiStream<I, O>,
  call: CallContext,
) => Promise<void>;

type HandlerFor<M> = M extends {
  methodKind: infer K;
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? K extends 'unary'
    ? UnaryHandler<I, O>
    : K extends 'server_streaming'
      ? ServerStreamHandler<I, O>
      : K extends 'bidi_streaming'
        ? BidiHandler<I, O>
        : never
  : never;

/** Handlers for every method of a generated service, keyed like the generated `method` map. */
export type ServiceHandlers<S extends { method: Record<string, unknown> }> = {
  [K in keyof S['method']]: HandlerFor<S['method'][K]>;
};

/** What the adapters need from the server. */
export interface RpcEnv {
  log: Logger;
  /** Aborted when the server begins a graceful stop: long-lived streams (event subscriptions) end. */
  stopping: AbortSignal;
  /** Calls in flight; a forced stop aborts them all, then waits for their handlers to unwind. */
  calls: CallTracker;
  /** Told of every call's end: its full method name, status code and duration (the metrics count them). */
  onCallEnded?: (method: string, code: GrpcCode, ms: number) => void;
}

/** The calls whose handlers are still running. */
export class CallTracker {
  #calls = new Set<AbortController>();
  #idle: (() => void)[] = [];

  get size(): number {
    return this.#calls.size;
  }

  add(ac: AbortController): void {
    this.#calls.add(ac);
  }

  delete(ac: AbortController): void {
    this.#calls.delete(ac);
    if (this.#calls.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  abortAll(): void {
    for (const ac of this.#calls) ac.abort();
  }

  /** Resolves once no handler is running (handlers release writers and locks in their cleanup). */
  idle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

const cancelled = () => new HoistError('HOIST_CANCELLED', 'context canceled');

interface CallLike {
  metadata: Metadata;
  on(event: 'cancelled', listener: () => void): unknown;
}

/** Common bookkeeping: context, cancellation, tracking, one log line per call. */
function begin(env: RpcEnv, call: CallLike, method: string) {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort(cancelled()));
  env.calls.add(ac);
  const ctx = callContext(call.metadata, ac.signal);
  const started = performance.now();
  return {
    ctx,
    ac,
    done(err?: unknown) {
      env.calls.delete(ac);
      const ms = Math.round((performance.now() - started) * 10) / 10;
      if (err === undefined) {
        env.onCallEnded?.(method, GrpcCode.OK, ms);
        if (env.log.enabled('debug')) env.log.debug('rpc', { method, namespace: ctx.namespace, ms });
        return;
      }
      const { code, details } = toStatus(err);
      env.onCallEnded?.(method, code, ms);
      const fields = { method, namespace: ctx.namespace, code, error: details, ms };
      if (isServerFault(code)) env.log.error('rpc failed', fields);
      else if (env.log.enabled('debug')) env.log.debug('rpc', fields);
    },
  };
}

/**
 * `p`, or the signal's reason if it aborts first. The abort listener is removed as soon as either
 * settles: racing every read against one long-lived "aborted" promise would instead pile up a reaction
 * per message on it, each holding its settled result (a request with up to 1 MiB of data) until the call ends.
 */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      p.catch(() => undefined);
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Write one message, waiting for the transport to drain when its buffer is full. */
async function writeWithBackpressure(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  msg: unknown,
  signal: AbortSignal,
): Promise<void> {
  signal.throwIfAborted();
  if (call.write(msg)) return;
  await once(call, 'drain', { signal });
}

/** The request, or INVALID_ARGUMENT when its bytes were not the method's message (bad protobuf). */
function decoded(req: unknown, name: string): MessageShape<DescMessage> {
  if (req instanceof UndecodableRequest)
    throw invalidArgument(
      `${name}: the request is not a valid ${req.typeName} (${req.reason}): invalid argument`,
    );
  return req as MessageShape<DescMessage>;
}

function adapt(env: RpcEnv, service: DescService, m: DescMethod, handler: unknown): unknown {
  const name = `/${service.typeName}/${m.name}`;
  switch (m.methodKind) {
    case 'unary': {
      const h = handler as UnaryHandler<DescMessage, DescMessage>;
      return (call: ServerUnaryCall<unknown, unknown>, callback: (err: unknown, value?: unknown) => void) => {
        const c = begin(env, call, name);
        Promise.resolve()
          .then(() => h(decoded(call.request, name), c.ctx))
          .then(
            (res) => {
              c.done();
              callback(null, res);
            },
            (err: unknown) => {
              c.done(err);
              callback(toServiceError(err));
            },
          );
      };
    }
    case 'server_streaming': {
      const h = handler as ServerStreamHandler<DescMessage, DescMessage>;
      return (call: ServerWritableStream<unknown, unknown>) => {
        const c = begin(env, call, name);
        const send = (msg: unknown) => writeWithBackpressure(call, msg, c.ac.signal);
        Promise.resolve()
          .then(() => h(decoded(call.request, name), c.ctx, send))
          .then(
            () => {
              c.done();
              call.end();
            },
            (err: unknown) => {
              c.done(err);
              call.emit('error', toServiceError(err));
            },
          );
      };
    }
    case 'bidi_streaming': {
      const h = handler as BidiHandler<DescMessage, DescMessage>;
      return (call: ServerDuplexStream<unknown, unknown>) => {
        const c = begin(env, call, name);
        const it = call[Symbol.asyncIterator]() as AsyncIterator<MessageShape<DescMessage>>;
        const stream: BidiStream<DescMessage, DescMessage> = {
          async recv() {
            const r = await abortable(it.next(), c.ac.signal);
            return r.done ? undefined : decoded(r.value, name);
          },
          send: (msg) => writeWithBackpressure(call, msg, c.ac.signal),
        };
        h(stream, c.ctx).then(
          () => {
            c.done();
            call.end();
          },
          (err: unknown) => {
            c.done(err);
            call.emit('error', toServiceError(err));
          },
        );
      };
    }
    default:
      throw new HoistError('HOIST_NOT_IMPLEMENTED', `${name}: ${m.methodKind} methods are not supported`);
  }
}

/** grpc-js implementation object for `service` from typed handlers. */
export function implementation<S extends DescService & { method: Record<string, unknown> }>(
  env: RpcEnv,
  service: S,
  handlers: ServiceHandlers<S>,
): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  const byName = handlers as Record<string, unknown>;
  for (const m of service.methods) {
    const h = byName[m.localName];
    if (h === undefined)
      throw new HoistError('HOIST_INTERNAL', `no handler for /${service.typeName}/${m.name}`);
    out[m.localName] = adapt(env, service, m, h) as UntypedServiceImplementation[string];
  }
  return out;
}
