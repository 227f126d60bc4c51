// How a service joins the server: a module defines its handlers against a generated service descriptor
// (type-checked), names the containerd gRPC plugin it implements, and may bring more plugins for
// Introspection to list. server.ts registers the modules; new services (snapshots, diff, CRI) add a file
// in services/ and one entry in server.ts's list.
import type { DescService } from '@bufbuild/protobuf';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Backend } from '../api/backend.ts';
import type { Logger } from '../core/log.ts';
import type { EventBus } from './events.ts';
import type { GcTrigger } from './gc-scheduler.ts';
import type { PluginInfo } from './plugins.ts';
import { implementation, type RpcEnv, type ServiceHandlers } from './rpc.ts';
import type { Telemetry } from './telemetry.ts';

/** What every service module may use. */
export interface ServerDeps {
  backend: Backend;
  events: EventBus;
  log: Logger;
  /** The store directory (for daemon-owned files such as the server UUID). */
  root: string;
  gc: GcTrigger;
  /** Where services report what they do for the metrics (a pull's start, progress and end). */
  telemetry: Telemetry;
  /** Every plugin the server offers (Introspection's answer). */
  plugins(): PluginInfo[];
}

export interface RegisteredService {
  /** The `io.containerd.grpc.v1` plugin id containerd gives this service (`content`, `images`, …). */
  id: string;
  service: DescService;
  implementation(env: RpcEnv): UntypedServiceImplementation;
  /** Further plugins the service brings (e.g. a snapshotter), listed by Introspection. */
  plugins?: PluginInfo[];
}

export function defineService<S extends DescService & { method: Record<string, unknown> }>(
  id: string,
  service: S,
  handlers: ServiceHandlers<S>,
  plugins?: PluginInfo[],
): RegisteredService {
  return {
    id,
    service,
    implementation: (env) => implementation(env, service, handlers),
    ...(plugins ? { plugins } : {}),
  };
}
