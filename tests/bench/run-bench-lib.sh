# shellcheck shell=bash
# run-bench-lib.sh — what the benchmark runners (run-bench.sh,
# run-bench-completion.sh, run-bench-redis.sh, bench-http.sh) share.
# Sourced, not run: `. "$here/run-bench-lib.sh"` after `set -euo pipefail`.
# NAME, the first argument of some functions, is the runner's name for its
# messages.

bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench_dpid=""

# bench_build_dir NAME DIR: prints DIR (relative to the current directory,
# or else to the repository root) as an absolute path; exits 2 when there
# is no such directory.
bench_build_dir() {
  local name=$1 dir=$2
  if [[ ! -d "$dir" && "$dir" != /* && -d "$bench_root/$dir" ]]; then
    dir="$bench_root/$dir"
  fi
  if [[ ! -d "$dir" ]]; then
    echo "$name: no build dir '$dir'" >&2
    exit 2
  fi
  (cd "$dir" && pwd)
}

# bench_parse_args NAME ARGS...: a runner's command line [BUILD_DIR] [options...]:
# sets build (BUILD_DIR, by default "build", through bench_build_dir) and
# bench_args (the options, for the benchmark program).
bench_parse_args() {
  local name=$1
  shift
  build="build"
  if [[ $# -gt 0 && "$1" != -* ]]; then
    build="$1"
    shift
  fi
  build="$(bench_build_dir "$name" "$build")"
  # shellcheck disable=SC2034 # the runner reads it
  bench_args=("$@")
}

# bench_warn_buildtype BUILD: sets bench_buildtype (BUILD's meson
# buildtype, empty when meson does not say) and warns on stderr when BUILD
# is not an optimised build (its figures would mean little).
bench_warn_buildtype() {
  bench_buildtype=""
  command -v meson >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 || return 0
  bench_buildtype="$(meson introspect --buildoptions "$1" 2>/dev/null | python3 -c \
    'import json,sys; print(next((o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"), ""))' \
    2>/dev/null || true)"
  if [[ -n "$bench_buildtype" && "$bench_buildtype" != release && "$bench_buildtype" != debugoptimized ]]; then
    echo "# warning: $1 has buildtype=$bench_buildtype; figures are not representative" >&2
  fi
}

# bench_stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
# An empty PID is nothing to stop.
bench_stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# bench_start_daemon NAME BUILD DIR: starts BUILD's ensembled with its
# plugins, default settings (memory backend, whatever the user configured)
# and its socket, state and log (daemon.log) under DIR; sets bench_dpid and
# waits up to 10 s for DIR/sock/ensemble.sock; exits 1 when it does not come.
bench_start_daemon() {
  local name=$1 build=$2 dir=$3
  local sock="$dir/sock/ensemble.sock"
  GSETTINGS_BACKEND=memory "$build/core/ensembled" \
    --socket-dir "$dir/sock" --state-dir "$dir/state" --plugin-dir "$build/plugins" \
    >"$dir/daemon.log" 2>&1 &
  bench_dpid=$!
  for _ in $(seq 1 100); do
    [[ -S "$sock" ]] && return 0
    if ! kill -0 "$bench_dpid" 2>/dev/null; then
      echo "$name: ensembled exited before creating $sock" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name: $sock did not appear within 10 s" >&2
  exit 1
}

# bench_need NAME FILE HINT...: exits 2, saying "FILE not found; HINT" (each
# further HINT on a line of its own), unless FILE is an executable.
bench_need() {
  local name=$1 file=$2 hint=$3
  shift 3
  [[ -x "$file" ]] && return 0
  echo "$name: $file not found; $hint" >&2
  for line in "$@"; do
    echo "  $line" >&2
  done
  exit 2
}

# bench_cleanup_on_exit TMP: when the runner exits (INT and TERM too), what
# it started is stopped (by its function bench_stop_all when it has one,
# else the daemon of bench_start_daemon), the tails of the logs in TMP are
# shown if it failed, and TMP is removed.
bench_cleanup_on_exit() {
  bench_tmp=$1
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup() {
  local rc=$?
  set +e
  trap '' PIPE # a closed stdout (| head) must not stop the clean-up
  if declare -F bench_stop_all >/dev/null; then
    bench_stop_all
  else
    bench_stop_pid "$bench_dpid"
  fi
  [[ $rc -eq 0 ]] || bench_log_tails "$bench_tmp"
  rm -rf "$bench_tmp"
  exit $rc
}

# bench_log_tails DIR: the last 30 lines of every non-empty *.log in DIR
# and its subdirectories, on stderr (what went wrong, when a runner fails).
bench_log_tails() {
  local f
  for f in "$1"/*.log "$1"/*/*.log; do
    if [[ -s "$f" ]]; then
      echo "--- ${f#"$1"/} (tail) ---" >&2
      tail -n 30 "$f" >&2 || true
    fi
  done
}
