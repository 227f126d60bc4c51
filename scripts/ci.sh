#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what the tests need (the real registry, skopeo,
# containerd/ctr), install the pinned npm deps (incl. node@24), type-check, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
# `npm ci`: exactly the committed lock (it lists what this registry resolves, Biome's platform packages
# included), nothing resolved anew.
npm ci --no-audit --no-fund --loglevel=error
npx tsc --noEmit -p .
bash scripts/check-gen.sh
npx node scripts/check-layers.ts
npx biome check .
npx node --test --test-concurrency="${HOIST_TEST_CONCURRENCY:-2}" --test-timeout=300000 "test/**/*.test.ts"
