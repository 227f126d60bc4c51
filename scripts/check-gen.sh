#!/usr/bin/env bash
# Fail when the committed generated code (src/api/gen) is not what `npm run gen` makes from proto/:
# a .proto was edited without regenerating, or generated code was edited by hand. Takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx buf generate --output "$tmp"
if ! diff -r "$tmp/src/api/gen" src/api/gen >/dev/null; then
  diff -r "$tmp/src/api/gen" src/api/gen | head -40 >&2 || true
  echo "check-gen: src/api/gen is out of date with proto/; run npm run gen" >&2
  exit 1
fi
