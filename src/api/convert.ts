// Conversions between the store's types and the wire messages: Date ↔ Timestamp, int64 (bigint) ↔
// number, descriptors. Timestamps are always set: Go clients treat them as non-nullable and would print
// year-1 dates for a missing one. They carry nanoseconds both ways (src/core/time.ts): containerd's
// clients compare the stamps with their own clock.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type Timestamp, TimestampSchema } from '@bufbuild/protobuf/wkt';
import type { Descriptor } from '../core/descriptor.ts';
import type { Digest } from '../core/digest.ts';
import { invalidArgument } from '../core/errors.ts';
import { dateFromNs, epochNsOf, type PreciseDate } from '../core/time.ts';
import type { DescriptorSchema } from './gen/containerd/types/descriptor_pb.ts';
import type { Mount } from './snapshots.ts';

/** containerd's types.Mount as the wire has it (target is "" when unset). */
interface WireMount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export const mountsToProto = (ms: readonly Mount[]): WireMount[] =>
  ms.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] }));

export const mountsFromProto = (ms: readonly WireMount[]): Mount[] =>
  ms.map((m) => ({
    type: m.type,
    source: m.source,
    ...(m.target ? { target: m.target } : {}),
    options: [...m.options],
  }));

export function timestamp(d: Date): Timestamp {
  const ns = epochNsOf(d);
  // Timestamp's nanos are never negative: seconds round down.
  let seconds = ns / 1_000_000_000n;
  let nanos = ns % 1_000_000_000n;
  if (nanos < 0n) {
    seconds -= 1n;
    nanos += 1_000_000_000n;
  }
  return create(TimestampSchema, { seconds, nanos: Number(nanos) });
}

/** A Timestamp from the wire as a Date with its nanoseconds; a missing one is the epoch. */
export function dateFromTimestamp(t: Timestamp | undefined): PreciseDate {
  return t ? dateFromNs(t.seconds * 1_000_000_000n + BigInt(t.nanos)) : dateFromNs(0n);
}

export const int64 = (n: number): bigint => BigInt(n);

/** An int64 from the wire as a JS number; sizes and offsets beyond 2^53 are refused, not rounded. */
export function fromInt64(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
    throw invalidArgument(`${field} ${v} is out of range: invalid argument`);
  return Number(v);
}

export function descriptorToProto(d: Descriptor): MessageInitShape<typeof DescriptorSchema> {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: int64(d.size),
    annotations: { ...(d.annotations ?? {}) },
  };
}

/** Not validated here: the stores validate digests, sizes and media types with containerd's messages. */
export function descriptorFromProto(
  d: { mediaType: string; digest: string; size: bigint; annotations: Record<string, string> } | undefined,
): Descriptor {
  const out: Descriptor = {
    mediaType: d?.mediaType ?? '',
    digest: (d?.digest ?? '') as Digest,
    size: d ? fromInt64(d.size, 'target.Size') : 0,
  };
  if (d && Object.keys(d.annotations).length > 0) out.annotations = { ...d.annotations };
  return out;
}
