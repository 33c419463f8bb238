#!/usr/bin/env python3
"""Runs one libFuzzer target for a bounded time and says what it did.

    run-fuzz.py [--seconds N] [--runs N] [--work DIR] [--artifacts DIR] [--dict FILE] TARGET SEED_CORPUS

The target reads the seed corpus (never written to) and a work corpus (a
temporary folder unless --work names one, which then keeps what the run
found).  A crash, a leak, a timeout or an out-of-memory input is saved under
--artifacts (default: a 'fuzz-artifacts' folder in the current directory),
its bytes are printed, and the exit status is non-zero.  The last line is a
summary: runs, runs per second, new corpus entries, coverage (libFuzzer's
edges "cov" and features "ft", and the corpus size), peak RSS.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--work", help="work corpus folder (kept)")
    ap.add_argument("--artifacts", default="fuzz-artifacts")
    ap.add_argument("--max-len", type=int, default=0, help="libFuzzer -max_len (0: its default)")
    ap.add_argument("--dict", help="libFuzzer dictionary")
    ap.add_argument("--runs", type=int, default=0, help="stop after this many runs too (0: time only)")
    ap.add_argument("target")
    ap.add_argument("seeds")
    args = ap.parse_args()

    name = os.path.basename(args.target)
    artifacts = os.path.abspath(args.artifacts)
    os.makedirs(artifacts, exist_ok=True)
    temp = None
    work = args.work
    if work is None:
        temp = tempfile.mkdtemp(prefix=name + "-")
        work = temp
    os.makedirs(work, exist_ok=True)

    env = dict(os.environ)
    # The fuzzer's own settings win over the suite's: leaks count, the
    # first error ends the run with a saved input.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS", ""),
        "detect_leaks=1", "abort_on_error=1", "fast_unwind_on_malloc=1", "malloc_context_size=20",
        "allocator_may_return_null=1"]))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, [
        env.get("UBSAN_OPTIONS", ""), "halt_on_error=1", "print_stacktrace=1"]))
    env["G_DEBUG"] = "fatal-criticals"
    env["G_SLICE"] = "always-malloc"
    cmd = [args.target, f"-max_total_time={args.seconds}", "-timeout=10", "-rss_limit_mb=2048",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-", work, args.seeds]
    if args.max_len:
        cmd.insert(1, f"-max_len={args.max_len}")
    if args.dict:
        cmd.insert(1, f"-dict={args.dict}")
    if args.runs:
        cmd.insert(1, f"-runs={args.runs}")
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    out = proc.stdout

    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", out, re.M))
    runs = int(stats.get("number_of_executed_units", 0))
    rate = int(stats.get("average_exec_per_sec", 0))
    new = int(stats.get("new_units_added", 0))
    rss = int(stats.get("peak_rss_mb", 0))
    progress = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", out)
    cov, ft, corp = progress[-1] if progress else ("?", "?", "?")
    saved = re.findall(r"(?:Test unit written to|artifact_prefix.*?; Test unit written to) (\S+)", out)
    if proc.returncode != 0 or saved:
        sys.stdout.write(out[-20000:])
        for path in saved:
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            print(f"{name}: input saved as {path} ({len(data)} bytes): {data[:2000]!r}")
        print(f"{name}: FAILED (exit {proc.returncode}) after {runs} runs")
        return 1
    seconds = int(stats.get("time", 0)) or re.findall(r"Done \d+ runs in (\d+) second", out)
    seconds = int(seconds[0]) if isinstance(seconds, list) and seconds else args.seconds
    print(f"{name}: {runs} runs in {seconds} s ({rate}/s), {new} new inputs, cov {cov} ft {ft} corpus {corp}, "
          f"peak RSS {rss} MB, 0 crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
