// The contract suites (test/contract/) on each backend: the embedded store, the gRPC adapter over hoist
// serve (in this process, and as the `hoist serve` command), and the same adapter over containerd 1.6.
// One set of expectations for all of them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openGrpc } from '../../src/client/grpc/backend.ts';
import { createLogger } from '../../src/core/log.ts';
import { openEmbedded } from '../../src/embedded/backend.ts';
import { startServer } from '../../src/server/server.ts';
import type { OpenBackend } from '../contract/backend.ts';
import { contentContract } from '../contract/content.ts';
import { diffContract } from '../contract/diff.ts';
import { imagesContract } from '../contract/images.ts';
import { leasesContract } from '../contract/leases.ts';
import { maintenanceContract } from '../contract/maintenance.ts';
import { namespacesContract } from '../contract/namespaces.ts';
import { snapshotsContract } from '../contract/snapshots.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { startServe } from '../helpers/serve.ts';

const embedded: OpenBackend = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-contract-'));
  const backend = await openEmbedded(join(dir, 'root'));
  return {
    backend,
    async close() {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

const overInProcessServe: OpenBackend = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hoist-contract-serve-'));
  const server = await startServer({
    root: join(dir, 'root'),
    address: join(dir, 'hoist.sock'),
    log: createLogger('error'),
    gcIntervalMs: 0,
  });
  const backend = await openGrpc(server.path);
  return {
    backend,
    async close() {
      await backend.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

const overServe: OpenBackend = async () => {
  const served = await startServe();
  const backend = await openGrpc(served.socket);
  return {
    backend,
    async close() {
      await backend.close();
      await served.stop();
    },
  };
};

const overContainerd: OpenBackend = async () => {
  const d = await startContainerd();
  const backend = await openGrpc(d.socket);
  return {
    backend,
    async close() {
      await backend.close();
      await d.stop();
    },
  };
};

const backends: [string, OpenBackend][] = [
  ['embedded store', embedded],
  ['gRPC adapter over hoist serve (in process)', overInProcessServe],
  ['gRPC adapter over hoist serve', overServe],
  ['gRPC adapter over containerd 1.6', overContainerd],
];
/** The backends hoist implements (containerd has no maintenance service; its diff mounts for itself). */
const hoistBackends = backends.slice(0, 3);

describe('content contract', () => {
  for (const [label, open] of backends) contentContract(label, open);
});
describe('images contract', () => {
  for (const [label, open] of backends) imagesContract(label, open);
});
describe('leases contract', () => {
  for (const [label, open] of backends) leasesContract(label, open);
});
describe('snapshots contract', () => {
  for (const [label, open] of backends) snapshotsContract(label, open);
});
describe('namespaces contract', () => {
  for (const [label, open] of backends) namespacesContract(label, open);
});
// The diff port through a containerd would have containerd mount and write (its walking differ): only the
// two adapters hoist implements are run here; containerd's Diff service is exercised by ctr's own unpack.
describe('diff contract', () => {
  for (const [label, open] of hoistBackends) diffContract(label, open);
});
// hoist's own port: a containerd has no maintenance service (the CLI says so and names ctr's commands).
describe('maintenance contract', () => {
  for (const [label, open] of hoistBackends) maintenanceContract(label, open);
});
