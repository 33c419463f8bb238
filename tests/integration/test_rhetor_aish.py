"""Rhetor / aish conformance through the real daemon, written from aish's
client behaviour (ckoons/aish: src/registry/socket_registry.py, src/parser/
pipeline.py, the aish entry script and its tests/), reproduced here, never
run: the same JSON bodies, a fresh connection per call with a 30 s timeout,
and exactly the fields aish reads.  The daemon runs only the offline
provider, which answers every message."""

import json
import os
import re
import socket
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.request

from enslib import Daemon, SCALE, gv, run_tests
from test_http_connections import ws_handshake, ws_read_text, ws_send_text

AISH_NAMES = ["apollo", "athena", "rhetor", "sophia", "hermes", "prometheus", "telos", "ergon", "engram", "numa",
              "noesis"]  # the aish script's known AIs (team-chat aside)
ROSTER_IDS = {f"{n}-ai" for n in AISH_NAMES}


def start(settings=None, groups=None):
    s = {"http-port": gv(0)}
    s.update(settings or {})
    d = Daemon(settings=s, groups=groups or {})
    deadline = time.time() + 10 * SCALE
    while time.time() < deadline:
        m = re.search(r"transport-http: listening on http://127\.0\.0\.1:(\d+)", d.read_log())
        if m:
            d.http_port = int(m.group(1))
            d.base = f"http://localhost:{d.http_port}"  # aish: http://localhost:${TEKTON_RHETOR_PORT}
            return d
        time.sleep(0.02)
    d.cleanup()
    raise AssertionError("transport-http did not start:\n" + d.read_log())


def http(d, method, path, body=None, raw=None, timeout=30):
    """requests.get/post(..., json=body, timeout=30) as aish makes them: (status, parsed JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(d.base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout * SCALE) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def ok(d, method, path, body=None):
    st, b = http(d, method, path, body)
    assert st == 200, (method, path, st, b)
    return b


def invalid(d, path, body, field, raw=None):
    st, b = http(d, "POST", path, body, raw=raw)
    assert st == 422, (path, body, st, b)
    assert [f["field"] for f in b["error"]["details"]["fields"]] == [field], b


# ---- aish's registry, as socket_registry.py does it (no Tekton installed)

def aish_write_via_team_chat(d, name, message):
    """_write_via_team_chat: the text aish takes for @name, or None where aish's write returns False."""
    try:
        st, result = http(d, "POST", "/api/team-chat",
                          {"message": f"[To {name}] {message}", "moderation_mode": "pass_through", "timeout": 10.0})
        if st != 200:
            return None
        responses = result.get("responses", {})
        if not isinstance(responses, dict):
            return None
        specialist_id = f"{name}-ai"  # resolve_ai_name() without Tekton
        if specialist_id in responses:
            return responses[specialist_id].get("content", "")
        if responses:
            return responses[list(responses.keys())[0]].get("content", "")
        return None
    except Exception:  # aish: any exception is a failed write
        return None


def aish_pipeline(d, command):
    """pipeline.py: split on '|', echo "x" gives x, each AI stage writes then reads (the text after the
    [team-chat-from-<name>] header); the result is the last stage's text, or 'Failed to write to <name>'."""
    current = None
    for seg in (s.strip() for s in command.split("|")):
        if seg.startswith("echo "):
            current = seg[5:].strip().strip('"').strip("'")
        elif re.match(r"^[a-zA-Z_]\w*$", seg):
            answer = aish_write_via_team_chat(d, seg, current)
            if answer is None:
                return f"Failed to write to {seg}"
            queued = f"[team-chat-from-{seg}] {answer}"  # read(): the socket's queued message
            current = queued.split("] ", 1)[1]
    return current


# ------------------------------------------------------------------ tests

def test_fresh_roster():
    """A fresh daemon has aish's eleven specialists, each as aish and Rhetor's tests read them."""
    d = start()
    try:
        data = ok(d, "GET", "/api/ai/specialists")
        assert data["count"] == 11 and len(data["specialists"]) == 11, data
        ids = [s["id"] for s in data["specialists"]]
        assert set(ids) == ROSTER_IDS and ids[0] == "apollo-ai", ids  # the setting's order
        for spec in data["specialists"]:
            # test_integration.py indexes these directly; older aish reads name/component_id/status/capabilities
            assert spec["active"] is True and spec["status"] == "active", spec
            assert spec["component_id"] + "-ai" == spec["id"], spec
            assert isinstance(spec["name"], str) and spec["name"], spec
            assert isinstance(spec["capabilities"], list) and spec["capabilities"], spec
            assert spec["type"] == spec["capabilities"][0] and spec["roles"] == spec["capabilities"], spec
            assert "connection" not in spec, spec  # would send some aish versions to raw TCP
        byid = {s["id"]: s for s in data["specialists"]}
        assert byid["apollo-ai"]["capabilities"] == ["code-analysis", "code-generation"], byid["apollo-ai"]
        assert byid["rhetor-ai"]["name"] == "Rhetor" and byid["rhetor-ai"]["type"] == "orchestration", byid
        # each is a session of its own, with a system prompt naming it
        rec = ok(d, "GET", "/api/sessions/athena-ai")
        assert rec["orchestrator_id"] == "rhetor" and rec["history"][0]["role"] == "system", rec
        assert "Athena" in rec["history"][0]["content"], rec
        # asked again: the same eleven (made once)
        again = ok(d, "GET", "/api/ai/specialists?active_only=true")
        assert [s["id"] for s in again["specialists"]] == ids, again
        # a created socket comes after the roster; a stopped specialist is inactive
        sock = ok(d, "POST", "/api/ai/socket/create", {"ai_name": "scribe"})["socket_id"]
        ok(d, "DELETE", "/api/sessions/numa-ai")
        data = ok(d, "GET", "/api/ai/specialists")
        assert data["count"] == 12 and data["specialists"][-1]["id"] == sock, data
        numa = {s["id"]: s for s in data["specialists"]}["numa-ai"]
        assert numa["active"] is False and numa["status"] == "inactive", numa
        active = ok(d, "GET", "/api/ai/specialists?active_only=true")
        assert "numa-ai" not in [s["id"] for s in active["specialists"]] and active["count"] == 11, active
    finally:
        d.cleanup()


def test_roster_setting():
    """rhetor-specialists names the roster: other names, Tekton's others, none."""
    d = start(settings={"rhetor-specialists": gv(["athena", "penia", "scout", "Bad Name"])})
    try:
        data = ok(d, "GET", "/api/ai/specialists")
        assert [s["id"] for s in data["specialists"]] == ["athena-ai", "penia-ai", "scout-ai"], data
        scout = data["specialists"][2]
        assert scout["name"] == "Scout" and scout["capabilities"] == ["general"], scout
        assert http(d, "POST", "/api/ai/specialists/apollo-ai/message", {"message": "hi"})[0] == 404
        r = ok(d, "POST", "/api/ai/specialists/budget-assistant/message", {"message": "What does it cost?"})
        assert r["specialist_id"] == "penia-ai", r
    finally:
        d.cleanup()
    d = start(settings={"rhetor-specialists": gv([])})
    try:
        assert ok(d, "GET", "/api/ai/specialists") == {"count": 0, "specialists": []}
        b = ok(d, "POST", "/api/team-chat", {"message": "anyone?"})
        assert b["responses"] == {} and b["timed_out"] == [], b
    finally:
        d.cleanup()


def test_message_by_every_name():
    """POST /api/ai/specialists/{id}/message: a roster id, its component, Rhetor's legacy id, a socket id."""
    d = start()
    try:
        body = {"message": "What is your purpose?", "temperature": 0.7}
        for name in ("rhetor-orchestrator", "rhetor-ai", "rhetor", "Rhetor-AI"):
            st, result = http(d, "POST", f"/api/ai/specialists/{name}/message", body)
            assert st == 200, (name, st, result)
            text = result.get("response", result.get("content", ""))  # what aish reads
            assert isinstance(text, str) and "What is your purpose?" in text, result
            assert result["success"] is True and result["specialist_id"] == "rhetor-ai", result
            assert result["socket_id"] == "rhetor-ai" and result["task_id"], result
        assert ok(d, "GET", "/api/sessions/rhetor-ai")["tasks_total"] == 4
        sock = ok(d, "POST", "/api/ai/socket/create", {"name": "apollo"})["socket_id"]
        r = ok(d, "POST", f"/api/ai/specialists/{sock}/message", body)
        assert r["specialist_id"] == sock and r["success"] is True, r
        st, b = http(d, "POST", "/api/ai/specialists/nobody/message", body)
        assert st == 404 and b["detail"] == "Specialist nobody not found", (st, b)
        assert b["error"]["code"] == "SESSION_NOT_FOUND", b
        st, b = http(d, "POST", "/api/ai/specialists/sess_nope/message", body)
        assert st == 404 and b["detail"] == "Specialist sess_nope not found", (st, b)
    finally:
        d.cleanup()


def test_aish_http_tests():
    """aish's tests/test_http_communication.py and tests/test_integration.py, their requests and reads."""
    d = start()
    try:
        st, _ = http(d, "GET", "/health")
        assert st == 200
        data = ok(d, "GET", "/api/ai/specialists")
        assert data["count"] > 0 and all(spec["active"] for spec in data["specialists"]), data
        assert {spec["status"] for spec in data["specialists"]} == {"active"}, data
        result = ok(d, "POST", "/api/team-chat",
                    {"message": "Hello from HTTP test", "moderation_mode": "pass_through", "timeout": 5.0})
        responses = result["responses"]
        assert isinstance(responses, dict) and set(responses) == ROSTER_IDS, result
        for sid, resp in responses.items():
            assert "Hello from HTTP test" in resp["content"], (sid, resp)
        st, result = http(d, "POST", "/api/ai/specialists/rhetor-orchestrator/message",
                          {"message": "What is your purpose?", "temperature": 0.7})
        assert st == 200 and ("response" in result or "content" in result), (st, result)
        # registry create("rhetor") then write: the team-chat fallback must return text
        assert aish_write_via_team_chat(d, "rhetor", "test message from registry"), "write returned False"
        # aish -c 'echo "What is 2+2?" | rhetor': stdout longer than 10 characters
        out = aish_pipeline(d, 'echo "What is 2+2?" | rhetor')
        assert len(out) > 10 and not out.startswith("Failed to write"), out
    finally:
        d.cleanup()


def test_aish_fallback_write():
    """What aish sends for a write to a named AI: only that specialist answers, without the prefix."""
    d = start()
    try:
        b = ok(d, "POST", "/api/team-chat",
               {"message": "[To apollo] What is AI?", "moderation_mode": "pass_through", "timeout": 10.0})
        assert isinstance(b["responses"], dict) and list(b["responses"]) == ["apollo-ai"], b
        r = b["responses"]["apollo-ai"]
        assert isinstance(r["content"], str) and 'You asked: "What is AI?"' in r["content"], r
        assert r["specialist_id"] == "apollo-ai" and r["name"] == "Apollo", r
        assert b["moderation_mode"] == "pass_through" and b["request_id"].startswith("team-chat-"), b
        assert b["synthesis"] is None and b["consensus"] is None and b["elapsed_time"] >= 0 and b["timestamp"], b
        hist = ok(d, "GET", "/api/sessions/apollo-ai")["history"]
        assert {"role": "user", "content": "What is AI?"} in hist, hist
        assert ok(d, "GET", "/api/sessions/athena-ai")["tasks_total"] == 0
        # a legacy id in the prefix, and a name that is nobody's: then everyone answers
        b = ok(d, "POST", "/api/team-chat", {"message": "[To hermes-messenger] ping", "timeout": 10.0})
        assert list(b["responses"]) == ["hermes-ai"], b
        b = ok(d, "POST", "/api/team-chat", {"message": "[To nobody] hello all", "timeout": 10.0})
        assert set(b["responses"]) == ROSTER_IDS, b
    finally:
        d.cleanup()


def test_aish_pipelines():
    """echo ... | apollo | athena through the HTTP API, as aish's pipeline runs it; `echo ... | aish apollo
    athena` sends stdin to apollo only (aish ignores the other words when stdin is piped)."""
    d = start()
    try:
        out = aish_pipeline(d, 'echo "What is clean code?" | apollo | athena')
        assert not out.startswith("Failed to write"), out
        apollo = ok(d, "GET", "/api/sessions/apollo-ai")
        athena = ok(d, "GET", "/api/sessions/athena-ai")
        assert apollo["tasks_total"] == 1 and athena["tasks_total"] == 1, (apollo, athena)
        first = apollo["last_result"]["response"]
        assert 'You asked: "What is clean code?"' in first, first
        assert first[:80] in out and out == athena["last_result"]["response"], (first, out)
        # aish apollo athena, stdin piped: echo "<stdin>" | apollo
        out = aish_pipeline(d, 'echo "Summarise the plan" | apollo')
        assert 'You asked: "Summarise the plan"' in out, out
        assert ok(d, "GET", "/api/sessions/athena-ai")["tasks_total"] == 1
    finally:
        d.cleanup()


def test_aish_older_path():
    """Older aish: discovery through GET /api/ai/specialists (by id and component_id), then
    POST /api/ai/specialists/<id>/message {message, temperature}."""
    d = start()
    try:
        cache = {}
        for spec in ok(d, "GET", "/api/ai/specialists")["specialists"]:
            info = {"name": spec["name"], "component_id": spec["component_id"], "status": spec["status"],
                    "capabilities": spec["capabilities"], "id": spec["id"]}
            cache[spec["id"]] = info
            cache[spec["component_id"]] = info
        target = cache["apollo"]["id"]
        st, result = http(d, "POST", f"/api/ai/specialists/{target}/message",
                          {"message": "Review this function", "temperature": 0.7})
        assert st == 200, (st, result)
        assert "Review this function" in result.get("response", result.get("content", "")), result
    finally:
        d.cleanup()


def slow_daemon(delay):
    """A slow backend (slow-model) and a quick one that routing prefers (the
    offline provider is no candidate while real ones are configured)."""
    tmp = tempfile.mkdtemp(prefix="ens-slow-")
    script = os.path.join(tmp, "slow.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nread -r line\nsleep {delay}\necho late\n")
    os.chmod(script, stat.S_IRWXU)
    quick = os.path.join(tmp, "quick.sh")
    with open(quick, "w") as f:
        f.write("#!/bin/sh\nread -r line\necho quick\n")
    os.chmod(quick, stat.S_IRWXU)
    return start(settings={"providers": gv(["slow", "quick"])},
                 groups={"providers/slow": {"plugin": gv("provider-command"), "command": gv([script]),
                                            "models": gv(["slow-model"]), "quality": gv(0.1)},
                         "providers/quick": {"plugin": gv("provider-command"), "command": gv([quick]),
                                             "models": gv(["quick-model"]), "quality": gv(0.9)}})


def test_team_chat_targets_and_timeout():
    d = slow_daemon(3)
    try:
        b = ok(d, "POST", "/api/team-chat", {"message": "Who leads?", "target_sockets": ["athena", "rhetor-orchestrator"]})
        assert set(b["responses"]) == {"athena-ai", "rhetor-ai"} and b["count"] == 2, b
        b = ok(d, "POST", "/api/team-chat", {"message": "x", "target_sockets": ["apollo-ai", "ghost", "apollo"]})
        assert list(b["responses"]) == ["apollo-ai"] and b["errors"]["ghost"]["code"] == "SESSION_NOT_FOUND", b
        slow = ok(d, "POST", "/api/ai/socket/create", {"name": "slow", "model": "slow-model"})["socket_id"]
        t0 = time.time()
        b = ok(d, "POST", "/api/team-chat", {"message": "quick!", "target_sockets": ["apollo", slow], "timeout": 0.3})
        took = time.time() - t0
        assert list(b["responses"]) == ["apollo-ai"] and b["timed_out"] == [slow], b
        assert 0.25 < took < 2.5 * SCALE, took
    finally:
        d.cleanup()


def test_busy_specialist_queues():
    """Two callers at once to one specialist: both answered, in order, never 409."""
    d = slow_daemon(0.3)
    try:
        sock = ok(d, "POST", "/api/ai/socket/create", {"name": "slow", "model": "slow-model"})["socket_id"]
        results = [None, None]

        def send(i):
            results[i] = http(d, "POST", f"/api/ai/specialists/{sock}/message", {"message": f"turn {i}"})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r[0] for r in results] == [200, 200], results
        assert {r[1]["response"].strip() for r in results} == {"late"}, results
        assert results[0][1]["task_id"] != results[1][1]["task_id"], results
        # the roster specialists too
        for _ in range(2):
            threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, http(
                d, "POST", "/api/ai/specialists/apollo/message", {"message": f"m{i}"}))) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert [r[0] for r in results] == [200, 200], results
    finally:
        d.cleanup()


def test_socket_create_aliases():
    """aish's design: POST /api/ai/socket/create {ai_name, prompt, context} then WS /ws/socket/{id}."""
    d = start()
    try:
        a = ok(d, "POST", "/api/ai/socket/create", {"ai_name": "apollo", "prompt": "You are Apollo, precise.",
                                                    "context": {}})
        sid = a["socket_id"]
        assert a["websocket_url"] == f"ws://localhost:{d.http_port}/ws/socket/{sid}" or \
            a["websocket_url"].endswith(f"/ws/socket/{sid}"), a
        assert a["name"] == "apollo", a
        rec = ok(d, "GET", f"/api/sessions/{sid}")
        assert rec["history"][0] == {"role": "system", "content": "You are Apollo, precise."}, rec
        s, buf = ws_handshake(d.http_port, f"/ws/socket/{sid}")
        try:
            ws_send_text(s, json.dumps({"type": "write", "content": "Hello Apollo"}))
            while True:
                text, buf = ws_read_text(s, buf)
                msg = json.loads(text)
                if msg.get("type") == "read":
                    break
            assert msg["headers"][0] == f"team-chat-from-{sid}", msg
            assert "Hello Apollo" in msg["content"], msg
        finally:
            s.close()
        invalid(d, "/api/ai/socket/create", {"ai_name": 3}, "ai_name")
        invalid(d, "/api/ai/socket/create", {"prompt": ""}, "prompt")
        invalid(d, "/api/ai/socket/create", {"context": "x"}, "context")
    finally:
        d.cleanup()


def test_bad_input():
    d = start()
    try:
        for body, field in (({}, "message"), ({"message": ""}, "message"), ({"message": 1}, "message")):
            invalid(d, "/api/ai/specialists/apollo/message", body, field)
            invalid(d, "/api/team-chat", body, field)
        invalid(d, "/api/team-chat", {"message": "x", "timeout": "soon"}, "timeout")
        invalid(d, "/api/team-chat", {"message": "x", "timeout": 0}, "timeout")
        invalid(d, "/api/team-chat", {"message": "x", "target_sockets": "x"}, "target_sockets")
        invalid(d, "/api/team-chat", {"message": "x", "target_sockets": [""]}, "target_sockets")
        st, b = http(d, "POST", "/api/team-chat", raw=b"{not json")
        assert st == 400 and b["error"]["code"] == "INVALID_JSON", (st, b)
        st, b = http(d, "POST", "/api/ai/specialists/apollo/message", raw=b"[1")
        assert st == 400, (st, b)
        # nothing else disturbed
        assert ok(d, "GET", "/api/ai/specialists")["count"] == 11
        r = ok(d, "POST", "/api/ai/specialists/apollo/message", {"message": "still there?"})
        assert r["success"] is True, r
    finally:
        d.cleanup()


def test_localhost_base_url():
    """aish builds http://localhost:<TEKTON_RHETOR_PORT>; localhost must reach the daemon."""
    d = start()
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo("localhost", d.http_port, type=socket.SOCK_STREAM)}
        assert "127.0.0.1" in addrs, addrs
        assert http(d, "GET", "/health")[0] == 200
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
