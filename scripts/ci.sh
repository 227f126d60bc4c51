#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what the tests need (the real registry, skopeo,
# containerd/ctr), install the pinned npm deps (incl. node@24), type-check, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
# `npm install`, not `npm ci`: the lock is exact, but the registry this project installs from lacks
# Biome's other-platform optional packages, and `npm ci` refuses a lock that does not list them.
# With the committed lock `npm install` installs exactly the locked versions and leaves the lock as is.
npm install --no-audit --no-fund --loglevel=error
npx tsc --noEmit -p .
bash scripts/check-gen.sh
npx biome check .
npx node --test --test-concurrency="${HOIST_TEST_CONCURRENCY:-2}" --test-timeout=300000 "test/**/*.test.ts"
