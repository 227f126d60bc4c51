#!/usr/bin/env node
// hoist's entry point (bin/hoist execs Node 24 on this file). Installed from the package, it runs the
// bundled JavaScript in dist/ (scripts/build.sh); in a checkout (src/ present) the TypeScript sources.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `hoist: needs Node.js 24 or newer (this is ${process.version}); run it as \`hoist\` (bin/hoist), which starts the Node 24 it depends on\n`,
  );
  process.exit(1);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Scripts ask for it often; it needs none of hoist's modules.
  process.stdout.write(`${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`);
  process.exit(0);
}
// Cache compiled (and type-stripped) code across runs: start-up and the applier's worker threads then
// skip compiling (measured on a 40-layer pull: 163 → 123 MiB peak RSS, less CPU per worker).
const { enableCompileCache } = await import('node:module');
const cache = enableCompileCache?.();
// Worker threads read the variable when they start.
if (cache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;

const fromSource = existsSync(join(root, 'src', 'cli', 'main.ts'));
await import(fromSource ? '../src/cli/main.ts' : '../dist/main.js');
