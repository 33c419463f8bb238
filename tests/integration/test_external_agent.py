"""External agents: a client connection registers as an agent, receives the
requests addressed to it and answers them; timeouts, disconnects, late
answers, name conflicts and permissions."""
import json
import os
import socket
import time
from enslib import Daemon, SCALE, run_tests


class Agent:
    """A plain-socket external agent on its own connection."""

    def __init__(self, d, name, actions=None, description=None):
        self.c = d.client()
        self.name = name
        data = {"name": name}
        if actions is not None:
            data["actions"] = actions
        if description is not None:
            data["description"] = description
        r = self.c.ok("agents.register", data)
        assert r["name"] == name and r["registered"] is True, r
        self.other = []  # lines that were not pushed requests

    def next_request(self):
        """The next request pushed to this agent (objects with action and no status)."""
        while True:
            obj = self.c.recv()
            if "action" in obj and "status" not in obj and "event" not in obj:
                return obj
            self.other.append(obj)

    def next_other(self):
        if self.other:
            return self.other.pop(0)
        return self.c.recv()

    def answer(self, q, data):
        self.c.send({"reply_to": q["id"], "status": "success", "data": data})

    def fail(self, q, code, message, details=None):
        err = {"code": code, "message": message}
        if details is not None:
            err["details"] = details
        self.c.send({"reply_to": q["id"], "status": "error", "error": err})

    def close(self):
        self.c.close()


def whoami(c):
    topic = f"ens.test.whoami.{id(c)}"
    c.ok("subscribe", {"topics": [topic]})
    c.ok("publish", {"topic": topic})
    ev = c.next_event()
    c.ok("unsubscribe", {"topics": [topic]})
    return ev["from"]


def agent_names(c):
    return {a["name"] for a in c.ok("agents.list")["agents"]}


def test_request_success_and_error():
    d = Daemon()
    try:
        agent = Agent(d, "ext", actions=["greet", "boom"], description="an external agent")
        req = d.client()
        req_id = whoami(req)

        req.send({"id": "r1", "agent": "ext", "action": "greet", "data": {"who": "world", "n": [1, 2]}})
        q = agent.next_request()
        assert q["action"] == "greet" and q["agent"] == "ext", q
        assert q["data"] == {"who": "world", "n": [1, 2]}, q
        assert q["from"] == req_id, (q, req_id)
        assert isinstance(q["id"], str) and q["id"], q
        assert isinstance(q.get("timeout_ms"), int) and q["timeout_ms"] > 0, q
        agent.answer(q, {"greeting": "hello world", "list": [1, None, True]})
        r = req.recv()
        assert r["id"] == "r1" and r["status"] == "success", r
        assert r["data"] == {"greeting": "hello world", "list": [1, None, True]}, r

        # Error answer passes code, message and details through.
        req.send({"id": 5, "agent": "ext", "action": "boom", "data": {}})
        q = agent.next_request()
        assert q["action"] == "boom" and q["from"] == req_id
        agent.fail(q, "BOOM", "it exploded", {"where": "here"})
        r = req.recv()
        assert r["id"] == 5 and r["status"] == "error", r
        assert r["error"]["code"] == "BOOM" and r["error"]["message"] == "it exploded", r
        assert r["error"].get("details") == {"where": "here"}, r

        # Non-object data and a scalar answer are carried as-is.
        req.send({"id": "r3", "agent": "ext", "action": "greet", "data": ["a", 1], "timeout_ms": 5000})
        q = agent.next_request()
        assert q["data"] == ["a", 1] and q["timeout_ms"] == 5000, q
        agent.answer(q, "plain string")
        r = req.recv()
        assert r["id"] == "r3" and r["data"] == "plain string", r

        # Two outstanding requests answered out of order are matched correctly.
        req.send({"id": "A", "agent": "ext", "action": "greet", "data": {"k": "A"}})
        req.send({"id": "B", "agent": "ext", "action": "greet", "data": {"k": "B"}})
        qa = agent.next_request()
        qb = agent.next_request()
        assert qa["id"] != qb["id"]
        assert {qa["data"]["k"], qb["data"]["k"]} == {"A", "B"}
        agent.answer(qb, {"answer": qb["data"]["k"]})
        agent.answer(qa, {"answer": qa["data"]["k"]})
        r1, r2 = req.recv(), req.recv()
        assert r1["id"] == qb["data"]["k"] and r1["data"] == {"answer": r1["id"]}, r1
        assert r2["id"] == qa["data"]["k"] and r2["data"] == {"answer": r2["id"]}, r2

        # The agent's own connection still works for ordinary requests.
        assert agent.c.ok("ping") == {"pong": True}
        # And no stray replies were sent to the agent.
        assert agent.other == [], agent.other

        h = req.ok("health")
        assert h["counters"]["agent_requests"] >= 5, h["counters"]
        agent.close()
        req.close()
    finally:
        d.cleanup()


def test_timeout_and_late_answer():
    d = Daemon()
    try:
        agent = Agent(d, "sleepy")
        req = d.client()
        start = time.time()
        req.send({"id": "t1", "agent": "sleepy", "action": "work", "data": {}, "timeout_ms": 200})
        q = agent.next_request()
        assert q["timeout_ms"] == 200, q
        r = req.recv()
        elapsed = time.time() - start
        assert r["id"] == "t1" and r["status"] == "error" and r["error"]["code"] == "TIMEOUT", r
        assert 0.15 <= elapsed < 5 * SCALE, elapsed
        for key in ("code", "message", "details"):
            assert key in r["error"], r

        # The late answer is refused with UNKNOWN_REQUEST on the agent's connection.
        agent.answer(q, {"too": "late"})
        err = agent.next_other()
        assert err["status"] == "error" and err["error"]["code"] == "UNKNOWN_REQUEST", err
        assert err.get("id") in (None, q["id"]) or err.get("reply_to") == q["id"], err
        # An answer to a request that never existed is refused the same way.
        agent.c.send({"reply_to": "q-never-sent", "status": "success", "data": {}})
        err = agent.next_other()
        assert err["error"]["code"] == "UNKNOWN_REQUEST", err
        # Both connections stay usable; the requester got nothing further.
        assert agent.c.ok("ping") == {"pong": True}
        assert req.ok("ping") == {"pong": True}
        assert req.events == [], req.events

        h = req.ok("health")
        assert h["counters"]["agent_timeouts"] >= 1, h["counters"]
        assert h.get("pending_requests", 0) == 0, h

        # A fresh request after the timeout is served normally.
        req.send({"id": "t2", "agent": "sleepy", "action": "work", "data": {"again": True}, "timeout_ms": 5000})
        q = agent.next_request()
        agent.answer(q, {"ok": True})
        r = req.recv()
        assert r["id"] == "t2" and r["data"] == {"ok": True}, r
        agent.close()
        req.close()
    finally:
        d.cleanup()


def test_agent_gone_while_pending():
    d = Daemon()
    try:
        agent = Agent(d, "flaky")
        req = d.client()
        req.send({"id": "g1", "agent": "flaky", "action": "work", "data": {}, "timeout_ms": 60000})
        req.send({"id": "g2", "agent": "flaky", "action": "work", "data": {}, "timeout_ms": 60000})
        agent.next_request()
        agent.next_request()
        start = time.time()
        agent.close()
        replies = {}
        for _ in range(2):
            r = req.recv()
            replies[r["id"]] = r
        elapsed = time.time() - start
        assert elapsed < 3 * SCALE, elapsed
        for rid in ("g1", "g2"):
            assert replies[rid]["status"] == "error" and replies[rid]["error"]["code"] == "AGENT_GONE", replies
        # The agent is gone from the registry; a new request is AGENT_NOT_FOUND.
        deadline = time.time() + 5 * SCALE
        while "flaky" in agent_names(req) and time.time() < deadline:
            time.sleep(0.02)
        assert "flaky" not in agent_names(req)
        r = req.request("work", {}, agent="flaky")
        assert r["error"]["code"] == "AGENT_NOT_FOUND", r
        assert req.ok("health")["status"] == "healthy"
        req.close()
    finally:
        d.cleanup()


def test_duplicate_name_and_permissions():
    d = Daemon()
    try:
        agent = Agent(d, "unique", actions=["a"])
        other = d.client()
        r = other.request("agents.register", {"name": "unique"})
        assert r["status"] == "error" and r["error"]["code"] == "AGENT_EXISTS", r
        assert r["error"]["details"].get("name") == "unique", r
        # Plugin agent names are taken too.
        r = other.request("agents.register", {"name": "echo"})
        assert r["error"]["code"] == "AGENT_EXISTS", r

        r = other.request("agents.unregister", {"name": "unique"})
        assert r["status"] == "error" and r["error"]["code"] == "PERMISSION_DENIED", r
        r = other.request("agents.unregister", {"name": "echo"})
        assert r["error"]["code"] == "PERMISSION_DENIED", r
        assert "unique" in agent_names(other) and "echo" in agent_names(other)

        # The owner unregisters; then the name is free for someone else.
        r = agent.c.ok("agents.unregister", {"name": "unique"})
        assert r["name"] == "unique" and r["unregistered"] is True, r
        assert "unique" not in agent_names(other)
        r = other.ok("agents.register", {"name": "unique"})
        assert r["registered"] is True
        # Requests now go to the new owner.
        req = d.client()
        req.send({"id": 1, "agent": "unique", "action": "hi", "data": {}})
        q = other.recv()
        assert q["action"] == "hi" and "status" not in q, q
        other.send({"reply_to": q["id"], "status": "success", "data": "from other"})
        assert req.recv()["data"] == "from other"
        for c in (agent.c, other, req):
            c.close()
    finally:
        d.cleanup()


def test_agent_disappears_on_close():
    d = Daemon()
    try:
        watcher = d.client()
        agent = Agent(d, "brief")
        assert "brief" in agent_names(watcher)
        sock = d.path("orchestrator-brief.sock")
        assert os.path.exists(sock), os.listdir(d.socket_dir)
        agent.close()
        deadline = time.time() + 5 * SCALE
        while "brief" in agent_names(watcher) and time.time() < deadline:
            time.sleep(0.02)
        assert "brief" not in agent_names(watcher)
        deadline = time.time() + 5 * SCALE
        while os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.02)
        assert not os.path.exists(sock), "per-agent socket left behind"
        r = watcher.request("x", {}, agent="brief")
        assert r["error"]["code"] == "AGENT_NOT_FOUND", r
        watcher.close()
    finally:
        d.cleanup()


def test_echo_plugin_asks_external_agent():
    d = Daemon()
    try:
        agent = Agent(d, "oracle", actions=["question"])
        req = d.client()
        req.send({"id": "ask1", "agent": "echo", "action": "ask",
                  "data": {"agent": "oracle", "action": "question", "data": {"q": "meaning"}}})
        q = agent.next_request()
        assert q["action"] == "question" and q["agent"] == "oracle", q
        assert q["data"] == {"q": "meaning"}, q
        assert q["from"] == "agent-echo", q
        agent.answer(q, {"a": 42})
        r = req.recv()
        assert r["id"] == "ask1" and r["status"] == "success" and r["data"] == {"a": 42}, r

        # An error answer travels back through the plugin.
        req.send({"id": "ask2", "agent": "echo", "action": "ask",
                  "data": {"agent": "oracle", "action": "question", "data": {}}})
        q = agent.next_request()
        agent.fail(q, "NO_IDEA", "cannot tell")
        r = req.recv()
        assert r["id"] == "ask2" and r["status"] == "error" and r["error"]["code"] == "NO_IDEA", r

        # The plugin asking a missing agent gets AGENT_NOT_FOUND.
        r = req.request("ask", {"agent": "nobody", "action": "x", "data": {}}, agent="echo")
        assert r["status"] == "error" and r["error"]["code"] == "AGENT_NOT_FOUND", r
        agent.close()
        req.close()
    finally:
        d.cleanup()


def test_invalid_answers_from_agent():
    d = Daemon()
    try:
        agent = Agent(d, "sloppy")
        req = d.client()
        req.send({"id": "v1", "agent": "sloppy", "action": "do", "data": {}, "timeout_ms": 10000})
        q = agent.next_request()
        # An answer with a bad status is refused, the request stays pending.
        agent.c.send({"reply_to": q["id"], "status": "maybe", "data": {}})
        err = agent.next_other()
        assert err["status"] == "error" and err["error"]["code"] in ("INVALID_REQUEST", "INVALID_PARAMETERS"), err
        agent.answer(q, {"done": 1})
        r = req.recv()
        assert r["id"] == "v1" and r["status"] == "success" and r["data"] == {"done": 1}, r
        # Answering twice: the second answer is UNKNOWN_REQUEST.
        agent.answer(q, {"done": 2})
        err = agent.next_other()
        assert err["error"]["code"] == "UNKNOWN_REQUEST", err
        assert req.ok("ping") == {"pong": True}
        assert req.events == []
        agent.close()
        req.close()
    finally:
        d.cleanup()


def read_until_eof(c):
    """Every line left on @c until the daemon closes it."""
    lines = []
    while True:
        try:
            lines.append(c.recv())
        except EOFError:
            return lines


def test_half_close_gets_every_answer_due_and_no_more():
    """The transport contract: an agent's answer, success or error, gets no
    answer; one that nothing waits for gets UNKNOWN_REQUEST, which answers
    nothing else.  A peer that half-closes gets what is due, then EOF."""
    d = Daemon()
    try:
        # An agent answers with an error, then stops sending: nothing is due.
        agent = Agent(d, "halfclose")
        asker = d.client()
        asker.send({"id": "q", "agent": "halfclose", "action": "work"})
        q = agent.next_request()
        agent.fail(q, "NOPE", "refused on purpose")
        r = asker.wait_reply("q")
        assert r["status"] == "error" and r["error"]["code"] == "NOPE", r
        agent.c.sock.shutdown(socket.SHUT_WR)
        assert read_until_eof(agent.c) == []
        agent.close()

        # A slow request and an answer to nothing in one write, then a
        # half-close: the refusal and the slow answer both come, then EOF.
        c = d.client()
        c.send_raw(json.dumps({"id": "slow", "agent": "echo", "action": "sleep", "data": {"ms": 300}}) + "\n" +
                   json.dumps({"reply_to": "q-never", "data": {}}) + "\n")
        c.sock.shutdown(socket.SHUT_WR)
        lines = read_until_eof(c)
        assert len(lines) == 2, lines
        assert lines[0]["status"] == "error" and lines[0]["error"]["code"] == "UNKNOWN_REQUEST", lines
        assert lines[1]["id"] == "slow" and lines[1]["data"] == {"slept_ms": 300}, lines
        c.close()
        asker.close()
    finally:
        d.cleanup()


run_tests(globals())
