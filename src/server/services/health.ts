// gRPC's standard health service (grpc.health.v1.Health), which grpc_health_probe, Kubernetes' gRPC
// probes and load balancers ask. containerd serves it too (its `healthcheck` gRPC plugin). Every service
// the daemon registers, and the empty name for the server as a whole, is SERVING until a graceful stop
// begins, and NOT_SERVING from that moment on, while the calls in flight finish: a Watch stream opened
// before the stop sees the change. After the stop no new call gets through at all (the server answers
// GOAWAY), so NOT_SERVING is what a watcher reads between the two.
import { Health, HealthCheckResponse_ServingStatus } from '../../api/gen/grpc/health/v1/health_pb.ts';
import { notFound } from '../../core/errors.ts';
import { defineService, type RegisteredService } from '../service.ts';

/** containerd's plugin id for this service. */
const PLUGIN_ID = 'healthcheck';

/**
 * `services`: the full names of the services served (read on each call, so services registered after
 * this one count); `stopping`: aborted when a graceful stop begins.
 */
export function healthService(services: () => readonly string[], stopping: AbortSignal): RegisteredService {
  const known = (name: string) => name === '' || name === Health.typeName || services().includes(name);
  const status = () =>
    stopping.aborted
      ? HealthCheckResponse_ServingStatus.NOT_SERVING
      : HealthCheckResponse_ServingStatus.SERVING;

  return defineService(PLUGIN_ID, Health, {
    async check(req) {
      // grpc-go's health server answers an unknown name so; probes print the message.
      if (!known(req.service)) throw notFound(`unknown service ${req.service}`);
      return { status: status() };
    },

    async watch(req, call, send) {
      if (!known(req.service)) {
        // The protocol keeps the stream open for a service that may appear later; none does here, so
        // answer once and wait for the client or the stop like any other watcher.
        await send({ status: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
      } else {
        await send({ status: status() });
        if (stopping.aborted) return;
      }
      await new Promise<void>((resolve) => {
        if (call.signal.aborted || stopping.aborted) return resolve();
        // Both listeners go either way: `stopping` lives as long as the server, watchers come and go.
        const done = () => {
          call.signal.removeEventListener('abort', done);
          stopping.removeEventListener('abort', done);
          resolve();
        };
        call.signal.addEventListener('abort', done);
        stopping.addEventListener('abort', done);
      });
      // The stream ends with the change so a graceful stop need not wait for watchers to hang up.
      if (stopping.aborted && !call.signal.aborted && known(req.service))
        await send({ status: HealthCheckResponse_ServingStatus.NOT_SERVING });
    },
  });
}
