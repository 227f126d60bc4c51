#!/usr/bin/env bash
# Run benchmarks (default: issue 2's pull, images list, rmi; others by name: pull-unpack convert save-load push serve), one after the other, each interleaving hoist
# with its anchors (ctr / skopeo). Output: bench/results/<UTC time>/<bench>.md (the tables and goals,
# stdout) and <bench>.log (progress, stderr), and all.md with the three reports in one file.
#   bench/run-all.sh                  # all of them, BENCH_RUNS=5
#   BENCH_RUNS=3 bench/run-all.sh pull rmi
# Other knobs: BENCH_NAMES (images-list, default 10000), BENCH_REBUILD=1 (rebuild the cached medium
# image), BENCH_CPU_PROF=DIR (hoist runs write .cpuprofile files there; see bench/profile-summary.ts),
# BENCH_OUT=DIR (where to write). pull-unpack: BENCH_IMAGES=medium,40-layers,1gib,real-files (default
# all), BENCH_WARMUP=0 (no untimed warm-up round), BENCH_JOURNALED_FS=0 (stores on the temp dir instead of
# a loop-mounted journaled ext4), BENCH_FS_GIB (that file system's size, default 16).
#   BENCH_RUNS=1 BENCH_IMAGES=real-files bash bench/run-all.sh pull-unpack
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# pull-unpack's floor downloads with curl.
command -v curl >/dev/null 2>&1 || apt-get install -y curl
[[ -x node_modules/.bin/node ]] || npm ci --no-audit --no-fund

benches=("$@")
((${#benches[@]})) || benches=(pull images-list rmi)
out=${BENCH_OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
echo "bench: writing to $out (BENCH_RUNS=${BENCH_RUNS:-5})" >&2

started=$SECONDS
for b in "${benches[@]}"; do
  [[ -f bench/$b.ts ]] || { echo "bench: no bench/$b.ts" >&2; exit 2; }
  echo "bench: $b" >&2
  t=$SECONDS
  node_modules/.bin/node "bench/$b.ts" >"$out/$b.md" 2> >(tee "$out/$b.log" >&2)
  echo "bench: $b took $((SECONDS - t)) s" >&2
done
for b in "${benches[@]}"; do
  cat "$out/$b.md"
  echo
done >"$out/all.md"
echo "bench: all done in $((SECONDS - started)) s; report in $out/all.md" >&2
