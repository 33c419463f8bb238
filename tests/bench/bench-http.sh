#!/usr/bin/env bash
# bench-http.sh — ensembled's HTTP and WebSocket transports against the
# usual alternatives, in one run, with one load generator:
#
#   1. GET /health requests/s: ensembled (transport-http) vs a FastAPI +
#      uvicorn service answering the same JSON document
#      (bench_http_fastapi.py).  Target: ensembled >= 1.3x FastAPI.
#   2. WebSocket events/s delivered to N subscribers: ensembled's native /ws
#      vs a Node `ws` server doing the same fan-out (ws-bench.mjs).
#      Target: ensembled >= 1.0x Node ws.  Skipped when the build has no
#      transport-websocket plugin.
#
# Usage: tests/bench/bench-http.sh [BUILD_DIR]
#   BUILD_DIR: "build-release" if it exists, else "build" (relative to the
#   current directory or the repository root).  A release build gives
#   meaningful figures: meson setup build-release --buildtype=release.
# Environment:
#   BENCH_SECONDS (5)  BENCH_THREADS (2)  BENCH_CONNECTIONS (64)
#   BENCH_PIN (1: with 2+ CPUs, servers on the last CPU, the load generator
#             on the others, so each server gets one core, as it uses one)
#   WS_SUBSCRIBERS (16)  WS_SECONDS (5)  WS_WINDOW (256 publishes in flight)
#   WS_WORKERS (2 subscriber client processes)
#   BENCH_PYTHON: the Python with fastapi/uvicorn (default /usr/bin/python3
#   if it has them, else python3).  Missing Debian packages (wrk,
#   python3-fastapi, python3-uvicorn) are installed with apt-get when root.
# Not part of the test suite.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$here/run-bench-lib.sh"
seconds="${BENCH_SECONDS:-5}"
threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNECTIONS:-64}"

build=""
if [[ $# -gt 0 ]]; then
  build="$1"
elif [[ -d build-release || -d "$root/build-release" ]]; then
  build="build-release"
else
  build="build"
fi
build="$(bench_build_dir bench-http "$build")"
daemon="$build/core/ensembled"
[[ -x "$daemon" ]] || { echo "bench-http: $daemon not found; build first (ninja -C $build)" >&2; exit 2; }
[[ -e "$build/plugins/transport-http/transport-http.so" ]] ||
  { echo "bench-http: $build has no transport-http plugin" >&2; exit 2; }

bench_warn_buildtype "$build"

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
py="${BENCH_PYTHON:-}"
if [[ -z "$py" ]]; then
  for cand in /usr/bin/python3 python3; do
    if "$cand" -c 'import fastapi, uvicorn' 2>/dev/null; then py="$cand"; break; fi
  done
fi
if [[ -z "$py" ]]; then
  need_pkgs+=(python3-fastapi python3-uvicorn)
  py=/usr/bin/python3
fi
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "# installing ${need_pkgs[*]} (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >/dev/null ||
      echo "# apt-get install failed" >&2
  fi
fi
"$py" -c 'import fastapi, uvicorn' 2>/dev/null ||
  { echo "bench-http: no fastapi/uvicorn for $py (apt-get install python3-fastapi python3-uvicorn)" >&2; exit 2; }

ncpu="$(nproc 2>/dev/null || echo 1)"
server_pin=() load_pin=()
if [[ "${BENCH_PIN:-1}" == 1 && "$ncpu" -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
  server_pin=(taskset -c "$((ncpu - 1))")
  load_pin=(taskset -c "0-$((ncpu - 2))")
fi

# ---------------------------------------------------------------- lifecycle
tmp="$(mktemp -d "${TMPDIR:-/tmp}/ens-bench-http.XXXXXX")"
pids=()
bench_stop_all() {
  for pid in "${pids[@]}"; do
    bench_stop_pid "$pid"
  done
}
bench_cleanup_on_exit "$tmp"

# listen_port NAME LOG PID: the port a server bound (port 0: the kernel's
# choice, so nothing can take it in between) from its "NAME: listening on
# scheme://127.0.0.1:PORT" line.
listen_port() {
  local p
  for _ in $(seq 1 100); do
    p="$(sed -n "s|.*$1: listening on [a-z]*://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p" "$2" | tail -n 1)"
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    kill -0 "$3" 2>/dev/null || { echo "bench-http: $1 exited before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-http: $1 did not say where it listens within 10 s" >&2
  return 1
}

wait_http() { # url, pid
  for _ in $(seq 1 100); do
    if python3 - "$1" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
EOF
    kill -0 "$2" 2>/dev/null || { echo "bench-http: server exited before answering $1" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-http: $1 did not answer within 10 s" >&2
  return 1
}

cat >"$tmp/ensembled.conf" <<EOF
[daemon]
http-port=0
ws-port=0
EOF

GSETTINGS_BACKEND=memory "${server_pin[@]}" "$daemon" \
  --socket-dir "$tmp/sock" --state-dir "$tmp/state" --plugin-dir "$build/plugins" \
  --config "$tmp/ensembled.conf" >"$tmp/ensembled.log" 2>&1 &
dpid=$!
pids+=("$dpid")
http_port="$(listen_port transport-http "$tmp/ensembled.log" "$dpid")"
ws_port=""
if [[ -e "$build/plugins/transport-websocket/transport-websocket.so" ]]; then
  ws_port="$(listen_port transport-websocket "$tmp/ensembled.log" "$dpid")"
fi
wait_http "http://127.0.0.1:$http_port/health" "$dpid"
python3 - "http://127.0.0.1:$http_port/health" >"$tmp/health.json" <<'EOF'
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())
EOF

"${server_pin[@]}" "$py" "$here/bench_http_fastapi.py" --port 0 --template "$tmp/health.json" \
  >"$tmp/fastapi.log" 2>&1 &
fpid=$!
pids+=("$fpid")
fa_port="$(listen_port fastapi "$tmp/fastapi.log" "$fpid")"
wait_http "http://127.0.0.1:$fa_port/health" "$fpid"

# ---------------------------------------------------------------- HTTP
# wrk: one warm-up second, then the measured run; prints requests/s.
measure() { # name url
  local out rps errs
  "${load_pin[@]}" wrk -t"$threads" -c"$conns" -d1s "$2" >/dev/null 2>&1 || true
  out="$("${load_pin[@]}" wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency "$2" 2>&1)"
  echo "$out" >"$tmp/wrk-$1.txt"
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  errs="$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print $0}' <<<"$out" | tr '\n' ' ')"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  printf '  %-22s %12s req/s   p50 %-8s p99 %-8s %s\n' "$1" "${rps:-?}" "${p50:-?}" "${p99:-?}" \
    "${errs:+errors: $errs}" >&2
  echo "${rps:-0}"
}

size_e="$(curl -s "http://127.0.0.1:$http_port/health" 2>/dev/null | wc -c || echo ?)"
size_f="$(curl -s "http://127.0.0.1:$fa_port/health" 2>/dev/null | wc -c || echo ?)"
echo "HTTP GET /health: wrk -t$threads -c$conns -d${seconds}s; body ${size_e} B (ensembled) / ${size_f} B (FastAPI);" \
  "${ncpu} CPUs${server_pin:+, servers pinned to CPU $((ncpu - 1))}; build $build ($bench_buildtype)"
rps_e="$(measure "ensembled" "http://127.0.0.1:$http_port/health")"
rps_f="$(measure "FastAPI+uvicorn" "http://127.0.0.1:$fa_port/health")"
python3 - "$rps_e" "$rps_f" <<'EOF'
import sys
e, f = float(sys.argv[1]), float(sys.argv[2])
ratio = e / f if f else float("inf")
print(f"  ensembled {e:,.0f} req/s, FastAPI {f:,.0f} req/s: ratio {ratio:.2f}x (target >= 1.3x) "
      f"{'PASS' if ratio >= 1.3 else 'BELOW TARGET'}")
EOF
kill -TERM "$fpid" 2>/dev/null || true

# ---------------------------------------------------------------- WebSocket
echo "WebSocket events/s to ${WS_SUBSCRIBERS:-16} subscribers:"
if [[ ! -e "$build/plugins/transport-websocket/transport-websocket.so" ]]; then
  echo "  skipped: $build has no transport-websocket plugin"
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || [[ ! -d "$root/tests/js/node_modules/ws" ]]; then
  echo "  skipped: needs node and tests/js/node_modules/ws (npm ci in tests/js)"
  exit 0
fi
NODE_PATH="$root/tests/js/node_modules" BENCH_PIN_SERVER="${server_pin[*]}" BENCH_PIN_LOAD="${load_pin[*]}" \
  node "$here/ws-bench.mjs" \
  --ensembled "ws://127.0.0.1:$ws_port/ws" --socket "$tmp/sock/ensemble.sock" --ensembled-pid "$dpid" \
  --subscribers "${WS_SUBSCRIBERS:-16}" --seconds "${WS_SECONDS:-5}" --window "${WS_WINDOW:-256}" \
  --workers "${WS_WORKERS:-2}"
