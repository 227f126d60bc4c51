// grpc-js service definitions built from protobuf-es descriptors: the binary wire format through
// toBinary/fromBinary, so no .proto is loaded at run time. The server and the gRPC client both use them.
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

const asBuffer = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

/**
 * A request whose bytes are not the method's message. grpc-js answers a deserializer that throws with
 * INTERNAL ("Error deserializing request"), a server fault; it is the client's: the server's adapters
 * answer this with INVALID_ARGUMENT naming the message type.
 */
export class UndecodableRequest {
  readonly typeName: string;
  readonly reason: string;
  constructor(typeName: string, reason: string) {
    this.typeName = typeName;
    this.reason = reason;
  }
}

function decodeRequest(m: DescMethod, b: Buffer): unknown {
  try {
    return fromBinary(m.input, b);
  } catch (err) {
    return new UndecodableRequest(m.input.typeName, (err as Error).message);
  }
}

function methodDefinition(service: DescService, m: DescMethod): MethodDefinition<unknown, unknown> {
  const streamingIn = m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming';
  const streamingOut = m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming';
  return {
    path: `/${service.typeName}/${m.name}`,
    requestStream: streamingIn,
    responseStream: streamingOut,
    originalName: m.name,
    requestSerialize: (v) => asBuffer(toBinary(m.input, create(m.input, v as MessageInitShape<DescMessage>))),
    requestDeserialize: (b: Buffer) => decodeRequest(m, b),
    responseSerialize: (v) =>
      asBuffer(toBinary(m.output, create(m.output, v as MessageInitShape<DescMessage>))),
    responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
  };
}

/** The grpc-js definition of a protobuf-es service (also usable to build a client, as the tests do). */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) def[m.localName] = methodDefinition(service, m);
  return def as ServiceDefinition;
}
