// The registry client's public surface.
export { fetchToken, pickChallenge, verifyCredentials } from './auth.ts';
export { type Challenge, parseChallenges } from './challenge.ts';
export {
  credentialKey,
  DOCKER_HUB_AUTH_KEY,
  type DockerConfigOptions,
  dockerConfigPath,
  dockerCredentials,
  type LoginOptions,
  login,
  logout,
  lookupCredentials,
} from './credentials.ts';
export { configureHosts, type HostCapability, type HostsOptions, type RegistryHost } from './hosts.ts';
export { createPusher, DEFAULT_CHUNK_SIZE, DEFAULT_MONOLITHIC_LIMIT, type PusherContext } from './pusher.ts';
export { type CreateResolverOptions, createResolver, MAX_MANIFEST_BYTES } from './resolver.ts';
export { DEFAULT_TIMEOUTS, RegistryTimeout, type RegistryTimeouts } from './timeouts.ts';
export type * from './types.ts';
