#!/usr/bin/env bash
# The package's JavaScript (run by `npm pack` as prepack): one esbuild bundle of the CLI, the library
# (src/index.ts) and the layer applier's worker, split into shared chunks, in dist/; the library's type
# declarations in dist/types (tsc). Bundled rather than compiled file by file: a
# command loads a few chunks instead of resolving hundreds of modules, and tree-shaking drops what the
# gRPC and protobuf libraries carry unused (measured: `hoist images` on an empty store 0.14–0.18 →
# 0.11–0.12 s, `hoist serve` idle 91 → 80 MiB). Entries and chunks sit side by side in dist/, so the
# applier's `new URL('./apply-worker.js', import.meta.url)` finds its worker.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
npx esbuild src/cli/main.ts src/index.ts src/diff/apply-worker.ts \
  --bundle --platform=node --format=esm --target=node24 --splitting \
  --outdir=dist --entry-names='[name]' --chunk-names='[name]-[hash]' \
  --minify-syntax --minify-whitespace --legal-comments=linked --log-level=warning \
  "--banner:js=import { createRequire as __hoistRequire } from 'node:module'; const require = __hoistRequire(import.meta.url);"
npx tsc -p tsconfig.build.json
