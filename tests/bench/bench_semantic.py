#!/usr/bin/env python3
"""Query latency of agent-semantic at 10k and 100k concepts.

Starts the real ensembled (tests/integration/enslib.py) with the local
embedding, stores short generated texts through the native Unix socket with
pipelining (a window of requests in flight), then times sequential
query_concepts round trips (top_k 10) at each size and prints mean / p50 /
p95 in ms, client-side and as the daemon measured it (processing_time_ms).

  python3 tests/bench/bench_semantic.py [--sizes 10000,100000] [--queries 200]
Environment as for the integration tests (ENS_BUILD_ROOT, ENSEMBLED, ...)."""

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from enslib import Daemon  # noqa: E402


def vocabulary(rng, n=3000):
    syll = ["ka", "lo", "mi", "ren", "sto", "va", "qui", "der", "pan", "tel", "ox", "bru", "nim", "sa", "ter", "ul"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syll) for _ in range(rng.randint(1, 3))))
    return sorted(words)


def sentence(rng, words):
    # Zipf-like choice: a few frequent words, a long tail
    return " ".join(words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1) * 7 % len(words)]
                    if rng.random() < 0.5 else rng.choice(words) for _ in range(rng.randint(5, 12)))


def store_many(client, texts, start, window=512):
    """Pipelined store_concept: keeps @window requests in flight."""
    sent = done = 0
    n = len(texts)
    buf = bytearray()
    while done < n:
        while sent < n and sent - done < window:
            i = sent
            msg = {"id": f"s{start + i}", "agent": "semantic", "action": "store_concept",
                   "data": {"id": f"k{start + i}", "text": texts[i], "metadata": {"bucket": (start + i) % 10}}}
            buf += (json.dumps(msg) + "\n").encode()
            sent += 1
        if buf:
            client.send_raw(bytes(buf))
            buf.clear()
        reply = client.recv()
        if "event" in reply:
            continue
        if reply.get("status") != "success":
            raise SystemExit(f"store failed: {reply}")
        done += 1


def time_queries(client, queries, top_k=10):
    wall, server = [], []
    for q in queries:
        t0 = time.perf_counter()
        r = client.request("query_concepts", {"text": q, "top_k": top_k}, agent="semantic", timeout_ms=60000)
        wall.append((time.perf_counter() - t0) * 1000)
        assert r["status"] == "success", r
        assert len(r["data"]["results"]) == top_k, r
        if "processing_time_ms" in r:
            server.append(r["processing_time_ms"])
    return wall, server


def summary(xs):
    xs = sorted(xs)
    return (f"mean {statistics.fmean(xs):7.2f}  p50 {xs[len(xs) // 2]:7.2f}  "
            f"p95 {xs[int(len(xs) * 0.95) - 1]:7.2f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(7)
    words = vocabulary(rng)
    queries = [sentence(rng, words) for _ in range(args.queries)]

    d = Daemon(settings={"max-pending-requests": "4096"})
    try:
        c = d.client()
        c.sock.settimeout(300)
        stored = 0
        for size in sizes:
            texts = [sentence(rng, words) for _ in range(size - stored)]
            t0 = time.perf_counter()
            store_many(c, texts, stored)
            secs = time.perf_counter() - t0
            print(f"stored {len(texts)} concepts in {secs:.1f} s ({len(texts) / secs:.0f}/s), total {size}",
                  flush=True)
            stored = size
            time_queries(c, queries[:10])  # warm-up
            wall, server = time_queries(c, queries)
            print(f"{size:>7} concepts, {len(queries)} queries  client: {summary(wall)}", flush=True)
            if server:
                print(f"{'':>7}                        daemon: {summary(server)}", flush=True)
        rss = None
        try:
            with open(f"/proc/{d.proc.pid}/status") as f:
                rss = next(line.split()[1] for line in f if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
        if rss:
            print(f"daemon RSS at {stored} concepts: {int(rss) // 1024} MiB")
        c.close()
        t0 = time.perf_counter()
        d.stop()
        d.start()
        print(f"restart with {stored} concepts (load from the state store): {time.perf_counter() - t0:.1f} s")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
