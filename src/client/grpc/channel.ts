// One connection to a containerd API endpoint (a real containerd, or `hoist serve`) and typed calls over
// it: the same generated descriptors and grpc-js definitions the server uses, `containerd-namespace` and
// `containerd-lease` metadata from the Context, and gRPC statuses mapped back to hoist's error catalogue
// with the server's message, so callers handle "not found" the same way for every backend.
import type { DescMethod, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import {
  type Client,
  credentials,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { Content } from '../../api/gen/containerd/services/content/v1/content_pb.ts';
import { serviceDefinition } from '../../api/service-definition.ts';
import type { Context } from '../../core/context.ts';
import { type ErrorCode, ErrorCodes, HoistError } from '../../core/errors.ts';

/** gRPC code → the catalogue's code for it (the first one listed for each gRPC code). */
const FROM_GRPC = new Map<number, ErrorCode>();
for (const [code, grpc] of Object.entries(ErrorCodes) as [ErrorCode, number][]) {
  if (!FROM_GRPC.has(grpc)) FROM_GRPC.set(grpc, code);
}

function fromServiceError(err: ServiceError, address: string): HoistError {
  if (err.code === 14 /* UNAVAILABLE */ && /connect|No connection/i.test(err.details)) {
    return new HoistError(
      'HOIST_UNAVAILABLE',
      `cannot reach the containerd API at ${address}: ${err.details}`,
      {
        hint: 'is the daemon running? check --address / HOIST_ADDRESS and the socket permissions',
      },
    );
  }
  // Another writer holds the ingest ref (containerd: "ref … locked for …", hoist: "ref … locked by …"):
  // the same condition as an embedded store's lock, so pulls wait for the other writer as they do there.
  if (err.code === 14 /* UNAVAILABLE */ && /\bref .* locked\b/.test(err.details))
    return new HoistError('HOIST_LOCKED', err.details, { cause: err });
  const code = FROM_GRPC.get(err.code) ?? 'HOIST_INTERNAL';
  return new HoistError(code, err.details || err.message, { cause: err });
}

type Unary = (req: unknown, meta: Metadata, cb: (err: ServiceError | null, res: unknown) => void) => void;
type Streaming = (req: unknown, meta: Metadata) => NodeJS.ReadableStream & { cancel(): void };

export class GrpcChannel {
  readonly address: string;
  readonly #clients = new Map<string, Client & Record<string, unknown>>();

  constructor(address: string) {
    this.address = address;
  }

  #client(service: DescService): Client & Record<string, unknown> {
    let c = this.#clients.get(service.typeName);
    if (!c) {
      const Ctor = makeGenericClientConstructor(serviceDefinition(service), service.name);
      c = new Ctor(`unix:${this.address}`, credentials.createInsecure()) as Client & Record<string, unknown>;
      this.#clients.set(service.typeName, c);
    }
    return c;
  }

  metadata(ctx: Context): Metadata {
    const m = new Metadata();
    m.set('containerd-namespace', ctx.namespace);
    if (ctx.lease) m.set('containerd-lease', ctx.lease);
    return m;
  }

  unary<M extends DescMethod>(
    service: DescService,
    method: M,
    ctx: Context,
    req: MessageInitShape<M['input']>,
  ): Promise<MessageShape<M['output']>> {
    const c = this.#client(service);
    const fn = c[method.localName] as Unary;
    return new Promise((resolve, reject) => {
      fn.call(c, req, this.metadata(ctx), (err, res) =>
        err ? reject(fromServiceError(err, this.address)) : resolve(res as MessageShape<M['output']>),
      );
    });
  }

  /** A server stream as an async iterable; errors arrive mapped like unary ones. */
  async *stream<M extends DescMethod>(
    service: DescService,
    method: M,
    ctx: Context,
    req: MessageInitShape<M['input']>,
  ): AsyncGenerator<MessageShape<M['output']>> {
    const c = this.#client(service);
    const call = (c[method.localName] as Streaming).call(c, req, this.metadata(ctx));
    try {
      for await (const msg of call as AsyncIterable<MessageShape<M['output']>>) yield msg;
    } catch (err) {
      throw (err as ServiceError).code !== undefined
        ? fromServiceError(err as ServiceError, this.address)
        : err;
    } finally {
      call.cancel();
    }
  }

  /** The Content.Write bidirectional stream (see writer.ts). */
  bidi(ctx: Context): unknown {
    const c = this.#client(Content);
    return (c.write as (meta: Metadata) => unknown).call(c, this.metadata(ctx));
  }

  mapError(err: ServiceError): HoistError {
    return fromServiceError(err, this.address);
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
