"""The seed systems' HTTP dialects through the real daemon, as their clients
send them (curl-like requests, standard library only): the KSI HTTP plan
(/api/v1/*), Neolith REST and its Server-Sent Events (/api/daemon*), and
Rhetor/aish AI sockets and team chat (/api/ai/*, /api/team-chat)."""

import http.client
import json
import os
import re
import stat
import tempfile
import time

from enslib import Daemon, SCALE, gv, run_tests


def start(**kw):
    settings = {"http-port": gv(0)}
    settings.update(kw.pop("settings", {}))
    d = Daemon(settings=settings, **kw)
    deadline = time.time() + 10 * SCALE
    while time.time() < deadline:
        m = re.search(r"transport-http: listening on http://127\.0\.0\.1:(\d+)", d.read_log())
        if m:
            d.http_port = int(m.group(1))
            return d
        time.sleep(0.02)
    d.cleanup()
    raise AssertionError("transport-http did not start:\n" + d.read_log())


def call(d, method, path, body=None, raw=None, timeout=15):
    """One request; returns (status, parsed JSON body or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout * SCALE)
    try:
        headers = {}
        data = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
            data = data.encode() if isinstance(data, str) else data
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text
    finally:
        conn.close()


def ok(d, method, path, body=None, status=200):
    st, b = call(d, method, path, body)
    assert st == status, (method, path, st, b)
    return b


def invalid(d, method, path, body, field, raw=None):
    """Asserts 422 naming @field."""
    st, b = call(d, method, path, body, raw=raw)
    assert st == 422, (method, path, body, st, b)
    err = b["error"]
    assert err["code"] == "VALIDATION_ERROR", b
    assert [f["field"] for f in err["details"]["fields"]] == [field], b
    assert err["details"]["fields"][0]["expected"], b


def error(d, method, path, body, status, code=None):
    st, b = call(d, method, path, body)
    assert st == status, (method, path, body, st, b)
    assert isinstance(b, dict) and set(b["error"]) >= {"code", "message", "details"}, b
    if code:
        assert b["error"]["code"] == code, b
    return b


class SSE:
    """A Server-Sent Events stream read line by line."""

    def __init__(self, d, path, timeout=15):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout * SCALE)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, (self.resp.status, self.resp.read())
        assert self.resp.getheader("Content-Type").startswith("text/event-stream"), self.resp.getheaders()

    def next(self):
        event, data = None, []
        while True:
            line = self.resp.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data:
                    return event, json.loads("\n".join(data))
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])

    def close(self):
        self.conn.close()


def wait_session(d, sid, status="idle", timeout=10):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        b = ok(d, "GET", f"/api/sessions/{sid}")
        if b["status"] == status:
            return b
        time.sleep(0.02)
    raise AssertionError(f"session {sid} never became {status}: {b}")


# ------------------------------------------------------------------ KSI HTTP plan

def test_ksi_spawn():
    d = start()
    try:
        watcher = d.client()
        watcher.ok("subscribe", {"topics": ["session.*", "results:*"]})
        b = ok(d, "POST", "/api/v1/spawn", {"task": "write a haiku", "session_type": "chat", "agent_id": "ksi-agent"},
               status=202)
        assert b["status"] == "accepted", b
        sid = b["session_id"]
        assert sid.startswith("sess_") and b["task_id"] and b["request_id"].startswith("req_"), b
        assert b["result_topic"] == f"results:{sid}", b
        # the task runs after the HTTP request ended: its result reaches watchers,
        # as session events and on results:<session>
        completed = published = False
        while not (completed and published):
            ev = watcher.next_event()
            if ev["event"] == f"session.{sid}.task_completed":
                assert "write a haiku" in ev["data"]["result"]["response"], ev
                assert ev["data"]["taskId"] == b["task_id"], ev
                completed = True
            elif ev["event"] == f"results:{sid}":
                assert ev["data"]["status"] == "completed" and ev["data"]["task_id"] == b["task_id"], ev
                assert "write a haiku" in ev["data"]["result"]["response"], ev
                published = True
        rec = wait_session(d, sid)
        assert rec["orchestrator_id"] == "ksi-agent" and rec["session_type"] == "chat", rec
        # an explicit provider/model reaches the session
        b = ok(d, "POST", "/api/v1/spawn", {"task": "x", "provider": "local", "model": "local"}, status=202)
        rec = ok(d, "GET", f"/api/sessions/{b['session_id']}")
        assert rec["provider"] == "local" and rec["model"] == "local", rec
        # validation: missing, empty and wrong-typed fields
        invalid(d, "POST", "/api/v1/spawn", {}, "task")
        invalid(d, "POST", "/api/v1/spawn", {"task": ""}, "task")
        invalid(d, "POST", "/api/v1/spawn", {"task": 5}, "task")
        invalid(d, "POST", "/api/v1/spawn", {"task": "x", "model": 3}, "model")
        invalid(d, "POST", "/api/v1/spawn", {"task": "x", "agent_id": ["a"]}, "agent_id")
        invalid(d, "POST", "/api/v1/spawn", {"task": "x", "session_type": True}, "session_type")
        invalid(d, "POST", "/api/v1/spawn", None, "body", raw="[1, 2]")
        st, b = call(d, "POST", "/api/v1/spawn", raw="{not json")
        assert st == 400 and b["error"]["code"] == "INVALID_JSON", (st, b)
        # an unknown backend is the core's refusal
        st, b = call(d, "POST", "/api/v1/spawn", {"task": "x", "provider": "no-such-backend"})
        assert st == 404 and b["error"]["code"] == "UNKNOWN_MODEL", (st, b)
        error(d, "GET", "/api/v1/spawn", None, 405, "METHOD_NOT_ALLOWED")
        watcher.close()
    finally:
        d.cleanup()


def test_ksi_agents_and_status():
    d = start()
    try:
        b = ok(d, "POST", "/api/v1/agents/register",
               {"agent_id": "researcher", "role": "research", "capabilities": ["search", "summarize"]}, status=201)
        assert b["status"] == "registered" and b["agent_id"] == "researcher", b
        assert b["role"] == "research" and b["capabilities"] == ["search", "summarize"], b
        assert b["agent"]["persistent"] is True, b
        # registering again updates the record
        b = ok(d, "POST", "/api/v1/agents/register", {"agent_id": "researcher", "role": "lead"}, status=201)
        assert b["role"] == "lead" and b["capabilities"] == [], b
        ok(d, "POST", "/api/v1/agents/register", {"agent_id": "writer"}, status=201)
        b = ok(d, "GET", "/api/v1/agents")
        names = [a["name"] for a in b["agents"]]
        assert "researcher" in names and "writer" in names and b["count"] == len(b["agents"]), b
        # the native view agrees
        assert "writer" in [a["name"] for a in d.client().ok("agents.list")["agents"]]
        invalid(d, "POST", "/api/v1/agents/register", {}, "agent_id")
        invalid(d, "POST", "/api/v1/agents/register", {"agent_id": 7}, "agent_id")
        invalid(d, "POST", "/api/v1/agents/register", {"agent_id": "bad name!"}, "agent_id")  # the core's rule
        invalid(d, "POST", "/api/v1/agents/register", {"agent_id": "a", "role": 1}, "role")
        invalid(d, "POST", "/api/v1/agents/register", {"agent_id": "a", "capabilities": "search"}, "capabilities")
        invalid(d, "POST", "/api/v1/agents/register", {"agent_id": "a", "capabilities": [1]}, "capabilities")
        # an agent served by a live connection is not taken over
        c = d.client()
        c.ok("agents.register", {"name": "live"})
        error(d, "POST", "/api/v1/agents/register", {"agent_id": "live"}, 409, "AGENT_EXISTS")

        ok(d, "POST", "/api/v1/spawn", {"task": "hello"}, status=202)
        b = ok(d, "GET", "/api/v1/status")
        assert b["status"] == "healthy" and isinstance(b["uptime"], (int, float)) and b["version"], b
        assert b["agents"] >= 3 and b["sessions"] == 1 and "active_sessions" in b, b
        error(d, "POST", "/api/v1/status", {}, 405, "METHOD_NOT_ALLOWED")
        error(d, "DELETE", "/api/v1/agents", None, 405)
        error(d, "GET", "/api/v1/nothing", None, 404, "NOT_FOUND")
        c.close()
    finally:
        d.cleanup()


# ------------------------------------------------------------------ Neolith

def test_neolith_daemon_register_heartbeat():
    d = start()
    try:
        b = ok(d, "GET", "/api/daemon")
        assert b["status"] == "running" and b["health"] == "healthy", b
        for k in ("uptime", "activeSessions", "totalSessions", "queuedTasks", "runningTasks", "version", "timestamp"):
            assert k in b, (k, b)
        assert b["activeSessions"] == 0 and b["queuedTasks"] == 0, b

        b = ok(d, "POST", "/api/daemon", {"orchestrator_id": "orch-1", "capabilities": ["code"]}, status=201)
        assert b["success"] is True and b["orchestratorId"] == "orch-1" and b["capabilities"] == ["code"], b
        ok(d, "POST", "/api/daemon", {"id": "orch-2"}, status=201)
        ok(d, "POST", "/api/daemon", {"orchestratorId": "orch-3"}, status=201)
        agents = {a["name"]: a for a in d.client().ok("agents.list")["agents"]}
        assert agents["orch-1"]["persistent"] and agents["orch-1"]["actions"] == ["code"], agents
        assert "orch-2" in agents and "orch-3" in agents, agents
        invalid(d, "POST", "/api/daemon", {}, "orchestrator_id")
        invalid(d, "POST", "/api/daemon", {"orchestrator_id": 1}, "orchestrator_id")
        invalid(d, "POST", "/api/daemon", {"id": "x", "capabilities": {"a": 1}}, "capabilities")

        b = ok(d, "DELETE", "/api/daemon", {"orchestrator_id": "orch-1"})
        assert b["success"] is True and b["orchestratorId"] == "orch-1" and b["unregistered"] is True, b
        ok(d, "DELETE", "/api/daemon?orchestratorId=orch-2")
        ok(d, "DELETE", "/api/daemon", {"id": "orch-3"})
        error(d, "DELETE", "/api/daemon", {"orchestrator_id": "orch-1"}, 404, "AGENT_NOT_FOUND")
        invalid(d, "DELETE", "/api/daemon", {}, "orchestrator_id")
        assert not {"orch-1", "orch-2", "orch-3"} & {a["name"] for a in d.client().ok("agents.list")["agents"]}

        for method in ("GET", "POST"):
            b = ok(d, method, "/api/daemon/heartbeat")
            assert b["status"] == "ok" and b["timestamp"].endswith("Z"), b
        ok(d, "POST", "/api/daemon/heartbeat", {"orchestratorId": "x"})
        error(d, "PUT", "/api/daemon", {}, 405, "METHOD_NOT_ALLOWED")
        error(d, "DELETE", "/api/daemon/heartbeat", None, 405)
    finally:
        d.cleanup()


def test_neolith_sessions():
    d = start()
    try:
        b = ok(d, "POST", "/api/daemon/sessions", {"orchestratorId": "orch", "sessionType": "coding", "model": "local"},
               status=201)
        sid = b["sessionId"]
        assert b["status"] == "idle" and b["orchestratorId"] == "orch" and b["sessionType"] == "coding", b
        b = ok(d, "POST", "/api/daemon/sessions", {"task": "first task"}, status=201)
        sid2 = b["sessionId"]
        assert b["status"] == "executing" and b["taskId"] and b["requestId"], b
        b = ok(d, "GET", "/api/daemon/sessions")
        assert b["total"] == 2 and {s["sessionId"] for s in b["sessions"]} == {sid, sid2}, b
        s = [s for s in b["sessions"] if s["sessionId"] == sid][0]
        assert s["model"] == "local" and s["createdAt"] and s["tasksTotal"] == 0, s
        b = ok(d, "GET", "/api/daemon/sessions?orchestratorId=orch")
        assert [s["sessionId"] for s in b["sessions"]] == [sid], b

        b = ok(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "task": "do the thing"})
        assert b["sessionId"] == sid and b["status"] == "executing" and b["taskId"], b
        rec = wait_session(d, sid)
        assert rec["tasks_total"] == 1 and "do the thing" in rec["last_result"]["response"], rec
        wait_session(d, sid2)

        b = ok(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "status": "stopped"})
        assert b["sessionId"] == sid and b["status"] == "stopped", b
        error(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "task": "again"}, 409, "SESSION_STOPPED")
        b = ok(d, "DELETE", f"/api/daemon/sessions?sessionId={sid2}")
        assert b["success"] is True and b["status"] == "stopped", b
        ok(d, "DELETE", "/api/daemon/sessions", {"sessionId": sid2})

        error(d, "PATCH", "/api/daemon/sessions", {"sessionId": "sess_nope", "task": "x"}, 404, "SESSION_NOT_FOUND")
        error(d, "PATCH", "/api/daemon/sessions", {"sessionId": "sess_nope", "status": "stopped"}, 404)
        error(d, "DELETE", "/api/daemon/sessions?sessionId=sess_nope", None, 404, "SESSION_NOT_FOUND")
        invalid(d, "PATCH", "/api/daemon/sessions", {"task": "x"}, "sessionId")
        invalid(d, "PATCH", "/api/daemon/sessions", {"sessionId": 4, "task": "x"}, "sessionId")
        invalid(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid}, "task")
        invalid(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "task": 1}, "task")
        invalid(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "status": "paused"}, "status")
        invalid(d, "DELETE", "/api/daemon/sessions", {}, "sessionId")
        invalid(d, "POST", "/api/daemon/sessions", {"orchestratorId": 1}, "orchestratorId")
        invalid(d, "POST", "/api/daemon/sessions", {"sessionType": []}, "sessionType")
        invalid(d, "POST", "/api/daemon/sessions", {"task": {}}, "task")
        invalid(d, "POST", "/api/daemon/sessions", {"model": 1.5}, "model")
        error(d, "PUT", "/api/daemon/sessions", {}, 405, "METHOD_NOT_ALLOWED")
        st, b = call(d, "PATCH", "/api/daemon/sessions", raw="{oops")
        assert st == 400 and b["error"]["code"] == "INVALID_JSON", (st, b)
    finally:
        d.cleanup()


def test_neolith_events_stream():
    d = start()
    try:
        baseline = ok(d, "GET", "/health")["connections"]
        sse = SSE(d, "/api/daemon/events")
        ev, data = sse.next()
        assert ev == "daemon_status_update" and data["type"] == ev, (ev, data)
        assert data["data"]["status"] == "running" and "activeSessions" in data["data"], data
        b = ok(d, "POST", "/api/daemon/sessions", {"orchestratorId": "orch"}, status=201)
        sid = b["sessionId"]
        ok(d, "PATCH", "/api/daemon/sessions", {"sessionId": sid, "task": "stream please"})
        seen, chunks = [], []
        while True:
            ev, data = sse.next()
            assert data["type"] == ev and data["data"]["sessionId"] == sid, (ev, data)
            seen.append(ev)
            if ev == "stream_chunk":
                chunks.append(data["data"]["chunk"])
                assert "metadata" in data["data"], data
            if ev == "task_completed":
                assert data["data"]["result"]["response"] == "".join(chunks), (data, chunks)
                break
        for t in ("session_spawned", "session_status_update", "task_executing", "stream_start", "stream_chunk",
                  "stream_end", "task_completed"):
            assert t in seen, (t, seen)
        assert seen.index("task_executing") < seen.index("stream_start") < seen.index("stream_end"), seen
        ok(d, "DELETE", f"/api/daemon/sessions?sessionId={sid}")
        while True:
            ev, data = sse.next()
            if ev == "session_status_update" and data["data"]["status"] == "stopped":
                break
        sse.close()
        # the stream's client goes away with it (noticed on the next write)
        ok(d, "POST", "/api/daemon/sessions", {}, status=201)
        deadline = time.time() + 5 * SCALE
        while ok(d, "GET", "/health")["connections"] > baseline and time.time() < deadline:
            time.sleep(0.02)
        assert ok(d, "GET", "/health")["connections"] <= baseline  # (the harness's own probe may close meanwhile)
        error(d, "POST", "/api/daemon/events", {}, 405)
    finally:
        d.cleanup()


# ------------------------------------------------------------------ Rhetor / aish

# These are about the AI sockets clients make: no roster (test_rhetor_aish.py has it).
NO_ROSTER = {"rhetor-specialists": gv([])}


def test_rhetor_sockets_and_messages():
    d = start(settings=NO_ROSTER)
    try:
        b = ok(d, "GET", "/api/ai/specialists")
        assert b == {"count": 0, "specialists": []}, b
        a = ok(d, "POST", "/api/ai/socket/create", {"name": "apollo", "model": "local"})
        sid = a["socket_id"]
        assert sid.startswith("sess_") and a["name"] == "apollo" and a["model"] == "local", a
        assert a["websocket_url"] == f"ws://127.0.0.1:{d.http_port}/ws/socket/{sid}", a
        b2 = ok(d, "POST", "/api/ai/socket/create", {"specialist": "athena", "system": "You are Athena, wise."})
        ok(d, "POST", "/api/ai/socket/create", {})  # a default name
        # a non-Rhetor session is not a specialist
        ok(d, "POST", "/api/daemon/sessions", {"orchestratorId": "orch"}, status=201)
        b = ok(d, "GET", "/api/ai/specialists")
        assert b["count"] == 3, b
        byid = {s["id"]: s for s in b["specialists"]}
        assert byid[sid]["name"] == "apollo" and byid[sid]["active"] is True and byid[sid]["model"] == "local", byid
        assert byid[b2["socket_id"]]["name"] == "athena" and byid[b2["socket_id"]]["model"] == "auto", byid
        assert "assistant" in [s["name"] for s in b["specialists"]], b
        # the system prompt names the specialist
        rec = ok(d, "GET", f"/api/sessions/{sid}")
        assert rec["history"][0] == {"role": "system", "content": "You are apollo, an AI specialist reached through Rhetor."}, rec
        assert rec["orchestrator_id"] == "rhetor", rec
        rec = ok(d, "GET", f"/api/sessions/{b2['socket_id']}")
        assert rec["history"][0]["content"] == "You are Athena, wise.", rec

        r = ok(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": "What is Ensemble?", "temperature": 0.2})
        assert "What is Ensemble?" in r["response"] and r["socket_id"] == sid, r
        assert r["model"] == "local" and r["usage"]["input_tokens"] > 0 and r["task_id"], r
        # the conversation continues in the session
        r2 = ok(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": "And then?"})
        assert r2["response"] != r["response"], (r, r2)
        assert ok(d, "GET", f"/api/sessions/{sid}")["tasks_total"] == 2

        error(d, "POST", "/api/ai/specialists/sess_nope/message", {"message": "hi"}, 404, "SESSION_NOT_FOUND")
        invalid(d, "POST", f"/api/ai/specialists/{sid}/message", {}, "message")
        invalid(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": ""}, "message")
        invalid(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": 1}, "message")
        invalid(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": "x", "temperature": "hot"}, "temperature")
        invalid(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": "x", "temperature": 5}, "temperature")
        invalid(d, "POST", "/api/ai/socket/create", {"name": 1}, "name")
        invalid(d, "POST", "/api/ai/socket/create", {"specialist": ""}, "specialist")
        invalid(d, "POST", "/api/ai/socket/create", {"model": False}, "model")
        invalid(d, "POST", "/api/ai/socket/create", {"system": []}, "system")
        st, b = call(d, "POST", "/api/ai/socket/create", {"provider": "no-such-backend"})
        assert st == 200, (st, b)  # the backend is checked when a message runs
        st, b = call(d, "POST", f"/api/ai/specialists/{b['socket_id']}/message", {"message": "x"})
        assert st == 404 and b["error"]["code"] == "UNKNOWN_MODEL", (st, b)
        error(d, "GET", f"/api/ai/specialists/{sid}/message", None, 405, "METHOD_NOT_ALLOWED")
        error(d, "GET", "/api/ai/socket/create", None, 405)
        error(d, "GET", "/api/ai/nothing", None, 404, "NOT_FOUND")

        # a stopped socket is inactive and refuses messages
        ok(d, "DELETE", f"/api/sessions/{sid}")
        b = ok(d, "GET", "/api/ai/specialists")
        assert {s["id"]: s for s in b["specialists"]}[sid]["active"] is False, b
        error(d, "POST", f"/api/ai/specialists/{sid}/message", {"message": "hi"}, 409, "SESSION_STOPPED")
    finally:
        d.cleanup()


def test_rhetor_team_chat():
    d = start(settings=NO_ROSTER)
    try:
        b = ok(d, "POST", "/api/team-chat", {"message": "anyone?"})
        assert b["responses"] == {} and b["timed_out"] == [] and b["count"] == 0, b
        one = ok(d, "POST", "/api/ai/socket/create", {"name": "apollo"})["socket_id"]
        two = ok(d, "POST", "/api/ai/socket/create", {"name": "athena", "model": "local"})["socket_id"]
        gone = ok(d, "POST", "/api/ai/socket/create", {"name": "hermes"})["socket_id"]
        ok(d, "DELETE", f"/api/sessions/{gone}")
        other = ok(d, "POST", "/api/daemon/sessions", {}, status=201)["sessionId"]
        start_t = time.time()
        b = ok(d, "POST", "/api/team-chat", {"message": "Plan the release", "moderation_mode": "round_robin",
                                              "timeout": 10})
        assert time.time() - start_t < 5 * SCALE, "team chat waited for its timeout"
        assert set(b["responses"]) == {one, two}, b
        assert b["timed_out"] == [] and b["errors"] == {} and b["count"] == 2, b
        assert b["moderation_mode"] == "round_robin" and b["message"] == "Plan the release", b
        for sid, name in ((one, "apollo"), (two, "athena")):
            r = b["responses"][sid]
            assert "Plan the release" in r["content"] and r["name"] == name and r["model"] == "local", r
            assert r["usage"]["output_tokens"] > 0, r
            assert ok(d, "GET", f"/api/sessions/{sid}")["tasks_total"] == 1
        assert ok(d, "GET", f"/api/sessions/{other}")["tasks_total"] == 0
        assert ok(d, "GET", f"/api/sessions/{gone}")["tasks_total"] == 0

        invalid(d, "POST", "/api/team-chat", {}, "message")
        invalid(d, "POST", "/api/team-chat", {"message": 3}, "message")
        invalid(d, "POST", "/api/team-chat", {"message": "x", "timeout": "soon"}, "timeout")
        invalid(d, "POST", "/api/team-chat", {"message": "x", "timeout": 0}, "timeout")
        invalid(d, "POST", "/api/team-chat", {"message": "x", "moderation_mode": 1}, "moderation_mode")
        error(d, "GET", "/api/team-chat", None, 405, "METHOD_NOT_ALLOWED")
    finally:
        d.cleanup()


def test_rhetor_team_chat_timeout():
    """A socket whose backend is slow is reported in timed_out; the others answer.  With no room to wait
    (session-queue-length 0) a busy socket refuses more."""
    tmp = tempfile.mkdtemp(prefix="ens-slow-")
    script = os.path.join(tmp, "slow.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nread -r line\nsleep 5\necho late\n")
    os.chmod(script, stat.S_IRWXU)
    d = start(settings={"providers": gv(["slow"]), "session-queue-length": gv(0), **NO_ROSTER},
              groups={"providers/slow": {"plugin": gv("provider-command"), "command": gv([script]),
                                         "models": gv(["slow-model"]), "quality": gv(0.1)}})
    try:
        fast = ok(d, "POST", "/api/ai/socket/create", {"name": "fast", "model": "local"})["socket_id"]
        slow = ok(d, "POST", "/api/ai/socket/create", {"name": "slow", "model": "slow-model"})["socket_id"]
        start_t = time.time()
        b = ok(d, "POST", "/api/team-chat", {"message": "quick!", "timeout": 0.5})
        took = time.time() - start_t
        assert 0.4 < took < 3 * SCALE, took
        assert list(b["responses"]) == [fast] and b["timed_out"] == [slow], b
        # the slow task still runs in its session: it is busy meanwhile
        error(d, "POST", f"/api/ai/specialists/{slow}/message", {"message": "x"}, 409, "SESSION_BUSY")
        b = ok(d, "POST", "/api/team-chat", {"message": "again", "timeout": 0.3})
        assert list(b["responses"]) == [fast] and b["errors"][slow]["code"] == "SESSION_BUSY", b
        assert b["timed_out"] == [], b
    finally:
        d.cleanup()


def test_rhetor_clients_that_hang_up():
    """A caller that leaves mid-wait costs nothing: the tasks finish in their sessions."""
    tmp = tempfile.mkdtemp(prefix="ens-slow-")
    script = os.path.join(tmp, "slow.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nread -r line\nsleep 0.6\necho late\n")
    os.chmod(script, stat.S_IRWXU)
    d = start(settings={"providers": gv(["slow"]), **NO_ROSTER},
              groups={"providers/slow": {"plugin": gv("provider-command"), "command": gv([script]),
                                         "models": gv(["slow-model"]), "quality": gv(0.1)}})
    try:
        slow = ok(d, "POST", "/api/ai/socket/create", {"name": "slow", "model": "slow-model"})["socket_id"]
        for path, body in ((f"/api/ai/specialists/{slow}/message", {"message": "x"}),
                           ("/api/team-chat", {"message": "y", "timeout": 0.3})):
            conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=5)
            conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            time.sleep(0.1)
            conn.close()  # gone before the answer (and, for team chat, before its timeout)
            rec = wait_session(d, slow)
            assert rec["last_result"]["response"].strip() == "late", rec
        sse = SSE(d, "/api/daemon/events")
        sse.next()
        sse.close()
        time.sleep(0.5)  # past the team chat's timeout
        assert ok(d, "GET", "/api/v1/status")["status"] == "healthy"
        r = ok(d, "POST", f"/api/ai/specialists/{slow}/message", {"message": "z"})
        assert r["response"].strip() == "late", r
    finally:
        d.cleanup()


def test_openapi_lists_the_seed_routes():
    d = start()
    try:
        doc = ok(d, "GET", "/openapi.json")
        paths = doc["paths"]
        for path, method, tag in (("/api/v1/spawn", "post", "ksi"), ("/api/v1/status", "get", "ksi"),
                                  ("/api/daemon", "delete", "neolith"), ("/api/daemon/sessions", "patch", "neolith"),
                                  ("/api/daemon/events", "get", "neolith"),
                                  ("/api/ai/specialists/{id}/message", "post", "rhetor"),
                                  ("/api/team-chat", "post", "rhetor")):
            assert paths[path][method]["tags"] == [tag], (path, method, paths.get(path))
        assert paths["/api/ai/specialists/{id}/message"]["post"]["parameters"][0]["name"] == "id"
        assert paths["/api/v1/spawn"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["task"]
    finally:
        d.cleanup()


run_tests(globals())
