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
root="$(cd "$here/../.." && pwd)"

build="build"
if [[ $# -gt 0 && "$1" != -* ]]; then
  build="$1"
  shift
fi
if [[ ! -d "$build" && "$build" != /* && -d "$root/$build" ]]; then
  build="$root/$build"
fi
if [[ ! -d "$build" ]]; then
  echo "run-bench-completion: no build dir '$build'" >&2
  exit 2
fi
build="$(cd "$build" && pwd)"

daemon="$build/core/ensembled"
bench="${ENS_BENCH:-$build/tests/bench/ens-bench-completion}"
if [[ ! -x "$daemon" ]]; then
  echo "run-bench-completion: $daemon not found; build first (ninja -C $build)" >&2
  exit 2
fi
if [[ ! -x "$bench" ]]; then
  echo "run-bench-completion: $bench not found; build it (ninja -C $build tests/bench/ens-bench-completion)" >&2
  echo "  or set ENS_BENCH=/path/to/ens-bench-completion" >&2
  exit 2
fi

if [[ ! -f "$build/plugins/provider-local/provider-local.so" ]]; then
  echo "run-bench-completion: $build/plugins/provider-local/provider-local.so not found;" \
    "the offline provider is needed (ninja -C $build)" >&2
  exit 2
fi

if command -v meson >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
  bt="$(meson introspect --buildoptions "$build" 2>/dev/null | python3 -c \
    'import json,sys; print(next((o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"), ""))' \
    2>/dev/null || true)"
  if [[ -n "$bt" && "$bt" != release && "$bt" != debugoptimized ]]; then
    echo "# warning: $build has buildtype=$bt; figures are not representative" >&2
  fi
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ens-bench-completion.XXXXXX")"
dpid=""
cleanup() {
  local rc=$?
  if [[ -n "$dpid" ]] && kill -0 "$dpid" 2>/dev/null; then
    kill -TERM "$dpid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$dpid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$tmp/daemon.log" ]]; then
    echo "--- ensembled log (tail) ---" >&2
    tail -n 30 "$tmp/daemon.log" >&2 || true
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock="$tmp/sock/ensemble.sock"

# memory backend: default settings, independent of the user's configuration
GSETTINGS_BACKEND=memory "$daemon" \
  --socket-dir "$tmp/sock" --state-dir "$tmp/state" --plugin-dir "$build/plugins" \
  >"$tmp/daemon.log" 2>&1 &
dpid=$!

for _ in $(seq 1 100); do
  [[ -S "$sock" ]] && break
  if ! kill -0 "$dpid" 2>/dev/null; then
    echo "run-bench-completion: ensembled exited before creating $sock" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ ! -S "$sock" ]]; then
  echo "run-bench-completion: $sock did not appear within 10 s" >&2
  exit 1
fi

"$bench" --socket "$sock" "$@"
