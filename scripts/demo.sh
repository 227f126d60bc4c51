#!/usr/bin/env bash
# hoist's main job on the embedded default store, with no internet: build a small image, serve it from a
# real registry on 127.0.0.1, pull it with hoist, list it, show disk usage. Installs the registry and
# skopeo with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error
exec node_modules/.bin/node scripts/demo.ts "$@"
