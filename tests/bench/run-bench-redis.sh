#!/usr/bin/env bash
# run-bench-redis.sh — run ens-bench-redis: cross-node event delivery through
# two throw-away ensembled daemons bridged by transport-redis, against raw
# Redis pub/sub on the same private redis-server.
#
# Usage: tests/bench/run-bench-redis.sh [BUILD_DIR] [ens-bench-redis options...]
#   BUILD_DIR defaults to "build" (relative to the current directory, or to
#   the repository root if it does not exist there).  Nothing is built here;
#   a release build (`meson setup build --buildtype=release`) gives
#   meaningful figures.  Extra arguments go to the bench binary, e.g.
#   --quick, --seconds 5, --window 512, --samples 5000.
#   The bench runs once per subscriber count in ENS_BENCH_SUBSCRIBERS
#   (default "1 16": --subscribers 1, then --subscribers 16, both modes
#   against the same daemons); an explicit --subscribers N among the extra
#   arguments runs it once with just that.
#   ENS_BENCH_REDIS=/path/to/ens-bench-redis overrides the bench binary.
#   ENS_BENCH_PERF=DIR records `perf record` of both daemons during the run
#   into DIR/perf-a.data (subscriber side) and DIR/perf-b.data;
#   ENS_BENCH_PERF_OPTS overrides its options (default: -g).
#   ENS_BENCH_WRAP_A / ENS_BENCH_WRAP_B: a command the daemon runs under, e.g.
#   "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-b.out" (instruction
#   counts per event: divide by the events the run printed).
#
# Needs redis-server, redis-cli and python3.  Starts redis-server on a free
# loopback port (no persistence) and daemons A and B (private socket/state
# dirs, keyfile settings via --config), waits until both bridges are
# connected and see each other, runs the benchmark, then stops everything
# and removes the temp directory.  Not part of the test suite.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$here/run-bench-lib.sh"

bench_parse_args run-bench-redis "$@"

daemon="$build/core/ensembled"
bench="${ENS_BENCH_REDIS:-$build/tests/bench/ens-bench-redis}"
bench_need run-bench-redis "$daemon" "build first (ninja -C $build)"
bench_need run-bench-redis "$bench" "build it (needs libhiredis-dev):" \
  "ninja -C $build tests/bench/ens-bench-redis, or set ENS_BENCH_REDIS"
if ! ls "$build"/plugins/transport-redis/transport-redis.* >/dev/null 2>&1; then
  echo "run-bench-redis: transport-redis plugin not built in $build (needs libhiredis-dev)" >&2
  exit 2
fi
for tool in redis-server redis-cli python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run-bench-redis: $tool not found (apt-get install redis-server redis-tools python3)" >&2
    exit 2
  fi
done

bench_warn_buildtype "$build"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ens-bench-redis.XXXXXX")"
rpid="" apid="" bpid="" perf_pids=()

bench_stop_all() {
  for p in "${perf_pids[@]}"; do
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  bench_stop_pid "$apid"
  bench_stop_pid "$bpid"
  bench_stop_pid "$rpid"
}
bench_cleanup_on_exit "$tmp"

# --- redis-server on a loopback port ----------------------------------------
# redis-server must be told its port: a picked one (free, and outside the
# kernel's ephemeral range so no bind(0) or outgoing connection can take it
# meanwhile: enslib.pick_port), and a new pick when another process took it
# first, which redis-server reports before it exits.  Ours answers INFO with
# its own pid.
pick_port() {
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from enslib import pick_port; print(pick_port())' \
    "$root/tests/integration"
}
redis_pid_on() { # PORT
  timeout 5 redis-cli -h 127.0.0.1 -p "$1" INFO server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p'
}
port=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  try_port="$(pick_port)"
  redis-server --port "$try_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  rpid=$!
  for _ in $(seq 1 100); do
    [[ "$(redis_pid_on "$try_port")" == "$rpid" ]] && { port=$try_port; break; }
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$port" ]] && break
  if kill -0 "$rpid" 2>/dev/null || ! grep -q "Address already in use" "$tmp/redis.log"; then
    echo "run-bench-redis: redis-server did not answer on port $try_port" >&2
    exit 1
  fi
  wait "$rpid" 2>/dev/null || true
  rpid=""
done
if [[ -z "$port" ]]; then
  echo "run-bench-redis: redis-server lost the race for a port 10 times" >&2
  exit 1
fi

# --- two daemons ------------------------------------------------------------
prefix="ens-bench-$$:"
start_daemon() { # NAME; sets started_pid
  local name=$1 dir="$tmp/$1"
  mkdir -p "$dir"
  cat >"$dir/ensembled.conf" <<EOF
[daemon]
node-id='bench-$name'
redis-url='redis://127.0.0.1:$port'
redis-prefix='$prefix'
redis-heartbeat-ms=1000
http-port=0
ws-port=0
dbus-bus='none'
EOF
  local wrap=()
  [[ $name == b && -n "${ENS_BENCH_WRAP_B:-}" ]] && read -r -a wrap <<<"$ENS_BENCH_WRAP_B"
  [[ $name == a && -n "${ENS_BENCH_WRAP_A:-}" ]] && read -r -a wrap <<<"$ENS_BENCH_WRAP_A"
  GSETTINGS_BACKEND=memory "${wrap[@]}" "$daemon" --config "$dir/ensembled.conf" \
    --socket-dir "$dir/sock" --state-dir "$dir/state" --plugin-dir "$build/plugins" \
    >"$dir/daemon.log" 2>&1 </dev/null &
  started_pid=$!
}
start_daemon a
apid=$started_pid
start_daemon b
bpid=$started_pid
sock_a="$tmp/a/sock/ensemble.sock"
sock_b="$tmp/b/sock/ensemble.sock"

# Both bridges connected, each listing both nodes (health over the socket).
python3 - "$sock_a" "$sock_b" bench-a bench-b "$apid" "$bpid" <<'EOF'
import json, os, socket, sys, time
socks, nodes, pids = sys.argv[1:3], set(sys.argv[3:5]), [int(p) for p in sys.argv[5:7]]

def bridge(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b'{"id":"h","action":"health"}\n')
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return {}
            buf += chunk
    reply = json.loads(buf.split(b"\n", 1)[0])
    for p in reply.get("data", {}).get("plugins", []):
        if p.get("id") == "transport-redis":
            return p.get("info", {})
    return {"state": "transport-redis not loaded"}

deadline, last = time.time() + 20, {}
while time.time() < deadline:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"run-bench-redis: ensembled {pid} exited")
    try:
        last = {p: bridge(p) for p in socks}
        if all(i.get("state") == "connected" and nodes <= set(i.get("nodes", [])) for i in last.values()):
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.1)
sys.exit(f"run-bench-redis: bridges not connected within 20 s: {last}")
EOF

if [[ -n "${ENS_BENCH_PERF:-}" ]]; then
  mkdir -p "$ENS_BENCH_PERF"
  read -r -a perf_opts <<<"${ENS_BENCH_PERF_OPTS:--g}"
  for n in a b; do
    pid=$apid
    [[ $n == b ]] && pid=$bpid
    perf record "${perf_opts[@]}" -o "$ENS_BENCH_PERF/perf-$n.data" -p "$pid" \
      >"$ENS_BENCH_PERF/perf-$n.log" 2>&1 &
    perf_pids+=($!)
  done
  sleep 0.5
fi

read -r -a sub_counts <<<"${ENS_BENCH_SUBSCRIBERS:-1 16}"
for arg in "${bench_args[@]}"; do
  if [[ "$arg" == --subscribers || "$arg" == --subscribers=* ]]; then
    sub_counts=("") # the caller chose
  fi
done
if [[ ${#sub_counts[@]} -eq 0 ]]; then
  echo "run-bench-redis: ENS_BENCH_SUBSCRIBERS is empty" >&2
  exit 2
fi

# The CPU each daemon uses (user + system): on a shared, loaded machine a
# figure per event is steadier than rates, which other work disturbs.
clk_tck="$(getconf CLK_TCK)"
cpu_of() { # PID -> seconds
  awk -v t="$clk_tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
cpu_a0="$(cpu_of "$apid")" cpu_b0="$(cpu_of "$bpid")"

rc=0
for n in "${sub_counts[@]}"; do
  sub_opt=()
  if [[ -n "$n" ]]; then
    sub_opt=(--subscribers "$n")
    [[ ${#sub_counts[@]} -gt 1 ]] && echo "# --- $n subscriber(s) ---"
  fi
  "$bench" --redis-host 127.0.0.1 --redis-port "$port" --socket-a "$sock_a" --socket-b "$sock_b" \
    "${sub_opt[@]}" "${bench_args[@]}" || rc=$?
done

python3 -c 'import sys; a0, a1, b0, b1 = map(float, sys.argv[1:]); print(
    f"daemon CPU during the bench: A (subscriber side) {a1 - a0:.2f} s, B (publisher side) {b1 - b0:.2f} s")' \
  "$cpu_a0" "$(cpu_of "$apid")" "$cpu_b0" "$(cpu_of "$bpid")"

# The bridges' complaints (lost Redis, outbox drops) explain missing events.
for n in a b; do
  if grep -q WARNING "$tmp/$n/daemon.log"; then
    echo "--- warnings in daemon $n's log ---"
    grep WARNING "$tmp/$n/daemon.log" | tail -n 20
  fi
done
exit $rc
