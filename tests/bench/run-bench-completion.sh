#!/usr/bin/env bash
# run-bench-completion.sh — run ens-bench-completion against a throw-away
# ensembled with the offline provider "local" (plugin provider-local).
#
# Usage: tests/bench/run-bench-completion.sh [BUILD_DIR] [ens-bench-completion options...]
#   BUILD_DIR defaults to "build" (relative to the current directory, or to
#   the repository root if it does not exist there).  Nothing is built here:
#   run `meson setup build && ninja -C build` first (a release build,
#   `meson setup build --buildtype=release`, gives meaningful figures).
#   Extra arguments go to the bench binary, e.g. --quick or --count 5000.
#   ENS_BENCH=/path/to/ens-bench-completion overrides the bench binary location.
#
# Starts BUILD/core/ensembled with private socket/state dirs under a temp
# directory (plugins from BUILD/plugins, so provider-local must be built),
# waits for the socket, runs the benchmark, then stops the daemon and removes
# the temp directory.  Not part of the test suite.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/run-bench-lib.sh"

bench_parse_args run-bench-completion "$@"

daemon="$build/core/ensembled"
bench="${ENS_BENCH:-$build/tests/bench/ens-bench-completion}"
bench_need run-bench-completion "$daemon" "build first (ninja -C $build)"
bench_need run-bench-completion "$bench" "build it (ninja -C $build tests/bench/ens-bench-completion)" \
  "or set ENS_BENCH=/path/to/ens-bench-completion"

if [[ ! -f "$build/plugins/provider-local/provider-local.so" ]]; then
  echo "run-bench-completion: $build/plugins/provider-local/provider-local.so not found;" \
    "the offline provider is needed (ninja -C $build)" >&2
  exit 2
fi

bench_warn_buildtype "$build"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ens-bench-completion.XXXXXX")"
bench_cleanup_on_exit "$tmp"

bench_start_daemon run-bench-completion "$build" "$tmp"
sock="$tmp/sock/ensemble.sock"

"$bench" --socket "$sock" "${bench_args[@]}"
