// Events service: Subscribe streams envelopes from the daemon's exchange (filters on `topic` and
// `namespace`) until the client goes away or the server stops; Publish and Forward let clients add
// their own, as containerd allows.
import { create } from '@bufbuild/protobuf';
import { AnySchema, timestampDate } from '@bufbuild/protobuf/wkt';
import { timestamp } from '../../api/convert.ts';
import { Events } from '../../api/gen/containerd/services/events/v1/events_pb.ts';
import { invalidArgument } from '../../core/errors.ts';
import { validateTopic } from '../events.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

export function eventsService(deps: ServerDeps, stopping: AbortSignal): RegisteredService {
  return defineService('events', Events, {
    publish: async (req, call) => {
      const ctx = call.store();
      validateTopic(req.topic);
      if (!req.event) throw invalidArgument('event must not be empty: invalid argument');
      deps.events.forward({
        timestamp: new Date(),
        namespace: ctx.namespace,
        topic: req.topic,
        event: { typeUrl: req.event.typeUrl, value: req.event.value },
      });
      return {};
    },

    forward: async (req) => {
      const env = req.envelope;
      if (!env) throw invalidArgument('envelope must not be empty: invalid argument');
      validateTopic(env.topic);
      if (!env.namespace) throw invalidArgument('envelope namespace must not be empty: invalid argument');
      deps.events.forward({
        timestamp: env.timestamp ? timestampDate(env.timestamp) : new Date(),
        namespace: env.namespace,
        topic: env.topic,
        event: env.event ? { typeUrl: env.event.typeUrl, value: env.event.value } : undefined,
      });
      return {};
    },

    subscribe: async (req, call, send) => {
      const signal = AbortSignal.any([call.signal, stopping]);
      for await (const e of deps.events.subscribe(req.filters, signal)) {
        await send({
          timestamp: timestamp(e.timestamp),
          namespace: e.namespace,
          topic: e.topic,
          ...(e.event ? { event: create(AnySchema, e.event) } : {}),
        });
      }
    },
  });
}
