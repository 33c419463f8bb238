#!/usr/bin/env bash
# dev.sh — build, run and test Ensemble from a checkout.
#   ./dev.sh run [ensembled options]   build, then run the daemon in the foreground
#   ./dev.sh test                      build with -Dwerror=true, run every test, then
#                                      again under AddressSanitizer + UBSan (clang, with
#                                      each fuzz target run for a few seconds)
#   ./dev.sh bench                     build optimised, run the benchmarks
#   ./dev.sh fuzz [SECONDS] [TARGET..] run each fuzz target (tests/fuzz) for SECONDS
#                                      (default 60); non-zero exit on a crash
#   ./dev.sh soak [MINUTES]            the daemon under mixed traffic (default 15 min);
#                                      non-zero exit if its fds or RSS grow
# Installs the Debian packages it needs when run as root.
set -euo pipefail
cd "$(dirname "$0")"

# What building and running need, and what only the tests add (the servers
# and clients they start: Redis, a D-Bus bus, nc, curl, the browser the web
# console is tested in, groff and zsh for the man pages and the zsh completion).
BUILD_PACKAGES=(meson ninja-build pkg-config gcc libc6-dev libglib2.0-dev libglib2.0-bin libjson-glib-dev
                libsqlite3-dev libsoup-3.0-dev libhiredis-dev)
TEST_PACKAGES=(python3 python3-gi netcat-openbsd procps curl dbus util-linux redis-server redis-tools
               chromium groff-base zsh)
# The sanitizer build and the fuzz targets: clang with libFuzzer.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# ensure_packages NAME...: installs the missing ones (as root).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "dev.sh: missing packages: ${missing[*]}" >&2
    echo "dev.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "dev.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The official JavaScript clients (openai, ws) the integration tests drive
# the daemon with, and puppeteer-core (which drives Debian's Chromium; it
# downloads no browser), pinned by tests/js/package-lock.json.
ensure_js_clients() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "dev.sh: the tests need Node.js and npm: sudo apt-get install -y nodejs npm" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

# build DIR [meson options...]; CC chooses the compiler of a new DIR (one
# made with another compiler is made again).
build() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ] && [ -n "${CC:-}" ] &&
     ! grep -qx "CC=$CC" "$dir/.dev-cc" 2>/dev/null; then
    rm -rf "$dir"
  fi
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
    echo "CC=${CC:-}" >"$dir/.dev-cc"
  fi
  # Quiet when it builds; when it does not, what failed, and the summary
  # line the suite would have ended with.
  if ! ninja -C "$dir" >"$dir/ninja.log" 2>&1; then
    grep -v '^\[' "$dir/ninja.log" | tail -n 40 >&2
    echo "dev.sh: building $dir failed" >&2
    [ "$cmd" = test ] && echo "$TOTAL_PASSED passed, $((TOTAL_FAILED + 1)) failed"
    exit 1
  fi
}

# run_suite DIR: runs meson's tests, prints their log on failure, and adds
# the counts of test cases (from each test's own summary) to the totals.
TOTAL_PASSED=0
TOTAL_FAILED=0
run_suite() {
  local dir=$1 rc=0
  meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
  # One JSON object per test in testlog.json: count tests, not subtests.
  read -r passed failed < <(python3 - "$dir/meson-logs/testlog.json" <<'EOF'
import json, sys
passed = failed = 0
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)["result"]
    except (ValueError, KeyError):
        r = "UNREADABLE"  # never count what cannot be read as passed
        print(f"dev.sh: unreadable test log line: {line[:120]!r}", file=sys.stderr)
    if r in ("OK", "EXPECTEDFAIL", "SKIP"):
        passed += 1
    else:
        failed += 1
print(passed, failed)
EOF
)
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  return $rc
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    ensure_packages "${BUILD_PACKAGES[@]}"
    build build
    exec build/core/ensembled "$@"
    ;;
  test)
    ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}"
    ensure_js_clients
    status=0
    build build -Dwerror=true
    run_suite build || status=1
    # Sanitizers: plugins are dlopen()ed, so undefined symbols are resolved
    # from the sanitized daemon at load time (b_lundef=false).  Built with
    # clang so the fuzz targets are libFuzzer binaries here (suite 'fuzz',
    # each run briefly); the gcc build above replays their seed corpus.
    # Warnings are the gcc build's to enforce: clang's differ (it calls a
    # g_autoptr that only holds a reference unused).
    CC=clang build build-asan -Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
      -Dfuzzing=light
    # Every leak fails the run (nothing is suppressed).  Allocation stacks
    # are unwound the fast way: the slow unwinder, which sees the frames
    # below GLib, makes allocation-heavy tests ~9x slower; set ASAN_OPTIONS
    # with fast_unwind_on_malloc=0 to chase a report.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=32:malloc_context_size=12} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    ENS_TEST_TIMEOUT_SCALE=4 ENS_TEST_MEMORY_SCALE=4 G_SLICE=always-malloc \
      run_suite build-asan || status=1
    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
    exit $status
    ;;
  fuzz)
    # ./dev.sh fuzz [SECONDS] [TARGET...]: each target (default: all) from
    # its seed corpus plus what earlier runs found (build-fuzz/corpus/),
    # inputs that fail saved in build-fuzz/artifacts/.
    seconds=60
    if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then seconds=$1; shift; fi
    ensure_packages "${BUILD_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}" python3
    CC=clang build build-fuzz -Dfuzzing=full -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
    targets=("$@")
    if [ ${#targets[@]} -eq 0 ]; then
      for t in tests/fuzz/corpus/*/; do targets+=("$(basename "$t")"); done
    fi
    status=0
    for t in "${targets[@]}"; do
      python3 tests/fuzz/run-fuzz.py --seconds "$seconds" --work "build-fuzz/corpus/$t" --dict "tests/fuzz/dict/$t.dict" \
        --artifacts build-fuzz/artifacts "build-fuzz/tests/fuzz/fuzz-$t" "tests/fuzz/corpus/$t" | tail -n 40 ||
        status=1
    done
    exit $status
    ;;
  soak)
    # tests/soak/soak.py: a real ensembled, a fake upstream, mixed traffic.
    ensure_packages "${BUILD_PACKAGES[@]}" python3 procps
    build build
    ENS_BUILD_ROOT=$PWD/build ENS_SOURCE_ROOT=$PWD GSETTINGS_SCHEMA_DIR=$PWD/build/data \
      exec python3 tests/soak/soak.py --minutes "${1:-15}" "${@:2}"
    ;;
  bench)
    ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build build-release -Dbuildtype=release
    tests/bench/run-bench.sh build-release "$@"
    tests/bench/run-bench-completion.sh build-release "$@"
    tests/bench/run-bench-redis.sh build-release "$@"
    tests/bench/run-bench-gateway.py build-release
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
