"""Upstream connections: provider-openai and provider-anthropic keep a pool
of keep-alive connections per backend, at most max-concurrency of them,
reused from one completion to the next and closed when idle, also after a
cancelled or failed stream.  The real daemon against the keep-alive fake
upstreams on loopback; connections counted from /proc/net/tcp."""

import os
import threading
import time

from enslib import Daemon, SCALE, gv, run_tests
from fake_anthropic import FakeAnthropic
from fake_openai import FakeOpenAI

KEY_ENV = "ENS_TEST_POOL_ANTHROPIC_KEY"
MAX_CONCURRENCY = 4
IDLE_S = 1
KINDS = ("plain", "stream", "cancel", "garbled")


def established(pid, *ports):
    """{port: established TCP connections of process @pid to 127.0.0.1:port}
    (the daemon's side of its upstream connections; tests run in parallel,
    so sockets are matched to the process by inode)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = {port: 0 for port in ports}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            port = int(fields[2].split(":")[1], 16)
            if fields[3] == "01" and port in n and fields[9] in inodes:
                n[port] += 1
    return n


def backend(plugin, url, prefix, **extra):
    upstream = {"ok": "ok-pool", "drip": "drip", "garbled": "garbled"}
    group = {
        "plugin": gv(plugin),
        "base-url": gv(url),
        "models": gv([f"{prefix}-{k}" for k in upstream]),
        "model-map": gv({f"{prefix}-{k}": v for k, v in upstream.items()}),
        "max-concurrency": gv(MAX_CONCURRENCY),
        "idle-timeout-s": gv(IDLE_S),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def one(c, prefix, kind):
    """One completion of @kind on the backend serving @prefix-*; returns the
    result event's data."""
    model = {"plain": "ok", "stream": "ok", "cancel": "drip", "garbled": "garbled"}[kind]
    ack = c.ok("complete", {"prompt": "pool me", "model": f"{prefix}-{model}", "stream": kind != "plain"})
    chunks = 0
    while True:
        ev = c.next_event()
        if ev["event"] == "COMPLETION_CHUNK":
            chunks += 1
            if kind == "cancel" and chunks == 1:
                c.ok("complete.cancel", {"request_id": ack["request_id"]})
        elif ev["event"] == "COMPLETION_RESULT":
            return ev["data"]


def check(kind, res):
    if kind in ("plain", "stream"):
        assert res["result"]["response"].startswith("echo: pool me"), res
    elif kind == "cancel":
        assert res["code"] == "COMPLETION_FAILED" and res["reason"] == "CANCELLED", res
    else:
        assert res["code"] == "COMPLETION_FAILED" and res["reason"] == "UPSTREAM_ERROR", res
        assert "malformed JSON" in res["error"], res


def test_connections_are_pooled_bounded_and_closed_when_idle():
    oa, an = FakeOpenAI(), FakeAnthropic()
    os.environ[KEY_ENV] = "sk-ant-pool"
    d = Daemon(settings={"providers": gv(["gpt", "claude"]), "disabled-plugins": gv(["provider-local"]),
                         "provider-cooldown-ms": "0"},
               groups={"providers/gpt": backend("provider-openai", oa.url, "gpt"),
                       "providers/claude": backend("provider-anthropic", an.url_without_v1, "claude",
                                                   **{"api-key-env": KEY_ENV})})
    peak = {oa.port: 0, an.port: 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for port, n in established(d.proc.pid, *peak).items():
                peak[port] = max(peak[port], n)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    errors = []
    # 1,000 in the plain build; under the sanitizers (SCALE 4, every malloc
    # unwound) a quarter shows the same.
    total, workers = int(1000 / SCALE), 8
    counts = {k: 0 for k in KINDS}
    lock = threading.Lock()

    def work(w):
        try:
            c = d.client()
            for i in range(w, total, workers):
                # every kind on both backends, in a different order per worker
                kind = KINDS[(i // 2) % len(KINDS)]
                res = one(c, "gpt" if i % 2 == 0 else "claude", kind)
                check(kind, res)
                with lock:
                    counts[kind] += 1
            c.close()
        except Exception as e:  # reported below, with the daemon's log
            errors.append(repr(e))

    try:
        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120 * SCALE)
        elapsed = time.time() - start
        stop.set()
        sampler.join()
        assert not errors, (errors[:3], d.read_log()[-3000:])
        assert sum(counts.values()) == total, counts
        print(f"# {total} completions in {elapsed:.2f}s; peak connections openai {peak[oa.port]}, anthropic {peak[an.port]}; "
              f"accepted: openai {oa.connections}, anthropic {an.connections}", flush=True)

        for fake in (oa, an):
            # Never more than max-concurrency at once, and now no more either.
            assert peak[fake.port] <= MAX_CONCURRENCY, (peak, fake.port)
            assert established(d.proc.pid, fake.port)[fake.port] <= MAX_CONCURRENCY
            # Reused: a new connection only where a cancelled or failed
            # stream dropped one, plus the pool filling up (one per backend
            # and worker at most, were nothing reused, would be 500).
            dropped = (counts["cancel"] + counts["garbled"]) // 2
            assert fake.connections <= dropped + 2 * MAX_CONCURRENCY, (fake.connections, dropped)

        # Idle connections are closed after idle-timeout-s.
        deadline = time.time() + (IDLE_S + 3) * SCALE
        while time.time() < deadline and any(established(d.proc.pid, oa.port, an.port).values()):
            time.sleep(0.05)
        left = established(d.proc.pid, oa.port, an.port)
        assert not any(left.values()), left

        # And the next completions are served as ever, on new connections.
        c = d.client()
        for prefix in ("gpt", "claude"):
            check("plain", one(c, prefix, "plain"))
            check("stream", one(c, prefix, "stream"))
        assert c.ok("health")["completions"]["running"] == 0
    finally:
        stop.set()
        d.cleanup()
        oa.close()
        an.close()


def test_a_connection_closed_by_the_upstream_while_idle_is_not_reused():
    """The upstream closes its side of idle connections (its own keep-alive
    timeout); the next completion goes out on a fresh one and succeeds."""
    oa = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["gpt"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/gpt": backend("provider-openai", oa.url, "gpt", **{"idle-timeout-s": 60})})
    try:
        c = d.client()
        check("plain", one(c, "gpt", "plain"))
        assert oa.connections == 1
        oa.drop_idle_connections()
        deadline = time.time() + 5 * SCALE
        while established(d.proc.pid, oa.port)[oa.port] and time.time() < deadline:
            time.sleep(0.02)
        for kind in ("plain", "stream", "plain"):
            check(kind, one(c, "gpt", kind))
        assert oa.connections == 2, oa.connections
    finally:
        d.cleanup()
        oa.close()


def test_a_request_on_a_connection_the_upstream_just_closed_is_sent_again():
    """The upstream closes a pooled connection as the next request arrives on
    it, unanswered: the request goes out again, once, on a new connection."""
    oa = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["gpt"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/gpt": backend("provider-openai", oa.url, "gpt", **{"idle-timeout-s": 60})})
    try:
        c = d.client()
        check("plain", one(c, "gpt", "plain"))
        oa.vanish_on_reuse(1)
        check("stream", one(c, "gpt", "stream"))
        assert oa.vanish == 0 and oa.connections == 2, (oa.vanish, oa.connections)
        check("plain", one(c, "gpt", "plain"))
        assert oa.connections == 2, oa.connections
    finally:
        d.cleanup()
        oa.close()


def test_a_hostile_upstream_costs_one_completion():
    """A tool call whose index is an object fails that completion with
    UPSTREAM_ERROR (no critical: the daemon runs with G_DEBUG=fatal-criticals);
    the next ones are served as ever."""
    oa = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["gpt"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/gpt": backend("provider-openai", oa.url, "gpt",
                                                **{"model-map": {"gpt-ok": "ok-pool", "gpt-bad": "hostile"},
                                                   "models": ["gpt-ok", "gpt-bad"]})})
    try:
        c = d.client()
        ack = c.ok("complete", {"prompt": "x", "model": "gpt-bad", "stream": True})
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_RESULT":
                break
        res = ev["data"]
        assert res["request_id"] == ack["request_id"] and res["reason"] == "UPSTREAM_ERROR", res
        assert "tool_calls[0].index is an object, not an integer" in res["error"], res
        check("plain", one(c, "gpt", "plain"))
        check("stream", one(c, "gpt", "stream"))
        assert d.proc.poll() is None
    finally:
        d.cleanup()
        oa.close()


if __name__ == "__main__":
    run_tests(globals())
