"""Completions through the real daemon: ack, streamed chunks and the result
delivered only to the requester; routing, fallback, budget, cancellation,
the offline, OpenAI-compatible and command providers, KSI COMPLETION, and
sessions."""

import os
import socket
import stat
import tempfile
import threading
import time

from enslib import Daemon, SCALE, gv, ksi, run_tests
from fake_openai import FakeOpenAI


def openai_backend(url, upstream_model, name_model, quality=0.8, cost=0.0, **extra):
    group = {
        "plugin": gv("provider-openai"),
        "base-url": gv(url),
        "models": gv([name_model]),
        "model-map": gv({name_model: upstream_model}),
        "quality": gv(float(quality)),
        "cost-input-per-1k": gv(float(cost)),
        "cost-output-per-1k": gv(float(cost)),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def complete(c, **data):
    """Sends complete; returns (ack, result event data)."""
    ack = c.ok("complete", data)
    assert ack["status"] == "queued" and ack["request_id"].startswith("req_"), ack
    assert isinstance(ack["queue_position"], int), ack
    chunks = []
    while True:
        ev = c.next_event()
        if ev["event"] == "COMPLETION_CHUNK":
            assert ev["data"]["request_id"] == ack["request_id"], ev
            chunks.append(ev["data"]["chunk"])
        elif ev["event"] == "COMPLETION_RESULT":
            assert ev["data"]["request_id"] == ack["request_id"], ev
            return ack, ev["data"], chunks


def test_local_provider_plain_and_streaming():
    d = Daemon()
    try:
        c = d.client()
        ack, res, chunks = complete(c, prompt="Summarise the design in one line")
        r = res["result"]
        assert res["to"] == res["client_id"], res
        assert r["provider"] == "local" and r["local"] is True, r
        assert "local provider" in r["response"] and "Summarise the design" in r["response"], r
        assert r["cost"] == 0 and r["usage"]["input_tokens"] > 0 and r["duration_ms"] >= 0, r
        assert chunks == [], "chunks were sent without stream:true"
        # deterministic
        _, res2, _ = complete(c, prompt="Summarise the design in one line")
        assert res2["result"]["response"] == r["response"]
        # streaming: chunks in order, adding up to the response
        _, res3, chunks = complete(c, prompt="stream this please", stream=True)
        assert len(chunks) > 1, chunks
        assert "".join(chunks) == res3["result"]["response"], (chunks, res3)
    finally:
        d.cleanup()


def test_results_reach_only_the_requester():
    d = Daemon()
    try:
        requester, other, observer = d.client(), d.client(), d.client()
        other.ok("subscribe", {"topics": ["COMPLETION_RESULT", "COMPLETION_CHUNK", "COMPLETION_*"]})
        ack = requester.ok("complete", {"prompt": "hello", "stream": True})
        # learn the requester's client id from the result, then check the others
        while True:
            ev = requester.next_event()
            if ev["event"] == "COMPLETION_RESULT":
                break
        cid = ev["data"]["client_id"]
        observer.ok("subscribe", {"topics": [f"COMPLETION_RESULT:{cid}"]})
        requester.ok("complete", {"prompt": "second"})
        ev2 = observer.next_event()
        assert ev2["event"] == "COMPLETION_RESULT" and ev2["to"] == cid, ev2
        other.ok("publish", {"topic": "marker"})  # not subscribed: no event
        other.ok("subscribe", {"topics": ["marker2"]})
        requester.ok("publish", {"topic": "marker2"})
        ev3 = other.next_event()
        assert ev3["event"] == "marker2", f"another client saw a private completion event: {ev3}"
        assert ack["request_id"]
    finally:
        d.cleanup()


def test_route_only_and_bad_input():
    d = Daemon()
    try:
        c = d.client()
        r = c.ok("route", {"token_count": 2000, "task_type": "reasoning", "priority": "high", "max_latency": 3000})
        for key in ("provider", "reasoning", "estimated_cost", "confidence", "ranking", "policy"):
            assert key in r, r
        assert r["provider"] == "local" and r["policy"] == "multifactor", r
        bad = [
            ({}, "prompt"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": 5}, "prompt"),
            ({"prompt": "x", "token_count": -5}, "token_count"),
            ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
            ({"prompt": "x", "temperature": 9}, "temperature"),
            ({"prompt": "x", "priority": "urgent"}, "priority"),
            ({"prompt": "x", "stream": "yes"}, "stream"),
            ({"messages": []}, "messages"),
            ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ]
        for data, field in bad:
            rep = c.request("complete", data)
            assert rep["status"] == "error" and rep["error"]["code"] == "INVALID_PARAMETERS", (data, rep)
            assert rep["error"]["details"]["field"] == field, (data, rep)
        rep = c.request("complete", {"prompt": "x", "provider": "no-such-backend"})
        assert rep["error"]["code"] == "UNKNOWN_MODEL" and rep["error"]["details"]["field"] == "provider", rep
        rep = c.request("route", {"token_count": -1})
        assert rep["error"]["code"] == "INVALID_PARAMETERS", rep
        # a huge prompt is refused by the line limit, and the connection lives on
        c.send_raw('{"id":"big","action":"complete","data":{"prompt":"' + "x" * (2 << 20) + '"}}\n')
        rep = c.recv()
        assert rep["error"]["code"] == "LINE_TOO_LONG", rep
        assert c.ok("ping")["pong"] is True
        rep = c.request("complete.cancel", {"request_id": "req_nope"})
        assert rep["error"]["code"] == "NOT_FOUND", rep
    finally:
        d.cleanup()


def test_openai_provider_plain_stream_and_tools():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["gpt"])},
               groups={"providers/gpt": openai_backend(fake.url, "ok-upstream", "gpt-test", quality=0.9,
                                                       **{"api-key-env": "ENS_TEST_FAKE_KEY"})})
    try:
        c = d.client()
        _, res, _ = complete(c, prompt="hi there", model="gpt-test")
        r = res["result"]
        assert r["provider"] == "gpt" and r["response"].strip() == "echo: hi there", r
        assert r["usage"]["input_tokens"] == 11, r
        _, res, chunks = complete(c, prompt="stream me", model="gpt-test", stream=True)
        assert "".join(chunks).strip() == "echo: stream me", chunks
        assert res["result"]["usage"]["input_tokens"] == 11, res
        assert fake.models_called().count("ok-upstream") == 2, fake.calls
        providers = c.ok("providers.list")["providers"]
        gpt = [p for p in providers if p["name"] == "gpt"][0]
        assert gpt["calls"] == 2 and gpt["provider"] == "provider-openai", gpt
    finally:
        d.cleanup()
        fake.close()


def test_fallback_on_500_and_cooldown():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["primary", "secondary"]), "disabled-plugins": gv(["provider-local"]),
                         "provider-failure-threshold": gv(2), "provider-cooldown-ms": gv(60000)},
               groups={"providers/primary": openai_backend(fake.url, "fail-500", "p-model", quality=0.95),
                       "providers/secondary": openai_backend(fake.url, "ok-s", "s-model", quality=0.5)})
    try:
        c = d.client()
        ack, res, _ = complete(c, prompt="fall back please")
        assert ack["provider"] == "primary", ack
        assert res["result"]["provider"] == "secondary", res
        assert res["result"]["attempts"] == 2, res
        assert fake.models_called()[:2] == ["fail-500", "ok-s"], fake.calls
        # a second failure puts primary in cooldown: the third request skips it
        complete(c, prompt="again")
        before = fake.models_called().count("fail-500")
        _, res, _ = complete(c, prompt="third")
        assert res["result"]["provider"] == "secondary"
        assert fake.models_called().count("fail-500") == before, "a cooling-down provider was called"
        health = c.ok("health")
        assert health["completions"]["fallbacks"] >= 2, health
        primary = [p for p in c.ok("providers.list")["providers"] if p["name"] == "primary"][0]
        assert primary["cooling_down"] is True and primary["error_rate"] > 0, primary
    finally:
        d.cleanup()
        fake.close()


def test_timeout_falls_back_and_stream_failure_before_first_chunk():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["slowpoke", "steady"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/slowpoke": openai_backend(fake.url, "slow", "slow-model", quality=0.95,
                                                            **{"timeout-ms": 500}),
                       "providers/steady": openai_backend(fake.url, "ok-2", "steady-model", quality=0.5)})
    try:
        c = d.client()
        start = time.time()
        _, res, chunks = complete(c, prompt="quick", stream=True)
        assert res["result"]["provider"] == "steady", res
        assert time.time() - start < 3 * SCALE, "the slow provider's timeout was not enforced"
        assert "".join(chunks).strip() == "echo: quick", chunks
    finally:
        d.cleanup()
        fake.close()


def test_each_request_is_routed_on_its_own_fields():
    """What one request asked of routing (a model, a priority, a latency
    limit) does not stay for the next one on the connection."""
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["best", "other"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/best": openai_backend(fake.url, "ok-1", "best-model", quality=0.95),
                       "providers/other": openai_backend(fake.url, "ok-2", "other-model", quality=0.5)})
    try:
        c = d.client()
        plain = c.ok("complete", {"prompt": "a"})
        assert plain["provider"] == "best" and "priority" not in plain["reasoning"], plain
        asked = c.ok("complete", {"prompt": "b", "model": "other-model", "priority": "high", "max_latency": 1})
        assert asked["provider"] == "other", asked
        assert asked["ranking"] == ["other"], asked
        assert "high priority" in asked["reasoning"] and "slower than the 1 ms limit" in asked["reasoning"], asked
        again = c.ok("complete", {"prompt": "c"})
        assert again["provider"] == "best" and again["ranking"] == ["best", "other"], again
        assert "priority" not in again["reasoning"] and "limit" not in again["reasoning"], again
        assert again["model"] == "ok-1", again  # the upstream's name for best-model
        results = 0
        while results < 3:
            if c.next_event()["event"] == "COMPLETION_RESULT":
                results += 1
    finally:
        d.cleanup()
        fake.close()


def test_completion_deadlines_end_each_in_its_time():
    """timeout_ms ends a completion that runs too long with TIMEOUT, each at
    its own deadline whatever order they were asked in; one with time
    enough finishes."""
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["slowpoke"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/slowpoke": openai_backend(fake.url, "slow", "slow-model", quality=0.9)})
    try:
        c = d.client()
        start = time.time()
        asked = {}
        # (the upstream answers in 3 s; deadlines are not scaled: they are
        # the daemon's to keep, however slow the build)
        for ms in (1200, 400, 800):
            ack = c.ok("complete", {"prompt": "late", "timeout_ms": ms})
            asked[ack["request_id"]] = ms
        ok = c.ok("complete", {"prompt": "in time", "timeout_ms": 20000 * SCALE})
        ended = []
        while len(ended) < 4:
            ev = c.next_event()
            if ev["event"] != "COMPLETION_RESULT":
                continue
            data = ev["data"]
            if data["request_id"] == ok["request_id"]:
                assert data["result"]["response"].strip() == "echo: in time", data
                ended.append("in time")
                continue
            assert data["code"] == "COMPLETION_FAILED" and data["reason"] == "TIMEOUT", data
            ms = asked[data["request_id"]]
            assert time.time() - start >= ms / 1000, (ms, time.time() - start)
            ended.append(ms)
        assert ended == [400, 800, 1200, "in time"], ended
    finally:
        d.cleanup()
        fake.close()


def test_cancel_mid_stream_and_disconnect():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["dripper"])},
               groups={"providers/dripper": openai_backend(fake.url, "drip", "drip-model", quality=0.9)})
    try:
        c = d.client()
        ack = c.ok("complete", {"prompt": "go", "model": "drip-model", "stream": True})
        first = c.next_event()
        assert first["event"] == "COMPLETION_CHUNK", first
        c.ok("complete.cancel", {"request_id": ack["request_id"]})
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_RESULT":
                break
        assert ev["data"]["code"] == "COMPLETION_FAILED" and ev["data"]["reason"] == "CANCELLED", ev
        deadline = time.time() + 5 * SCALE
        while fake.disconnects < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert fake.disconnects >= 1, "the upstream stream was not closed on cancel"

        # a requester that goes away cancels its work too
        c2 = d.client()
        c2.ok("complete", {"prompt": "go", "model": "drip-model", "stream": True})
        assert c2.next_event()["event"] == "COMPLETION_CHUNK"
        c2.close()
        deadline = time.time() + 5 * SCALE
        while fake.disconnects < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert fake.disconnects >= 2, "a vanished requester's completion kept running"
        assert c.ok("health")["completions"]["running"] == 0
    finally:
        d.cleanup()
        fake.close()


def test_budget_is_never_overspent_by_racing_requests():
    fake = FakeOpenAI()
    d = Daemon(settings={"providers": gv(["paid"]), "disabled-plugins": gv(["provider-local"]),
                         "daily-budget": gv(1.0)},
               groups={"providers/paid": openai_backend(fake.url, "ok-paid", "paid-model", quality=0.9, cost=10.0,
                                                        **{"max-concurrency": 100})})
    try:
        clients = [d.client() for _ in range(10)]
        outcomes = []
        lock = threading.Lock()

        def run(cl):
            for _ in range(5):
                rep = cl.request("complete", {"prompt": "hi", "token_count": 20, "max_tokens": 10})
                if rep["status"] == "error":
                    with lock:
                        outcomes.append(rep["error"]["code"])
                    continue
                while True:
                    ev = cl.next_event()
                    if ev["event"] == "COMPLETION_RESULT" and ev["data"]["request_id"] == rep["data"]["request_id"]:
                        break
                with lock:
                    outcomes.append("ok" if "result" in ev["data"] else ev["data"]["reason"])

        threads = [threading.Thread(target=run, args=(cl,)) for cl in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        assert len(outcomes) == 50, outcomes
        assert outcomes.count("ok") >= 3, outcomes
        assert outcomes.count("BUDGET_EXCEEDED") >= 1, outcomes
        budget = clients[0].ok("budget")
        assert budget["current_spend"] <= budget["daily_budget"] + 1e-9, budget
        assert budget["current_spend"] > 0 and budget["reserved"] == 0, budget
        assert abs(budget["current_spend"] - outcomes.count("ok") * 0.13) < 1e-6, (budget, outcomes)
        health = clients[0].ok("health")["llm_router"]
        for key in ("daily_budget", "current_spend", "remaining", "utilization_pct"):
            assert key in health, health
        spent = budget["current_spend"]
        d.restart()  # the ledger is in the state store
        assert abs(d.client().ok("budget")["current_spend"] - spent) < 1e-9
    finally:
        d.cleanup()
        fake.close()


def write_script(tmp, name, body):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, stat.S_IRWXU)
    return path


def test_command_provider_streams_a_real_script():
    tmp = tempfile.mkdtemp(prefix="ens-cmd-")
    script = write_script(tmp, "agent.sh", 'read -r line\nfor w in one two three; do printf "%s " "$w"; sleep 0.05; done\n'
                                           'printf "(%s)" "$line"\n')
    d = Daemon(settings={"providers": gv(["shell"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/shell": {"plugin": gv("provider-command"), "command": gv([script]),
                                           "models": gv(["shell-model"]), "quality": gv(0.7)}})
    try:
        c = d.client()
        _, res, chunks = complete(c, prompt="the question", stream=True)
        r = res["result"]
        assert r["provider"] == "shell", r
        assert r["response"].startswith("one two three"), r
        assert "the question" in r["response"], r
        assert "".join(chunks) == r["response"], (chunks, r)
    finally:
        d.cleanup()


def test_ksi_completion_result_event():
    d = Daemon()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        s.connect(d.path("messaging.sock"))
        s.sendall(b'{"command":"AGENT_CONNECTION","version":"2.0","parameters":{"action":"connect","agent_id":"ksi-client"}}\n')
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        ack = ksi(d.path("completion.sock"), "COMPLETION", {"prompt": "hello from KSI", "client_id": "ksi-client"})
        assert ack["status"] == "success" and ack["result"]["status"] == "queued", ack
        assert ack["result"]["request_id"].startswith("req_") and "queue_position" in ack["result"], ack
        buf = buf.split(b"\n", 1)[1]
        import json
        while True:
            while b"\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            if ev.get("type") == "COMPLETION_RESULT":
                break
        assert ev["request_id"] == ack["result"]["request_id"], ev
        assert ev["client_id"] == "ksi-client" and "response" in ev["result"], ev
        bad = ksi(d.path("completion.sock"), "COMPLETION", {"prompt": "x"})
        assert bad["status"] == "error" and bad["error"]["code"] == "INVALID_PARAMETERS", bad
        s.close()
    finally:
        d.cleanup()


def test_sessions_stream_to_watchers_and_survive_restart():
    d = Daemon()
    try:
        c, watcher = d.client(), d.client()
        sess = c.ok("sessions.spawn", {"orchestrator_id": "orch-1", "session_type": "chat"})
        sid = sess["session_id"]
        assert sess["status"] == "idle", sess
        watcher.ok("subscribe", {"topics": [f"session.{sid}.*"]})
        run = c.ok("sessions.execute", {"session_id": sid, "task": "first task"})
        assert run["status"] == "executing" and run["task_id"], run
        seen = []
        while True:
            ev = watcher.next_event()
            seen.append(ev["data"]["type"])
            if ev["data"]["type"] in ("task_completed", "task_failed"):
                break
        assert seen[-1] == "task_completed", seen
        for t in ("task_executing", "stream_start", "stream_chunk", "stream_end"):
            assert t in seen, seen
        rep = c.request("sessions.execute", {"session_id": "sess_missing", "task": "x"})
        assert rep["error"]["code"] == "SESSION_NOT_FOUND", rep
        c.ok("sessions.execute", {"session_id": sid, "task": "second task"})
        while watcher.next_event()["data"]["type"] != "task_completed":
            pass
        status = c.ok("sessions.status", {"session_id": sid})
        assert status["messages"] == 4 and status["tasks_total"] == 2, status
        assert [m["role"] for m in status["history"]] == ["user", "assistant", "user", "assistant"], status
        d.restart()
        c = d.client()
        listed = c.ok("sessions.list")["sessions"]
        assert [s["session_id"] for s in listed] == [sid], listed
        stopped = c.ok("sessions.stop", {"session_id": sid})
        assert stopped["status"] == "stopped", stopped
        rep = c.request("sessions.execute", {"session_id": sid, "task": "x"})
        assert rep["error"]["code"] == "SESSION_STOPPED", rep
    finally:
        d.cleanup()


def until(fetch, ok, timeout=5):
    """fetch() again until ok(value); returns the value."""
    deadline = time.time() + timeout * SCALE
    while True:
        value = fetch()
        if ok(value) or time.time() > deadline:
            assert ok(value), value
            return value
        time.sleep(0.05)


def test_router_policy_switches_live():
    fake = FakeOpenAI()
    groups = {"providers/dear": openai_backend(fake.url, "ok-d", "dear-model", quality=0.99, cost=0.001)}
    d = Daemon(settings={"providers": gv(["dear"])}, groups=groups)
    try:
        c = d.client()
        first = c.ok("route", {"token_count": 100})
        assert first["policy"] == "multifactor", first
        d.settings["router-policy"] = gv("cheapest")
        d.write_config()  # the keyfile backend notices the edit
        deadline = time.time() + 5 * SCALE
        while time.time() < deadline:
            r = c.ok("route", {"token_count": 100})
            if r["policy"] == "cheapest":
                break
            time.sleep(0.05)
        # the offline provider is no candidate while a real LLM is configured,
        # however cheap it is
        assert r["policy"] == "cheapest" and r["provider"] == "dear" and r["ranking"] == ["dear"], r
        for policy in ("fastest", "roundrobin"):
            d.settings["router-policy"] = gv(policy)
            d.write_config()
            r = until(lambda: c.ok("route", {"token_count": 100}), lambda r: r["policy"] == policy)
            assert r["ranking"] == ["dear"], r
        # asked for by name, it still answers
        r = c.ok("route", {"token_count": 100, "model": "local"})
        assert r["provider"] == "local", r

        # an unknown policy is refused and reported; the one in force stays
        d.settings["router-policy"] = gv("cheapestt")
        d.write_config()
        until(d.read_log, lambda log: "setting router-policy: 'cheapestt' refused (no router plugin loaded is "
                                      "called \"cheapestt\"; the policies are: " in log)
        r = c.ok("route", {"token_count": 100})
        assert r["policy"] == "roundrobin", r
        assert c.ok("health")["completions"]["router_policy"] == "roundrobin"
        res = c.ok("complete", {"prompt": "still routed"})
        assert res["provider"] == "dear", res
    finally:
        d.cleanup()
        fake.close()


run_tests(globals())
