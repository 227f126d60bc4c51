// Version.Version. hoist speaks containerd 1.6's API, so it reports that API level as the semantic
// version (tools gate features on it) with hoist's own version as build metadata; ctr notes the
// difference from its own version on stderr only.
import { Version } from '../../api/gen/containerd/services/version/v1/version_pb.ts';
import { defineService, type RegisteredService } from '../service.ts';

export const HOIST_VERSION = '0.1.0';
/** The containerd release whose API hoist serves. */
export const CONTAINERD_API_VERSION = '1.6.20';

export function versionService(): RegisteredService {
  return defineService('version', Version, {
    version: async () => ({
      version: `${CONTAINERD_API_VERSION}+hoist.${HOIST_VERSION}`,
      revision: `hoist-${HOIST_VERSION}`,
    }),
  });
}
