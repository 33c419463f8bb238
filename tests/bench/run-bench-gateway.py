#!/usr/bin/env python3
"""run-bench-gateway.py — the LLM gateway benchmark: the same load at a fake
OpenAI-compatible upstream directly and at ensembled in front of it, in one
run, side by side with their ratios.

    tests/bench/run-bench-gateway.py [BUILD_DIR] [--seconds S] [--quick]

BUILD_DIR defaults to build-release (then build); a release build gives
meaningful figures.  Started on loopback: three ens-bench-upstream processes
(answering at once; after 20 ms; streaming 20 chunks 10 ms apart), a bare
libsoup-3 server (ens-bench-soup) and ensembled with provider-openai backends
pointed at the upstreams (provider-local disabled, max-concurrency 4096,
idle-timeout-s 1).  ens-bench-load drives every phase; ensembled is reached
over HTTP (POST /v1/chat/completions) and over its Unix socket (native
`complete`).

Phases and targets (issue "the LLM gateway under real load"):
  1. N = 32, 128, 512, 1024 SSE streams of 20 chunks 10 ms apart: 0 stalls
     (a gap > 100 ms, or no [DONE]), <= 64 KB daemon RSS per open stream
     (RSS with every stream open, less the baseline, over N; first, so that
     no other phase's freed heap hides what streams cost)
  2. c=1, instant upstream: added latency p50 <= 0.3 ms, p99 <= 1 ms
  3. c=16, instant upstream: throughput >= 0.4x direct
  4. c=256, 20 ms upstream: throughput >= 0.8x direct
  5. HTTP server path, GET /health at c=32: >= 0.8x a bare libsoup-3 server
     answering the same bytes
  6. the daemon's fds and RSS at the end against its baseline (taken after
     start-up and one request of each kind)
Not part of the test suite.  Ratios are what counts: every process shares
the machine's cores.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CHAT_PATH = "/v1/chat/completions"
STREAM_COUNTS = (32, 128, 512, 1024)


def body(model, stream=False):
    return ('{"model":"%s","messages":[{"role":"user","content":"Say hello."}]%s}'
            % (model, ',"stream":true' if stream else ""))


def native_body(model):
    return '{"prompt":"Say hello.","model":"%s"}' % model


class Bench:
    def __init__(self, build, seconds, warmup):
        self.build = build
        self.seconds = seconds
        self.warmup = warmup
        self.tmp = tempfile.mkdtemp(prefix="ens-bench-gateway.")
        self.procs = []
        self.bin = lambda name: os.path.join(build, "tests", "bench", name)

    # ------------------------------------------------------------ processes
    def spawn_port(self, argv, name):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        line = p.stdout.readline().decode().strip()
        if not line.isdigit():
            raise SystemExit(f"run-bench-gateway: {name} did not start (see {log.name})")
        return int(line)

    def start(self):
        self.up_instant = self.spawn_port([self.bin("ens-bench-upstream")], "upstream-instant")
        self.up_slow = self.spawn_port([self.bin("ens-bench-upstream"), "--delay", "20"], "upstream-20ms")
        self.up_stream = self.spawn_port([self.bin("ens-bench-upstream"), "--chunks", "20", "--interval", "10"],
                                         "upstream-stream")
        conf = os.path.join(self.tmp, "ensembled.conf")
        backends = {"instant": self.up_instant, "slow": self.up_slow, "stream": self.up_stream}
        with open(conf, "w") as f:
            f.write("[daemon]\nhttp-port=0\nws-port=0\n")
            f.write("providers=[%s]\n" % ", ".join(f"'{b}'" for b in backends))
            f.write("disabled-plugins=['provider-local']\nprovider-cooldown-ms=0\n")
            for name, port in backends.items():
                f.write(f"[providers/{name}]\nplugin='provider-openai'\n"
                        f"base-url='http://127.0.0.1:{port}/v1'\nmodels=['bench-{name}']\n"
                        "max-concurrency=4096\nmax-retries=0\nidle-timeout-s=1\ntimeout-ms=60000\n")
        self.sock = os.path.join(self.tmp, "sock", "ensemble.sock")
        self.dlog = os.path.join(self.tmp, "ensembled.log")
        env = dict(os.environ, GSETTINGS_BACKEND="memory")
        self.daemon = subprocess.Popen(
            [os.path.join(self.build, "core", "ensembled"), "--socket-dir", os.path.join(self.tmp, "sock"),
             "--state-dir", os.path.join(self.tmp, "state"), "--plugin-dir", os.path.join(self.build, "plugins"),
             "--config", conf], stdout=open(self.dlog, "wb"), stderr=subprocess.STDOUT, env=env,
            stdin=subprocess.DEVNULL)
        self.procs.append(self.daemon)
        self.http_port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.http_port is None:
            if self.daemon.poll() is not None:
                raise SystemExit("run-bench-gateway: ensembled exited:\n" + open(self.dlog).read()[-3000:])
            for line in open(self.dlog, errors="replace"):
                if "transport-http: listening on http://127.0.0.1:" in line:
                    self.http_port = int(line.rsplit(":", 1)[1].split("/")[0].split()[0])
            time.sleep(0.05)
        while time.time() < deadline and not os.path.exists(self.sock):
            time.sleep(0.05)
        if self.http_port is None or not os.path.exists(self.sock):
            raise SystemExit("run-bench-gateway: ensembled did not come up:\n" + open(self.dlog).read()[-3000:])
        health = urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=10).read()
        self.health_file = os.path.join(self.tmp, "health.json")
        with open(self.health_file, "wb") as f:
            f.write(health)
        self.soup = self.spawn_port([self.bin("ens-bench-soup"), "--body-file", self.health_file], "soup")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ measuring
    def load(self, *args):
        out = subprocess.run([self.bin("ens-bench-load"), *map(str, args)], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise SystemExit(f"run-bench-gateway: ens-bench-load {' '.join(map(str, args))}: {out.stderr}")
        return {k: float(v) for k, v in (kv.split("=") for kv in out.stdout.split())}

    def requests(self, target, port, model, conns, path=CHAT_PATH, stream=False, any_status=False):
        common = ["-c", conns, "-d", self.seconds, "--warmup", self.warmup] + (["--any-status", 1] if any_status else [])
        if target == "native":
            return self.load("--unix", self.sock, "--body", native_body(model), *common)
        args = ["--http", f"127.0.0.1:{port}", "--path", path]
        if model:
            args += ["--body", body(model, stream)]
        return self.load(*args, *common)

    def streams(self, port, n, pid=0):
        return self.load("--http", f"127.0.0.1:{port}", "--path", CHAT_PATH, "--body", body("bench-stream", True),
                         "--streams", n, "--pid", pid)

    def proc_state(self):
        pid = self.daemon.pid
        rss = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{pid}/fd"))

    def settle_rss(self, timeout=10.0, still=2.5):
        """Waits until the daemon's RSS has not fallen for @still seconds
        (it gives free heap back every 2 s once no completion runs), or
        @timeout passes; returns (RSS kB, fds)."""
        deadline = time.time() + timeout
        last, since = self.proc_state()[0], time.time()
        while time.time() < deadline and time.time() - since < still:
            time.sleep(0.25)
            rss = self.proc_state()[0]
            if rss < last:
                last, since = rss, time.time()
        return self.proc_state()

    def settle_fds(self, want, timeout=5.0):
        """Waits (idle upstream connections close after idle-timeout-s) until
        the daemon's fds are back to @want or @timeout passes."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc_state()[1] > want:
            time.sleep(0.1)
        return self.proc_state()


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default=None)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 4)))
    ap.add_argument("--quick", action="store_true", help="2 s per phase, streams up to 512")
    ap.add_argument("--phases", default="latency,c16,c256,streams,http",
                    help="comma-separated subset of latency,c16,c256,streams,http")
    a = ap.parse_args()
    build = a.build or next((d for d in ("build-release", "build") if os.path.isdir(os.path.join(ROOT, d))), "build")
    if not os.path.isabs(build) and not os.path.isdir(build):
        build = os.path.join(ROOT, build)
    build = os.path.abspath(build)
    for need in ("core/ensembled", "tests/bench/ens-bench-load", "tests/bench/ens-bench-upstream",
                 "tests/bench/ens-bench-soup", "plugins/provider-openai/provider-openai.so"):
        if not os.path.exists(os.path.join(build, need)):
            raise SystemExit(f"run-bench-gateway: {build}/{need} missing; build first (ninja -C {build})")
    seconds = 2.0 if a.quick else a.seconds
    phases = set(a.phases.split(","))
    counts = STREAM_COUNTS[:3] if a.quick else STREAM_COUNTS

    b = Bench(build, seconds, 1.0 if seconds >= 2 else 0.5)
    try:
        b.start()
        # One request of each kind, so that every plugin and pool is set up
        # before the baseline is taken.
        b.requests("direct", b.up_instant, "bench-instant", 1)
        b.load("--http", f"127.0.0.1:{b.http_port}", "--path", CHAT_PATH, "--body", body("bench-instant"),
               "-c", 1, "-d", 0.3, "--warmup", 0)
        b.load("--unix", b.sock, "--body", native_body("bench-instant"), "-c", 1, "-d", 0.3, "--warmup", 0)
        b.streams(b.http_port, 4)
        rss0, fds0 = b.settle_fds(0, timeout=3.0)
        ncpu = os.cpu_count()
        print(f"LLM gateway benchmark: {ncpu} CPUs, {seconds:g} s per phase after {b.warmup:g} s warm-up, "
              f"build {build}")
        print(f"daemon baseline: RSS {rss0 / 1024:.1f} MB, {fds0} fds")
        misses = []

        def row(label, d, e, n, key, fmt, ratio=True):
            r = lambda x: f"{x[key] / d[key]:.2f}x" if ratio and d[key] else ""
            print(f"  {label:<34} {fmt(d):>22} {fmt(e):>22} {r(e):>7} {fmt(n):>22} {r(n):>7}")

        hdr = f"  {'':<34} {'upstream direct':>22} {'ensembled HTTP':>22} {'ratio':>7} {'ensembled native':>22} {'ratio':>7}"
        if "streams" in phases:
            print("\n1. N concurrent SSE streams, 20 chunks 10 ms apart (stall: gap > 100 ms or no [DONE]; "
                  "target 0 stalls, <= 64 KB/stream)")
            print(f"  {'N':>5} {'direct fin/stall':>17} {'max gap':>8} {'ensembled fin/stall':>20} {'max gap':>8} "
                  f"{'p99 gap':>8} {'secs':>6} {'RSS/stream':>11} {'fds peak':>9} {'1st chunk p50/max':>18}")
            for n_streams in counts:
                b.settle_fds(fds0)  # the previous phase's upstream connections idle out first
                d = b.streams(b.up_stream, n_streams)
                e = b.streams(b.http_port, n_streams, b.daemon.pid)
                # RSS with every stream open, or (when the daemon never had all
                # of them open at once) its peak, over the baseline
                rss_at = e["rss_open_kb"] if e["rss_open_kb"] > 0 else e["rss_peak_kb"]
                per = (rss_at - rss0) / n_streams
                print(f"  {n_streams:>5} {d['finished']:>8.0f}/{d['stalled']:<8.0f} {d['max_gap_ms']:>6.1f}ms "
                      f"{e['finished']:>11.0f}/{e['stalled']:<8.0f} {e['max_gap_ms']:>6.1f}ms {e['p99_gap_ms']:>6.1f}ms "
                      f"{e['secs']:>6.2f} {per:>8.1f} KB {e['fds_before']:>4.0f}->{e['fds_peak']:<5.0f} "
                      f"{e['first_p50_ms']:>7.1f}/{e['first_max_ms']:.1f} ms")
                if e["stalled"] or e["finished"] != n_streams:
                    misses.append(f"{n_streams} streams: {e['stalled']:.0f} stalled")
                if n_streams == counts[-1] and per > 64:
                    misses.append(f"{n_streams} streams: {per:.1f} KB per stream")

        if "latency" in phases:
            print("\n2. c=1, upstream answers at once: latency (added = ensembled - direct)")
            print(hdr)
            d = b.requests("direct", b.up_instant, "bench-instant", 1)
            e = b.requests("http", b.http_port, "bench-instant", 1)
            n = b.requests("native", None, "bench-instant", 1)
            row("requests/s", d, e, n, "rps", lambda x: f"{x['rps']:,.0f}")
            row("p50 ms", d, e, n, "p50_ms", lambda x: f"{x['p50_ms']:.3f}", ratio=False)
            row("p99 ms", d, e, n, "p99_ms", lambda x: f"{x['p99_ms']:.3f}", ratio=False)
            for name, x in (("HTTP", e), ("native", n)):
                a50, a99 = x["p50_ms"] - d["p50_ms"], x["p99_ms"] - d["p99_ms"]
                ok = a50 <= 0.3 and a99 <= 1.0
                print(f"  added latency, {name}: p50 {a50:.3f} ms (target <= 0.3), p99 {a99:.3f} ms (target <= 1.0)"
                      f"  {verdict(ok)}")
                if not ok:
                    misses.append(f"c=1 added latency ({name})")

        for key, title, model, port, conns, target in (
                ("c16", "3. c=16, upstream answers at once: throughput", "bench-instant", b.up_instant, 16, 0.4),
                ("c256", "4. c=256, upstream answers after 20 ms: throughput", "bench-slow", b.up_slow, 256, 0.8)):
            if key not in phases:
                continue
            print(f"\n{title} (target >= {target}x direct)")
            print(hdr)
            d = b.requests("direct", port, model, conns)
            e = b.requests("http", b.http_port, model, conns)
            n = b.requests("native", None, model, conns)
            row("requests/s", d, e, n, "rps", lambda x: f"{x['rps']:,.0f}")
            row("p50 / p99 ms", d, e, n, "p50_ms", lambda x: f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f}",
                ratio=False)
            row("errors", d, e, n, "errors", lambda x: f"{x['errors']:.0f}", ratio=False)
            for name, x in (("HTTP", e), ("native", n)):
                ok = x["rps"] >= target * d["rps"] and x["errors"] == 0
                print(f"  {name}: {x['rps'] / d['rps']:.2f}x direct, {x['errors']:.0f} errors  {verdict(ok)}")
                if not ok:
                    misses.append(f"{key} throughput ({name})")

        if "http" in phases:
            print("\n5. HTTP server path: GET /health at c=32, same body (target >= 0.8x bare libsoup-3)")
            s = b.requests("direct", b.soup, None, 32, path="/health")
            e = b.requests("http", b.http_port, None, 32, path="/health")
            ratio = e["rps"] / s["rps"] if s["rps"] else 0
            print(f"  bare libsoup-3 {s['rps']:>10,.0f} req/s  p50 {s['p50_ms']:.2f} ms   "
                  f"ensembled {e['rps']:>10,.0f} req/s  p50 {e['p50_ms']:.2f} ms   {ratio:.2f}x  "
                  f"{verdict(ratio >= 0.8)}  ({os.path.getsize(b.health_file)} B body)")
            if ratio < 0.8:
                misses.append("HTTP server path")
            # The server path alone: a path no route serves, answered 404
            # with a small JSON error (no core verb, no document built).
            n = b.requests("http", b.http_port, None, 32, path="/bench-no-such-route", any_status=True)
            print(f"  for comparison, a path no route serves (404, the server path alone): {n['rps']:>10,.0f} req/s  "
                  f"p50 {n['p50_ms']:.2f} ms   {n['rps'] / s['rps'] if s['rps'] else 0:.2f}x bare libsoup-3")

        b.settle_fds(fds0)
        rss1, fds1 = b.settle_rss()
        ok = fds1 <= fds0
        print(f"\n6. after the run: RSS {rss1 / 1024:.1f} MB (baseline {rss0 / 1024:.1f} MB, "
              f"{(rss1 - rss0) / 1024:+.1f} MB), fds {fds1} (baseline {fds0})  {verdict(ok)}")
        if not ok:
            misses.append("fds not back to baseline")
        print("\n" + ("all targets met" if not misses else "targets missed: " + "; ".join(misses)))
    finally:
        b.stop()


if __name__ == "__main__":
    main()
