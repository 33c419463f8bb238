"""More completions through the real daemon: the Anthropic provider (plain,
streamed, the key header, 529 falling back to the next backend), tool calls (result and
tool_call_start, for plain completions and sessions), observed latency
feeding back into providers.list, and ensemblectl's completion and session
commands against a real daemon."""

import json
import os
import subprocess
import time

from enslib import Daemon, ENSEMBLECTL, SCALE, gv, run_tests
from fake_anthropic import FakeAnthropic, INPUT_TOKENS
from fake_openai import FakeOpenAI

KEY_ENV = "ENS_TEST_ANTHROPIC_KEY"


def anthropic_backend(base_url, name_model, upstream_model, quality=0.95, **extra):
    group = {
        "plugin": gv("provider-anthropic"),
        "base-url": gv(base_url),
        "api-key-env": gv(KEY_ENV),
        "models": gv([name_model]),
        "model-map": gv({name_model: upstream_model}),
        "quality": gv(float(quality)),
        "cost-input-per-1k": gv(0.0),
        "cost-output-per-1k": gv(0.0),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def openai_backend(url, name_model, upstream_model, quality=0.9, **extra):
    group = {
        "plugin": gv("provider-openai"),
        "base-url": gv(url),
        "models": gv([name_model]),
        "model-map": gv({name_model: upstream_model}),
        "quality": gv(float(quality)),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def complete(c, **data):
    """Sends complete; returns (ack, result event data, chunks, other completion events)."""
    ack = c.ok("complete", data)
    assert ack["status"] == "queued" and ack["request_id"].startswith("req_"), ack
    chunks, others = [], []
    while True:
        ev = c.next_event()
        if ev["event"] == "COMPLETION_CHUNK":
            assert ev["data"]["request_id"] == ack["request_id"], ev
            chunks.append(ev["data"]["chunk"])
        elif ev["event"] == "COMPLETION_RESULT":
            assert ev["data"]["request_id"] == ack["request_id"], ev
            return ack, ev["data"], chunks, others
        else:
            others.append(ev)


def wait_session_event(c, final=("task_completed", "task_failed")):
    """Reads session events until one of @final; returns the list of their data."""
    seen = []
    while True:
        ev = c.next_event()
        if not ev["event"].startswith("session."):
            continue
        seen.append(ev["data"])
        if ev["data"]["type"] in final:
            return seen


# ------------------------------------------------------------------ Anthropic


def test_anthropic_plain_and_stream():
    fake = FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["claude"])},
               groups={"providers/claude": anthropic_backend(fake.url_without_v1, "claude-test", "claude-upstream")})
    try:
        c = d.client()
        _, res, chunks, _ = complete(c, prompt="hi claude", model="claude-test")
        r = res["result"]
        assert r["provider"] == "claude" and r["provider_plugin"] == "provider-anthropic", r
        assert r["response"].strip() == "echo: hi claude", r
        assert chunks == [], chunks
        assert r["usage"]["input_tokens"] == INPUT_TOKENS and r["usage"]["output_tokens"] == 3, r
        assert r.get("finish_reason", "stop") == "stop", r

        _, res, chunks, _ = complete(c, prompt="stream from claude", model="claude-test", stream=True)
        r = res["result"]
        assert len(chunks) > 1, chunks
        assert "".join(chunks) == r["response"], (chunks, r)
        assert r["response"].strip() == "echo: stream from claude", r
        assert r["usage"]["input_tokens"] == INPUT_TOKENS and r["usage"]["output_tokens"] == 4, r

        # the wire: model mapped, key and version headers, stream flag, /v1/messages
        assert fake.calls == [("claude-upstream", False, "sk-test"), ("claude-upstream", True, "sk-test")], fake.calls
        for rq in fake.requests:
            assert rq["path"] == "/v1/messages", rq
            headers = {k.lower(): v for k, v in rq["headers"].items()}
            assert headers.get("anthropic-version"), headers
            assert "authorization" not in headers, headers
            assert isinstance(rq["body"]["max_tokens"], int) and rq["body"]["max_tokens"] > 0, rq
            assert [m["role"] for m in rq["body"]["messages"]] == ["user"], rq

        # a system message goes in "system", not in messages
        complete(c, model="claude-test", messages=[{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "q"}])
        body = fake.requests[-1]["body"]
        assert body.get("system") == "be brief", body
        assert [m["role"] for m in body["messages"]] == ["user"], body

        claude = [p for p in c.ok("providers.list")["providers"] if p["name"] == "claude"][0]
        assert claude["calls"] == 3 and claude["provider"] == "provider-anthropic", claude
    finally:
        d.cleanup()
        fake.close()


def test_anthropic_529_falls_back_to_the_next_backend():
    fake = FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["busy", "spare"])},
               groups={"providers/busy": anthropic_backend(fake.url_without_v1, "busy-model", "fail-overloaded",
                                                           quality=0.99),
                       "providers/spare": anthropic_backend(fake.url_without_v1, "spare-model", "claude-spare",
                                                            quality=0.5)})
    try:
        c = d.client()
        ack, res, _, _ = complete(c, prompt="are you there")
        assert ack["provider"] == "busy", ack
        assert "result" in res, res
        r = res["result"]
        # the next-ranked real backend answers; the offline provider is no
        # candidate while real ones are configured
        assert r["provider"] == "spare" and r["model"] == "claude-spare", r
        assert r["attempts"] == 2, r
        assert fake.calls == [("fail-overloaded", False, "sk-test"), ("claude-spare", False, "sk-test")], fake.calls
        assert c.ok("health")["completions"]["fallbacks"] >= 1
        busy = [p for p in c.ok("providers.list")["providers"] if p["name"] == "busy"][0]
        assert busy["failures"] >= 1 and busy["error_rate"] > 0, busy
        # streaming too: the failure comes before any chunk, so spare answers it whole
        _, res, chunks, _ = complete(c, prompt="stream anyway", stream=True)
        assert res["result"]["provider"] == "spare", res
        assert "".join(chunks) == res["result"]["response"], (chunks, res)
    finally:
        d.cleanup()
        fake.close()


def test_anthropic_529_is_retried_then_fails_without_local():
    fake = FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["busy"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/busy": anthropic_backend(fake.url_without_v1, "busy-model", "fail-overloaded",
                                                           **{"max-retries": 1})})
    try:
        c = d.client()
        _, res, _, _ = complete(c, prompt="nobody home")
        assert "result" not in res and res["code"] == "COMPLETION_FAILED", res
        # HTTP 529 maps by status (ens_http_error_code_for_status: only 429 is
        # RATE_LIMITED); an overloaded_error *event* in a stream is RATE_LIMITED.
        assert res["reason"] in ("UPSTREAM_ERROR", "RATE_LIMITED"), res
        assert "529" in res["error"] and "Overloaded" in res["error"], res
        # 529 is retryable: max-retries 1 means two requests upstream
        assert fake.models_called() == ["fail-overloaded", "fail-overloaded"], fake.calls
    finally:
        d.cleanup()
        fake.close()


# ------------------------------------------------------------------ tool calls


def test_openai_tool_calls_plain():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["gpt"])},
               groups={"providers/gpt": openai_backend(fake.url, "gpt-tools", "tools")})
    try:
        c = d.client()
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        _, res, chunks, others = complete(c, prompt="use a tool", model="gpt-tools", tools=tools)
        r = res["result"]
        assert r["provider"] == "gpt", r
        calls = r.get("tool_calls")
        assert isinstance(calls, list) and len(calls) == 1, r
        assert calls[0]["name"] == "lookup" and calls[0]["id"] == "call_1", calls
        assert calls[0]["arguments"] in ({"q": "x"}, '{"q":"x"}'), calls
        assert r.get("finish_reason") == "tool_calls", r
        assert chunks == [], chunks
        # the provider reported the tool call as it started: the requester sees it
        starts = [e for e in others if e["event"] == "COMPLETION_EVENT" and e["data"].get("type") == "tool_call_start"]
        assert len(starts) == 1, others
        assert starts[0]["data"]["data"]["name"] == "lookup", starts
        assert starts[0]["data"]["request_id"] == res["request_id"], starts
    finally:
        d.cleanup()
        fake.close()


def test_anthropic_tool_calls_plain_and_in_a_session():
    fake = FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["claude"])},
               groups={"providers/claude": anthropic_backend(fake.url_without_v1, "claude-tools", "tools")})
    try:
        c = d.client()
        _, res, _, others = complete(c, prompt="tool please", model="claude-tools")
        r = res["result"]
        assert [t["name"] for t in r.get("tool_calls", [])] == ["lookup"], r
        assert r["tool_calls"][0]["arguments"] == {"q": "x"}, r
        assert r.get("finish_reason") == "tool_calls", r
        assert any(e["event"] == "COMPLETION_EVENT" and e["data"].get("type") == "tool_call_start" for e in others), others

        # a session streams: the streamed tool_use block is announced on session.<id>.tool_call_start
        watcher = d.client()
        sid = c.ok("sessions.spawn", {"session_type": "chat", "model": "claude-tools"})["session_id"]
        watcher.ok("subscribe", {"topics": [f"session.{sid}.*"]})
        c.ok("sessions.execute", {"session_id": sid, "task": "look it up"})
        seen = wait_session_event(watcher)
        types = [e["type"] for e in seen]
        assert types[-1] == "task_completed", seen
        assert "tool_call_start" in types, types
        start = [e for e in seen if e["type"] == "tool_call_start"][0]
        assert start["sessionId"] == sid and start["data"]["name"] == "lookup", start
        assert types.index("task_executing") < types.index("tool_call_start"), types
        done = seen[-1]["result"]
        assert [t["name"] for t in done.get("tool_calls", [])] == ["lookup"], done
        assert done["tool_calls"][0]["arguments"] == {"q": "x"}, done
        assert fake.calls[-1] == ("tools", True, "sk-test"), fake.calls
    finally:
        d.cleanup()
        fake.close()


# ------------------------------------------------------------------ latency


def test_observed_latency_replaces_configured():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["sloth"])},
               groups={"providers/sloth": openai_backend(fake.url, "sloth-model", "ok-fast", **{"latency-ms": 5000})})
    try:
        c = d.client()
        before = [p for p in c.ok("providers.list")["providers"] if p["name"] == "sloth"][0]
        assert before["configured_latency_ms"] == 5000 and before["latency_ms"] == 5000, before
        for i in range(4):
            _, res, _, _ = complete(c, prompt=f"quick {i}", model="sloth-model")
            assert res["result"]["provider"] == "sloth", res
        after = [p for p in c.ok("providers.list")["providers"] if p["name"] == "sloth"][0]
        assert after["configured_latency_ms"] == 5000, after
        assert after["latency_ms"] < 5000, after
        # a moving average: four fast calls bring it well down, but not to zero at once
        assert after["latency_ms"] < 0.8 ** 3 * 5000, after
        assert after["latency_ms"] > 0, after
        assert after["calls"] == 4, after
    finally:
        d.cleanup()
        fake.close()


# ------------------------------------------------------------------ ensemblectl


def ctl(d, *args, timeout=20):
    return subprocess.run([ENSEMBLECTL, "--socket-dir", d.socket_dir] + list(args), capture_output=True, text=True,
                          timeout=timeout * SCALE, stdin=subprocess.DEVNULL)


def ctl_ok(d, *args):
    p = ctl(d, *args)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def assert_ctl_error(p, code):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"ensemblectl: {code}: ") and len(lines[0]) > len(f"ensemblectl: {code}: "), p.stderr


def test_ensemblectl_completions():
    d = Daemon()
    try:
        c = d.client()
        expected = complete(c, prompt="hello there")[1]["result"]["response"]
        out = ctl_ok(d, "complete", "hello there")
        assert out.strip() == expected.strip() and out.strip(), (out, expected)
        # the words of the prompt are joined
        out = ctl_ok(d, "complete", "hello", "there")
        assert out.strip() == expected.strip(), out

        streamed = complete(c, prompt="stream it", stream=True)[1]["result"]["response"]
        out = ctl_ok(d, "complete", "--stream", "stream it")
        assert out.strip() == streamed.strip() and out.strip(), (out, streamed)

        out = ctl_ok(d, "--json", "complete", "json please")
        r = json.loads(out)
        assert r["provider"] == "local" and r["response"] and "usage" in r, r

        p = ctl(d, "complete", "--provider", "nope", "x")
        assert_ctl_error(p, "UNKNOWN_MODEL")
        assert p.stdout == "", p.stdout

        out = ctl_ok(d, "route", '{"token_count":100}')
        fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
        assert fields.get("provider", "").strip() == "local", out
        assert fields.get("policy", "").strip() == "multifactor", out
        r = json.loads(ctl_ok(d, "--json", "route", '{"token_count":100}'))
        assert r["provider"] == "local", r

        b = json.loads(ctl_ok(d, "--json", "budget"))
        assert "daily_budget" in b and "current_spend" in b, b

        out = ctl_ok(d, "providers")
        assert out.splitlines()[0].split()[:2] == ["name", "provider"], out
        assert any(line.split()[:2] == ["local", "provider-local"] for line in out.splitlines()), out
        plist = json.loads(ctl_ok(d, "--json", "providers"))["providers"]
        local = [p for p in plist if p["name"] == "local"][0]
        # every completion above (three through the client, four through ensemblectl) was counted
        assert local["calls"] >= 5, local
    finally:
        d.cleanup()


def test_ensemblectl_sessions():
    d = Daemon()
    try:
        spawned = json.loads(ctl_ok(d, "--json", "session", "spawn", '{"session_type":"chat"}'))
        sid = spawned["session_id"]
        assert sid.startswith("sess_") and spawned["status"] == "idle", spawned

        out = ctl_ok(d, "session", "exec", sid, "task one")
        assert out.strip(), out
        # what was printed is the assistant's answer kept in the conversation
        status = json.loads(ctl_ok(d, "session", "status", sid))
        assert status["session_id"] == sid and status["messages"] == 2, status
        assert [m["role"] for m in status["history"]] == ["user", "assistant"], status
        assert status["history"][0]["content"] == "task one", status
        assert out.strip() == status["history"][1]["content"].strip(), (out, status)
        assert status["status"] == "idle" and status["tasks_total"] == 1, status

        out = ctl_ok(d, "sessions")
        assert sid in out, out
        listed = json.loads(ctl_ok(d, "--json", "sessions"))["sessions"]
        assert [s["session_id"] for s in listed] == [sid], listed

        out = ctl_ok(d, "session", "stop", sid)
        assert "stopped" in out, out
        assert json.loads(ctl_ok(d, "--json", "session", "status", sid))["status"] == "stopped"

        p = ctl(d, "session", "exec", sid, "x")
        assert_ctl_error(p, "SESSION_STOPPED")
        p = ctl(d, "session", "exec", "sess_missing", "x")
        assert_ctl_error(p, "SESSION_NOT_FOUND")
        p = ctl(d, "session", "exec", sid)
        assert p.returncode == 2, (p.returncode, p.stderr)
    finally:
        d.cleanup()


run_tests(globals())
