// The daemon's event exchange: services publish (`/images/create`, `/content/delete`, …), Subscribe
// streams receive envelopes whose Any payload carries the bare message name as type_url, as containerd's
// do. Subscribers each get a bounded queue; one that falls too far behind is dropped, never the publisher.
import { create, type DescMessage, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { isIdentifier } from '../core/context.ts';
import { HoistError, invalidArgument } from '../core/errors.ts';
import { compileFilters, type Filter } from '../metadata/filters.ts';

export interface EventEnvelope {
  timestamp: Date;
  namespace: string;
  topic: string;
  event: { typeUrl: string; value: Uint8Array } | undefined;
}

/** Envelopes a subscriber may have waiting before it is considered stuck and dropped. */
export const SUBSCRIBER_QUEUE_LIMIT = 10_000;

interface Subscriber {
  filter: Filter;
  queue: EventEnvelope[];
  wake: (() => void) | undefined;
  failed: HoistError | undefined;
}

/** containerd's topic rule: `/` followed by `/`-separated identifiers. */
export function validateTopic(topic: string): void {
  const parts = topic.split('/');
  if (!topic.startsWith('/') || parts.slice(1).some((p) => !isIdentifier(p)))
    throw invalidArgument(`must start with '/' and have identifier components: ${topic}: invalid argument`);
}

export class EventBus {
  #subscribers = new Set<Subscriber>();

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  publish<S extends DescMessage>(
    namespace: string,
    topic: string,
    schema: S,
    init: MessageInitShape<S>,
  ): void {
    const value = toBinary(schema, create(schema, init));
    this.forward({ timestamp: new Date(), namespace, topic, event: { typeUrl: schema.typeName, value } });
  }

  forward(envelope: EventEnvelope): void {
    for (const s of this.#subscribers) {
      if (s.failed) continue;
      const ok = s.filter.match((path) => {
        if (path.length !== 1) return undefined;
        if (path[0] === 'topic') return envelope.topic;
        if (path[0] === 'namespace') return envelope.namespace;
        return undefined;
      });
      if (!ok) continue;
      if (s.queue.length >= SUBSCRIBER_QUEUE_LIMIT)
        s.failed = new HoistError('HOIST_UNAVAILABLE', 'event subscriber is too slow, events were dropped');
      else s.queue.push(envelope);
      s.wake?.();
    }
  }

  /** Envelopes matching `filters` (containerd syntax on `topic` and `namespace`) until `signal` aborts. */
  async *subscribe(filters: readonly string[], signal: AbortSignal): AsyncGenerator<EventEnvelope> {
    const sub: Subscriber = {
      filter: compileFilters(filters),
      queue: [],
      wake: undefined,
      failed: undefined,
    };
    this.#subscribers.add(sub);
    const onAbort = () => sub.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (signal.aborted) return;
        if (sub.failed) throw sub.failed;
        const next = sub.queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          sub.wake = resolve;
        });
        sub.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#subscribers.delete(sub);
    }
  }
}
