#!/usr/bin/env bash
# Runs the load benchmark (benches/scim_load.rs) and keeps what it prints in bench/results.txt.
#
#   bench/run.sh                      # the issue's sizes: 100,000 users, a 200,000-member group
#   SCIM_BENCH_QUICK=1 bench/run.sh   # a small smoke run (a few thousand users)
#
# Other knobs (environment): SCIM_BENCH_USERS, SCIM_BENCH_SYNC_CONNS, SCIM_BENCH_GET_CONNS,
# SCIM_BENCH_WRK_THREADS, SCIM_BENCH_WRK_SECS, SCIM_BENCH_WRK_ROUNDS, SCIM_BENCH_GROUP_MEMBERS,
# SCIM_BENCH_PATCHES, SCIM_BENCH_PATCH_SIZE, SCIM_BENCH_PHASE_SECS, SCIM_BENCH_WRK (path of wrk),
# SCIM_BENCH_SERVER (another scimbridge binary to measure), SCIM_BENCH_SKIP_PATCH=1 (tests 1, 2, 4 only),
# SCIM_BENCH_KEEP_DATA=DIR (keep the data dir, e.g. to profile a server on it).
# All traffic goes to 127.0.0.1; every phase is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v "${SCIM_BENCH_WRK:-wrk}" >/dev/null 2>&1; then
  echo "wrk not found; installing Debian's package (needs root)." >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq wrk
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq wrk
  fi
fi

# `cargo bench` builds the benchmark and the server binary it runs (target/release/scimbridge,
# bench profile = release settings) before running it.
out=bench/results.txt
{
  echo "# bench/run.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "# $(rustc --version), $(wrk --version 2>&1 | head -1 || true)"
} > "$out.tmp"
set +e
cargo bench --quiet --bench scim_load 2>&1 | grep --line-buffered -v '^ *Compiling ' | tee -a "$out.tmp"
status=${PIPESTATUS[0]}
set -e
mv "$out.tmp" "$out"
echo "Figures written to $out (benchmark exit status $status)"
exit "$status"
