// The content contract (test/contract/content.ts) on each backend: the embedded store, the gRPC adapter
// over hoist serve, and the same adapter over containerd 1.6. One set of expectations for all three.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openEmbedded } from '../../src/client/embedded.ts';
import { openGrpc } from '../../src/client/grpc/backend.ts';
import { contentContract } from '../contract/content.ts';
import { startContainerd } from '../helpers/containerd.ts';
import { startServe } from '../helpers/serve.ts';

describe('content contract', () => {
  contentContract('embedded store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hoist-contract-'));
    const backend = await openEmbedded(join(dir, 'root'));
    return {
      backend,
      async close() {
        await backend.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

  contentContract('gRPC adapter over hoist serve', async () => {
    const served = await startServe();
    const backend = await openGrpc(served.socket);
    return {
      backend,
      async close() {
        await backend.close();
        await served.stop();
      },
    };
  });

  contentContract('gRPC adapter over containerd 1.6', async () => {
    const d = await startContainerd();
    const backend = await openGrpc(d.socket);
    return {
      backend,
      async close() {
        await backend.close();
        await d.stop();
      },
    };
  });
});
