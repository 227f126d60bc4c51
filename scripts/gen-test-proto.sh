#!/usr/bin/env bash
# Generate the tests' own protobuf code (test/proto → test/helpers/gen): the CRI RuntimeService subset the
# Kubernetes-node tests call on containerd. Committed like src/api/gen; run after editing test/proto.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf generate test/proto --template '{
  "version": "v2",
  "clean": true,
  "plugins": [{
    "local": "protoc-gen-es",
    "out": "test/helpers/gen",
    "strategy": "all",
    "opt": ["target=ts", "import_extension=ts", "erasable_syntax=true"]
  }]
}'
