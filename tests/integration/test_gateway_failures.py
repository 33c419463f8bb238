"""Failures are never silent: an upstream stream that ends abnormally
(connection reset, no [DONE] / message_stop, malformed data, a stall between
chunks) through the real daemon, provider-openai and provider-anthropic
against the scripted fake upstream (tests/support/ens-fake-upstream).

Before the first chunk the completion falls back to the next-ranked
backend; after it, the requester is told: native clients get a failed
COMPLETION_RESULT with the text so far and its usage (partial), KSI clients
the same under result, OpenAI stream clients an error event and no [DONE].  Each
failure counts in the health counters and in the backend's error rate."""

import json
import os
import re
import socket
import subprocess

from enslib import Daemon, SCALE, gv, run_tests
from fake_upstream import FakeUpstream

KEY_ENV = "ENS_TEST_GATEWAY_KEY"
STALL_MS = 300  # timeout-ms of the failing backends: a gap longer than this is a stall

# scenario -> script of the failing backend.  Chunks are "w0 ", "w1 ", ...
BEFORE = {
    "reset": "reset",
    "cut0": "chunks=3,cut=0",
    "malformed0": "chunks=3,malformed=0",
    "stall0": f"chunks=3,gap=0:{STALL_MS * 10}",
    "empty": "chunks=0,no-end",
}
AFTER = {  # scenario -> (script, reason, text streamed before the failure)
    "cut2": ("chunks=4,cut=2", "UPSTREAM_ERROR", "w0 w1 "),
    "noend": ("chunks=3,no-end", "UPSTREAM_ERROR", "w0 w1 w2 "),
    "malformed2": ("chunks=4,malformed=2", "UPSTREAM_ERROR", "w0 w1 "),
    "stall2": (f"chunks=4,gap=2:{STALL_MS * 10}", "TIMEOUT", "w0 w1 "),
}


def backend(plugin, url, models, quality, timeout_ms=10000):
    group = {
        "plugin": gv(plugin),
        "base-url": gv(url),
        "models": gv(models),
        "quality": gv(float(quality)),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(timeout_ms),
        "max-concurrency": gv(8),
    }
    if plugin == "provider-anthropic":
        group["api-key-env"] = gv(KEY_ENV)
    return group


def daemon(up, plugin):
    """A daemon with one failing backend per scenario (each serving model
    m-SCENARIO, best ranked) and one good backend serving every one of
    those models, ranked next."""
    os.environ[KEY_ENV] = "sk-test"
    v1 = plugin == "provider-openai"
    names = list(BEFORE) + list(AFTER)
    groups = {}
    for name in names:
        script = BEFORE.get(name) or AFTER[name][0]
        groups[f"providers/bad-{name}"] = backend(plugin, up.base(script, v1=v1), [f"m-{name}"], 0.99,
                                                  timeout_ms=STALL_MS)
    groups["providers/good"] = backend(plugin, up.base("chunks=3", v1=v1), [f"m-{n}" for n in names], 0.5)
    settings = {"providers": gv([f"bad-{n}" for n in names] + ["good"]), "http-port": gv(0)}
    return Daemon(settings=settings, groups=groups)


def complete(c, model):
    ack = c.ok("complete", {"prompt": "tell me a story", "model": model, "stream": True})
    chunks = []
    while True:
        ev = c.next_event()
        if ev["data"].get("request_id") != ack["request_id"]:
            continue
        if ev["event"] == "COMPLETION_CHUNK":
            chunks.append(ev["data"]["chunk"])
        elif ev["event"] == "COMPLETION_RESULT":
            return ack, ev["data"], chunks


def backend_stats(c, name):
    return [p for p in c.ok("providers.list")["providers"] if p["name"] == name][0]


def curl_stream(url, model):
    r = subprocess.run(["curl", "-s", "-S", "-N", "--max-time", str(int(30 * SCALE)), "-H",
                        "Content-Type: application/json", "--data-binary",
                        json.dumps({"model": model, "stream": True,
                                    "messages": [{"role": "user", "content": "tell me a story"}]}),
                        url + "/v1/chat/completions"], capture_output=True, timeout=40 * SCALE)
    assert r.returncode == 0, r
    return r.stdout.decode()


def check_provider(plugin):
    up = FakeUpstream()
    d = daemon(up, plugin)
    try:
        c = d.client()
        url = re.search(r"transport-http: listening on (http://127\.0\.0\.1:\d+)", d.read_log()).group(1)

        # Before the first chunk: the next-ranked backend answers, whole.
        for name in BEFORE:
            for _ in range(2):
                ack, res, chunks = complete(c, f"m-{name}")
                assert ack["provider"] == f"bad-{name}", (name, ack)
                assert "result" in res, (name, res)
                r = res["result"]
                assert r["provider"] == "good" and r["attempts"] == 2, (name, r)
                assert r["response"] == "w0 w1 w2 ", (name, r)
                assert r["model"] == f"m-{name}", (name, r)
                assert "".join(chunks) == r["response"], (name, chunks)
            bad = backend_stats(c, f"bad-{name}")
            assert bad["failures"] == 2 and bad["error_rate"] > 0, (name, bad)
        health = c.ok("health")["completions"]
        assert health["fallbacks"] == 2 * len(BEFORE) and health["failed"] == 0, health

        # After the first chunk: the completion fails, with what was said.
        failed = 0
        for name, (_, reason, text) in AFTER.items():
            ack, res, chunks = complete(c, f"m-{name}")
            assert "result" not in res, (name, res)
            assert res["code"] == "COMPLETION_FAILED" and res["reason"] == reason, (name, res)
            assert res["error"], (name, res)
            assert "".join(chunks) == text, (name, chunks)
            partial = res["partial"]
            assert partial["response"] == text and partial["provider"] == f"bad-{name}", (name, partial)
            assert partial["model"] == f"m-{name}", (name, partial)
            usage = partial["usage"]
            assert usage["output_tokens"] == (len(text) + 3) // 4 and usage["input_tokens"] > 0, (name, usage)
            assert usage["estimated"] is True, (name, usage)
            failed += 1
            bad = backend_stats(c, f"bad-{name}")
            assert bad["failures"] == 1 and bad["error_rate"] > 0, (name, bad)
            assert backend_stats(c, "good")["calls"] == 2 * len(BEFORE), name  # no fallback after a chunk

            # The OpenAI stream: the text so far, then an error event, no [DONE].
            body = curl_stream(url, f"m-{name}")
            events = [e[len("data: "):] for e in body.split("\n\n") if e.strip()]
            assert "[DONE]" not in events, (name, body)
            last = json.loads(events[-1])
            assert last["error"]["type"] == "server_error" and last["error"]["message"], (name, last)
            assert last["error"]["code"] == ("timeout" if reason == "TIMEOUT" else "upstream_error"), (name, last)
            said = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
            assert said == text, (name, body)
            assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events[:-1]), (name, body)
            failed += 1

        health = c.ok("health")["completions"]
        assert health["failed"] == failed, health

        # KSI: COMPLETION_RESULT's result carries the error and what was said.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        s.connect(d.path("messaging.sock"))
        s.sendall(b'{"command":"AGENT_CONNECTION","version":"2.0","parameters":'
                  b'{"action":"connect","agent_id":"ksi-reader"}}\n')
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        buf = buf.split(b"\n", 1)[1]
        # (a streamed completion whose results go to the KSI agent: KSI's own
        # COMPLETION does not stream, and a completion that streamed nothing
        # falls back instead)
        c.ok("complete", {"prompt": "tell me", "client_id": "ksi-reader", "model": "m-cut2", "stream": True})
        while True:
            while b"\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            if ev.get("type") == "COMPLETION_RESULT":
                break
        s.close()
        result = ev["result"]
        assert result["error"] and result["code"] == "COMPLETION_FAILED", ev
        assert result["partial"]["response"] == "w0 w1 ", ev
        assert result["partial"]["usage"]["output_tokens"] == 2, ev
    finally:
        d.cleanup()
        up.close()


def test_openai_streams_cut_at_every_point():
    check_provider("provider-openai")


def test_anthropic_streams_cut_at_every_point():
    check_provider("provider-anthropic")


run_tests(globals())
