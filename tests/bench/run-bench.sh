#!/usr/bin/env bash
# run-bench.sh — run ens-bench-unix against a throw-away ensembled.
#
# Usage: tests/bench/run-bench.sh [BUILD_DIR] [ens-bench-unix options...]
#   BUILD_DIR defaults to "build" (relative to the current directory, or to
#   the repository root if it does not exist there).  Nothing is built here:
#   run `meson setup build && ninja -C build` first (a release build,
#   `meson setup build --buildtype=release`, gives meaningful figures).
#   Extra arguments go to the bench binary, e.g. --quick or --seconds 5.
#   ENS_BENCH=/path/to/ens-bench-unix overrides the bench binary location.
#
# Starts BUILD/core/ensembled with private socket/state dirs under a temp
# directory, waits for the socket, runs the benchmark, then stops the daemon
# and removes the temp directory.  Not part of the test suite.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/run-bench-lib.sh"

bench_parse_args run-bench "$@"

daemon="$build/core/ensembled"
bench="${ENS_BENCH:-$build/tests/bench/ens-bench-unix}"
bench_need run-bench "$daemon" "build first (ninja -C $build)"
bench_need run-bench "$bench" "build it (ninja -C $build tests/bench/ens-bench-unix)" \
  "or set ENS_BENCH=/path/to/ens-bench-unix"

bench_warn_buildtype "$build"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ens-bench.XXXXXX")"
bench_cleanup_on_exit "$tmp"

bench_start_daemon run-bench "$build" "$tmp"
sock="$tmp/sock/ensemble.sock"

"$bench" --socket "$sock" "${bench_args[@]}"
