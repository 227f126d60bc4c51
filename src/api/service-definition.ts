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

function methodDefinition(service: DescService, m: DescMethod): MethodDefinition<unknown, unknown> {
  const streamingIn = m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming';
  const streamingOut = m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming';
  return {
    path: `/${service.typeName}/${m.name}`,
    requestStream: streamingIn,
    responseStream: streamingOut,
    originalName: m.name,
    requestSerialize: (v) => asBuffer(toBinary(m.input, create(m.input, v as MessageInitShape<DescMessage>))),
    requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
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
