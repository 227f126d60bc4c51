// The demo behind `npm run demo`: a real registry on loopback, an image built here, and hoist pulling it
// into the default store (/var/lib/hoist as root). Prints each hoist command and its output.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushLayout, writeOciLayout } from '../test/helpers/image-builder.ts';
import { startRegistry } from '../test/helpers/registry.ts';

const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const work = await mkdtemp(join(tmpdir(), 'hoist-demo-'));
const registry = await startRegistry();
try {
  await writeOciLayout(join(work, 'layout'), [
    {
      tag: 'demo',
      image: {
        layers: [
          {
            'etc/motd': 'hello from hoist\n',
            'bin/hello': { content: '#!/bin/sh\necho hello\n', mode: 0o755 },
          },
          { randomBytes: 8 * 1024 * 1024 },
        ],
        config: { Cmd: ['/bin/hello'], Labels: { 'org.opencontainers.image.title': 'hoist demo' } },
      },
    },
  ]);
  const ref = `${registry.registryHost}/demo/hello:1.0`;
  await pushLayout(join(work, 'layout'), 'demo/hello:1.0', registry.registryHost, { srcTag: 'demo' });
  const hoist = (...args: string[]) => {
    process.stdout.write(`\n$ hoist ${args.join(' ')}\n`);
    const r = spawnSync(process.execPath, [main, ...args], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`hoist ${args.join(' ')} failed (exit ${r.status})`);
  };
  hoist('pull', '--plain-http', ref);
  hoist('tag', ref, 'demo/hello:latest');
  hoist('images');
  hoist('images', '--all');
  hoist('system', 'df');
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
