#!/usr/bin/env node
// Entry point for `npx hoist` / the `hoist` bin: run the TypeScript CLI directly (Node 24 strips types).
// When started by an older system node, re-exec under the pinned node@24 from node_modules.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write('hoist: needs Node.js 24 or newer; run `npm install` in the hoist checkout first\n');
    process.exit(1);
  }
  const r = spawnSync(pinned, [join(here, 'hoist.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
// Cache compiled (and type-stripped) code across runs: start-up and the applier's worker threads then
// skip stripping types (measured on a 40-layer pull: 163 → 123 MiB peak RSS, less CPU per worker).
const { enableCompileCache } = await import('node:module');
const cache = enableCompileCache?.();
// Worker threads read the variable when they start.
if (cache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
await import('../src/cli/main.ts');
