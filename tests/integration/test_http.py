"""transport-http through the real daemon: the native REST routes, the
Centerfire shapes, completions (plain and SSE), events over SSE, error bodies
and statuses, and the HTTP security features (bearer token, loopback-only
without a token, CORS, body limit, slow clients), /metrics, /openapi.json
and /docs.  Standard library HTTP clients only (http.client, raw sockets)."""

import html
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import http.client

from enslib import Daemon, MEMORY_SCALE, SCALE, gv, run_tests

PORT_RE = re.compile(r"transport-http: listening on http://([0-9.]+):(\d+)")


def start(**settings):
    """A daemon with transport-http on a free port; returns (daemon, port)."""
    settings.setdefault("http-port", gv(0))
    settings.setdefault("ws-port", gv(0))  # never the default port: tests run in parallel
    d = Daemon(settings=settings)
    try:
        return d, http_port(d)
    except BaseException:
        d.cleanup()
        raise


def http_port(d):
    deadline = time.time() + 5 * SCALE
    while time.time() < deadline:
        m = PORT_RE.search(d.read_log())
        if m:
            return int(m.group(2))
        time.sleep(0.02)
    raise AssertionError("no transport-http listening line:\n" + d.read_log())


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:600]!r}>"


def req(port, method, path, body=None, headers=None, raw=None, timeout=10):
    """One request on a fresh connection.  body: a JSON value (sent as JSON);
    raw: bytes sent as they are."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SCALE)
    try:
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


def ok(port, method, path, body=None, status=200, **kw):
    r = req(port, method, path, body, **kw)
    assert r.status == status, (method, path, r)
    assert r.headers.get("content-type", "").startswith("application/json"), r
    return r.json


def error_of(r, status, code=None):
    """Checks a {error:{code,message,details}} body and its status."""
    assert r.status == status, r
    err = r.json["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str), r
    assert "details" in err, r
    if code is not None:
        assert err["code"] == code, r
    return err


class SSE:
    """A Server-Sent Events stream read event by event."""

    def __init__(self, port, method, path, body=None, headers=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SCALE)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=h)
        self.resp = self.conn.getresponse()
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def next(self):
        """(event name or None, data text); None at the end of the stream."""
        event, data = None, []
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if event is None and not data:
                    continue
                return event, "\n".join(data)
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- health


def test_health_centerfire_shape_and_head():
    d, port = start()
    try:
        h = ok(port, "GET", "/health")
        assert h["status"] == "healthy", h
        assert isinstance(h["agents"], int) and h["agents"] >= 1, h  # the echo fixture
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", h["timestamp"]), h
        assert "http" in h["interfaces"] and "unix-sockets" in h["interfaces"], h
        lr = h["llm_router"]
        for k in ("daily_budget", "current_spend", "remaining", "utilization_pct"):
            assert isinstance(lr[k], (int, float)), lr
        assert abs(lr["remaining"] - (lr["daily_budget"] - lr["current_spend"] - lr.get("reserved", 0))) < 1e-6, lr
        # The plugin describes itself, with the URL tests and clients reach it on.
        http_plugin = [p for p in h["plugins"] if p["id"] == "transport-http"][0]
        assert http_plugin["info"]["url"] == f"http://127.0.0.1:{port}", http_plugin
        assert http_plugin["info"]["token_required"] is False, http_plugin
        # HEAD on GET routes: the headers, no body; trailing slash is the same route.
        for path in ("/health", "/api/agents", "/openapi.json"):
            r = req(port, "HEAD", path)
            assert r.status == 200 and r.body == b"", (path, r)
        assert ok(port, "GET", "/api/agents/")["agents"], "trailing slash"
    finally:
        d.cleanup()


def test_health_kept_briefly_yet_current():
    """/health is built at most once in 100 ms, and at once after a change
    made over HTTP: what a client changed shows in its next /health."""
    d, port = start()
    c = None
    try:
        h1 = ok(port, "GET", "/health")
        ok(port, "POST", "/api/sessions", {"provider": "local", "session_type": "chat"}, status=201)
        h2 = ok(port, "GET", "/health")
        assert h2["sessions"] == h1["sessions"] + 1, (h1["sessions"], h2["sessions"])
        # A change made elsewhere (an agent registered over the Unix socket)
        # shows within the 100 ms, as time does.
        c = d.client()
        before = ok(port, "GET", "/health")
        c.ok("agents.register", {"name": "fresh", "actions": ["x"]})
        deadline = time.time() + 5 * SCALE
        while True:
            h = ok(port, "GET", "/health")
            if h["agents"] == before["agents"] + 1 and h["uptime_s"] > before["uptime_s"]:
                break
            assert time.time() < deadline, (before, h)
            time.sleep(0.02)
        assert h["status"] == "healthy", h
    finally:
        if c:
            c.close()
        d.cleanup()


# ---------------------------------------------------------------- native REST


def test_plugins_agents_publish_events():
    d, port = start()
    try:
        plugins = ok(port, "GET", "/api/plugins")["plugins"]
        ids = {p["id"] for p in plugins}
        assert {"transport-http", "transport-unix", "agent-echo", "provider-local"} <= ids, ids
        agents = ok(port, "GET", "/api/agents")["agents"]
        echo = [a for a in agents if a["name"] == "echo"][0]
        assert "echo" in echo["actions"] and echo["owner"] == "agent-echo", echo

        # Events over SSE: subscribe, publish over HTTP and over the Unix socket.
        sse = SSE(port, "GET", "/api/events?topics=web.*,other")
        try:
            assert sse.resp.status == 200, sse.headers
            assert sse.headers["content-type"].startswith("text/event-stream"), sse.headers
            assert sse.next() == ("subscribed", "{}")
            pub = ok(port, "POST", "/api/publish", {"topic": "web.hello", "data": {"n": 1}})
            assert pub["delivered"] >= 1, pub
            name, data = sse.next()
            ev = json.loads(data)
            assert name == "web.hello" and ev["event"] == "web.hello" and ev["data"] == {"n": 1}, (name, ev)
            c = d.client()
            c.ok("publish", {"topic": "ignored.topic", "data": 1})
            c.ok("publish", {"topic": "other", "data": "from unix"})
            name, data = sse.next()
            assert name == "other" and json.loads(data)["data"] == "from unix", (name, data)
            c.close()
        finally:
            sse.close()
        # publish validation: no topic -> 422 naming it
        err = error_of(req(port, "POST", "/api/publish", {"data": 1}), 422)
        assert any(f["field"] == "topic" for f in err["details"].get("fields", [{"field": err["details"].get("field")}])), err
        # events without topics -> 422
        err = error_of(req(port, "GET", "/api/events"), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "topics", err
    finally:
        d.cleanup()


def test_agent_requests():
    d, port = start()
    try:
        assert ok(port, "POST", "/api/agents/echo/echo", {"k": [1, 2], "s": "x"}) == {"k": [1, 2], "s": "x"}
        assert ok(port, "POST", "/api/agents/echo/echo") == {}  # empty body: {}
        # timeout_ms: the agent sleeps longer than the deadline -> 504 TIMEOUT
        t0 = time.time()
        error_of(req(port, "POST", "/api/agents/echo/sleep?timeout_ms=150", {"ms": 3000}), 504, "TIMEOUT")
        assert time.time() - t0 < 2.5 * SCALE, "timeout_ms was not applied"
        assert ok(port, "POST", "/api/agents/echo/sleep?timeout_ms=2000", {"ms": 10})["slept_ms"] == 10
        err = error_of(req(port, "POST", "/api/agents/echo/echo?timeout_ms=abc", {}), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "timeout_ms", err
        error_of(req(port, "POST", "/api/agents/nobody/echo", {}), 404, "AGENT_NOT_FOUND")
        # an agent's own error keeps its code
        err = error_of(req(port, "POST", "/api/agents/echo/fail", {"code": "NOPE", "message": "no way"}), 500, "NOPE")
        assert err["message"] == "no way", err
        # path segments are unescaped
        assert ok(port, "POST", "/api/agents/%65cho/echo", {"a": 1}) == {"a": 1}
    finally:
        d.cleanup()


def test_kv_crud():
    d, port = start()
    try:
        err = error_of(req(port, "GET", "/api/kv/web/missing"), 404)
        ok(port, "PUT", "/api/kv/web/alpha", {"value": {"x": [1, "two"]}})
        ok(port, "PUT", "/api/kv/web/beta", {"value": 42})
        ok(port, "PUT", "/api/kv/web/other", {"value": "s"})
        got = ok(port, "GET", "/api/kv/web/alpha")
        assert got["value"] == {"x": [1, "two"]} and got.get("found", True), got
        # the same store as the Unix socket's kv verbs
        c = d.client()
        assert c.ok("kv.get", {"agent": "web", "key": "beta"})["value"] == 42
        c.close()
        keys = ok(port, "GET", "/api/kv/web")["keys"]
        assert {"alpha", "beta", "other"} <= set(keys), keys
        keys = ok(port, "GET", "/api/kv/web?prefix=al")["keys"]
        assert keys == ["alpha"], keys
        err = error_of(req(port, "PUT", "/api/kv/web/gamma", {"nope": 1}), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "value", err
        ok(port, "DELETE", "/api/kv/web/alpha")
        error_of(req(port, "GET", "/api/kv/web/alpha"), 404)
        assert "alpha" not in ok(port, "GET", "/api/kv/web")["keys"]
    finally:
        d.cleanup()


def test_completions_plain_and_stream_and_route():
    d, port = start()
    try:
        res = ok(port, "POST", "/api/completions", {"prompt": "Say hello over HTTP", "provider": "local"})
        r = res["result"]
        assert res["request_id"].startswith("req_"), res
        assert r["provider"] == "local" and "Say hello over HTTP" in r["response"], r
        assert r["usage"]["input_tokens"] > 0 and r["finish_reason"], r

        sse = SSE(port, "POST", "/api/completions", {"prompt": "Stream a few words please", "stream": True})
        try:
            assert sse.resp.status == 200 and sse.headers["content-type"].startswith("text/event-stream"), sse.headers
            name, data = sse.next()
            ack = json.loads(data)
            assert name == "ack" and ack["status"] == "queued" and ack["request_id"].startswith("req_"), (name, ack)
            chunks, result = [], None
            while True:
                item = sse.next()
                if item is None:
                    break
                name, data = item
                ev = json.loads(data)
                assert ev["request_id"] == ack["request_id"], ev
                if name == "COMPLETION_CHUNK":
                    assert ev["index"] == len(chunks), ev
                    chunks.append(ev["chunk"])
                else:
                    assert name == "COMPLETION_RESULT", name
                    result = ev["result"]
            assert chunks and result is not None, (chunks, result)
            assert "".join(chunks) == result["response"], (chunks, result)
        finally:
            sse.close()

        # validation from the core: wrong type -> 422 naming the field
        err = error_of(req(port, "POST", "/api/completions", {"prompt": "x", "max_tokens": "many"}), 422)
        assert "max_tokens" in json.dumps(err["details"]), err
        error_of(req(port, "POST", "/api/completions", {"prompt": "x", "provider": "no-such-backend"}), 404,
                 "UNKNOWN_MODEL")

        route = ok(port, "POST", "/api/route", {"prompt": "route me"})
        assert route["provider"] == "local", route
        rl = ok(port, "POST", "/api/route-llm", {"token_count": 100, "task_type": "chat", "priority": "high",
                                                "max_latency": 5000, "interface": "http"})
        assert set(rl) <= {"provider", "reasoning", "estimated_cost", "confidence"}, rl
        assert rl["provider"] == "local" and isinstance(rl["reasoning"], str), rl
        assert isinstance(rl["estimated_cost"], (int, float)) and isinstance(rl["confidence"], (int, float)), rl

        providers = ok(port, "GET", "/api/providers")["providers"]
        local = [p for p in providers if p["name"] == "local"][0]
        assert local["calls"] >= 2, local
        b = ok(port, "GET", "/api/budget")
        assert {"daily_budget", "current_spend", "remaining", "utilization_pct"} <= set(b), b
    finally:
        d.cleanup()


def test_centerfire_request():
    d, port = start()
    try:
        r = ok(port, "POST", "/api/request",
               {"id": "cf-1", "interface": "http", "agent": "echo", "action": "echo", "data": {"q": 1}})
        assert r["id"] == "cf-1" and r["status"] == "success" and r["data"] == {"q": 1}, r
        assert isinstance(r["timestamp"], str) and r["processing_time_ms"] >= 0, r
        r = req(port, "POST", "/api/request", {"id": "cf-2", "agent": "ghost", "action": "echo", "data": {}})
        assert r.status == 404 and r.json["status"] == "error" and r.json["id"] == "cf-2", r
        assert r.json["error"]["code"] == "AGENT_NOT_FOUND", r
        err = error_of(req(port, "POST", "/api/request", {"id": "cf-3", "action": "echo"}), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "agent", err
        err = error_of(req(port, "POST", "/api/request", {"agent": "echo", "action": "echo", "data": [1]}), 422)
        assert err["details"]["fields"][0]["field"] == "data", err
    finally:
        d.cleanup()


def test_fields_of_the_wrong_type():
    """A body field of the wrong JSON type is a 422 naming it, never read as if
    it were right (a GLib critical would stop the daemon under the tests)."""
    d, port = start()
    try:
        cases = [("/api/request", {"id": "1", "agent": {}, "action": "echo"}, "agent"),
                 ("/api/request", {"id": {}, "agent": "echo", "action": "echo"}, "id"),
                 ("/api/request", {"agent": "echo", "action": ["echo"]}, "action"),
                 ("/api/route-llm", {"token_count": 10, "task_type": [], "priority": "high"}, "task_type"),
                 ("/api/completions", {"prompt": {}}, "prompt"),
                 ("/api/v1/spawn", {"task": {}}, "task"),
                 ("/api/ai/socket/create", {"name": {}}, "name")]
        for path, body, field in cases:
            err = error_of(req(port, "POST", path, body), 422, "VALIDATION_ERROR")
            assert err["details"]["field"] == field and err["details"]["fields"][0]["field"] == field, (path, err)
            assert isinstance(err["details"]["expected"], str) and err["details"]["expected"], (path, err)
        assert d.proc.poll() is None
        assert ok(port, "GET", "/health")["status"] == "healthy"
    finally:
        d.cleanup()


def test_sessions_crud():
    d, port = start()
    try:
        s = ok(port, "POST", "/api/sessions", {"provider": "local", "session_type": "chat"}, status=201)
        sid = s["session_id"]
        assert isinstance(sid, str) and s["status"], s
        assert sid in [x["session_id"] for x in ok(port, "GET", "/api/sessions")["sessions"]]
        sse = SSE(port, "GET", f"/api/events?topics=session.{sid}.*")
        try:
            assert sse.next()[0] == "subscribed"
            ex = ok(port, "POST", f"/api/sessions/{sid}/execute", {"task": "Do a small thing"}, status=202)
            assert ex["session_id"] == sid and ex["status"] == "executing", ex
            types = []
            while "task_completed" not in types and "task_failed" not in types:
                name, data = sse.next()
                types.append(json.loads(data)["data"]["type"])
            assert "task_completed" in types, types
        finally:
            sse.close()
        st = ok(port, "GET", f"/api/sessions/{sid}")
        assert st["session_id"] == sid and st["tasks_total"] >= 1, st
        err = error_of(req(port, "POST", f"/api/sessions/{sid}/execute", {}), 422)
        assert "task" in json.dumps(err["details"]), err
        ok(port, "DELETE", f"/api/sessions/{sid}")
        error_of(req(port, "GET", "/api/sessions/no-such-session"), 404, "SESSION_NOT_FOUND")
    finally:
        d.cleanup()


# ---------------------------------------------------------------- errors


def raw_exchange(port, data, timeout=5):
    """Sends raw bytes; returns everything read until the server closes or
    the response looks complete."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SCALE)
    try:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m and len(body) >= int(m.group(1)):
                break
        return buf
    finally:
        s.close()


def test_error_statuses_and_bodies():
    d, port = start(**{"http-max-body-bytes": gv(2048)})
    try:
        error_of(req(port, "POST", "/api/publish", raw=b'{"topic": "x",'), 400, "INVALID_JSON")
        error_of(req(port, "POST", "/api/publish", raw=b"\xff\xfe"), 400)
        err = error_of(req(port, "POST", "/api/publish", raw=b"[1, 2]"), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"][0]["field"] == "body", err
        err = error_of(req(port, "POST", "/api/request", {"agent": "echo"}), 422, "VALIDATION_ERROR")
        assert err["details"]["fields"] == [{"field": "action", "expected": "a non-empty string"}], err
        error_of(req(port, "GET", "/api/nothing/here"), 404, "NOT_FOUND")
        error_of(req(port, "GET", "/nothing"), 404, "NOT_FOUND")
        error_of(req(port, "POST", "/"), 405, "METHOD_NOT_ALLOWED")  # / is the web console's page
        error_of(req(port, "DELETE", "/health"), 405, "METHOD_NOT_ALLOWED")
        error_of(req(port, "GET", "/api/publish"), 405, "METHOD_NOT_ALLOWED")
        # a chunked body: its size is unknown, 411
        out = raw_exchange(port, b"POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                 b"Content-Type: application/json\r\n\r\n"
                                 b"10\r\n{\"topic\": \"abc\"}\r\n0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 411"), out
        assert b'"LENGTH_REQUIRED"' in out, out
        # over http-max-body-bytes: 413 without reading it
        big = {"topic": "big", "data": "x" * 4000}
        error_of(req(port, "POST", "/api/publish", big), 413, "BODY_TOO_LARGE")
        # a client that asks first (Expect: 100-continue) is refused at once
        out = raw_exchange(port, b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                                 b"Expect: 100-continue\r\nContent-Type: application/json\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 413"), out
        # just under the limit is fine
        ok(port, "POST", "/api/publish", {"topic": "big", "data": "x" * 1800})
        # the daemon is still fine
        assert ok(port, "GET", "/health")["status"] == "healthy"
    finally:
        d.cleanup()


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_oversized_body_is_not_buffered():
    """A body over http-max-body-bytes must not be held in memory: the limit
    is what keeps a client from making the daemon allocate gigabytes."""
    d, port = start(**{"http-max-body-bytes": gv(2048)})
    try:
        before = vm_rss_kb(d.proc.pid)
        size = 64 << 20
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
        s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(size // len(chunk)):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut off early: better still
        try:
            head = s.recv(4096)
        except ConnectionResetError:
            head = b""
        s.close()
        grown = vm_rss_kb(d.proc.pid) - before
        assert head == b"" or head.startswith(b"HTTP/1.1 413"), head
        assert grown < 16 * 1024 * MEMORY_SCALE, f"the daemon grew by {grown} kB reading a refused 64 MB body"
        assert ok(port, "GET", "/health")["status"] == "healthy"
    finally:
        d.cleanup()


def test_slow_client_is_cut_off():
    d, port = start(**{"http-request-timeout-ms": gv(300)})
    try:
        stalled = []
        # headers never finished
        s1 = socket.create_connection(("127.0.0.1", port))
        s1.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        # headers done, the body never comes
        s2 = socket.create_connection(("127.0.0.1", port))
        s2.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100\r\n\r\n{\"topic\":")
        stalled = [s1, s2]
        # headers begun, then the client went away: no slow client
        s3 = socket.create_connection(("127.0.0.1", port))
        s3.sendall(b"GET /health HTTP/1.1\r\nHo")
        s3.close()
        t0 = time.time()
        # others keep being served meanwhile
        for _ in range(5):
            assert ok(port, "GET", "/health")["status"] == "healthy"
        for s in stalled:
            s.settimeout(5 * SCALE)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            # closed, possibly after an error status; never a 2xx
            assert not data.startswith(b"HTTP/1.1 2"), data
            if data:
                try:
                    assert s.recv(65536) == b""
                except ConnectionResetError:
                    pass
        assert time.time() - t0 < 3 * SCALE, "slow clients were not cut off in time"
        for s in stalled:
            s.close()
        # a normal request that takes a while to answer is not a slow client
        assert ok(port, "POST", "/api/agents/echo/sleep", {"ms": 600})["slept_ms"] == 600
        metrics = req(port, "GET", "/metrics").body.decode()
        m = re.search(r'ensemble_http_refused_total\{reason="timeout"\} (\d+)', metrics)
        assert m and int(m.group(1)) == 2, metrics  # s1 and s2, not s3 nor the closed keep-alive connections
    finally:
        d.cleanup()


# ---------------------------------------------------------------- security


def test_bearer_token():
    tmp = tempfile.mkdtemp(prefix="ens-http-token-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("s3cret-token-value\n")
    d, port = start(**{"http-token-file": gv(token_file)})
    try:
        assert "(bearer token required)" in d.read_log()
        r = req(port, "GET", "/api/agents")
        error_of(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Bearer"), r
        error_of(req(port, "GET", "/api/agents", headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")
        error_of(req(port, "GET", "/api/agents", headers={"Authorization": "Bearer s3cret-token-valu"}), 401)
        error_of(req(port, "GET", "/api/agents", headers={"Authorization": "Bearer s3cret-token-value2"}), 401)
        error_of(req(port, "GET", "/api/agents", headers={"Authorization": "Basic s3cret-token-value"}), 401)
        error_of(req(port, "POST", "/api/publish", {"topic": "x"}), 401)
        error_of(req(port, "GET", "/metrics"), 401)
        auth = {"Authorization": "Bearer s3cret-token-value"}
        assert ok(port, "GET", "/api/agents", headers=auth)["agents"]
        assert ok(port, "POST", "/api/agents/echo/echo", {"a": 1}, headers=auth) == {"a": 1}
        assert ok(port, "GET", "/health")["status"] == "healthy"  # public
        # the API's description is not public: it follows every other route
        error_of(req(port, "GET", "/openapi.json"), 401, "UNAUTHORIZED")
        error_of(req(port, "GET", "/docs"), 401, "UNAUTHORIZED")
        assert ok(port, "GET", "/openapi.json", headers=auth)["openapi"].startswith("3.1")
        assert req(port, "GET", "/docs", headers=auth).status == 200
        h = ok(port, "GET", "/health")
        assert [p for p in h["plugins"] if p["id"] == "transport-http"][0]["info"]["token_required"] is True
    finally:
        d.cleanup()
    # an empty token file is refused rather than meaning "no token"
    with open(token_file, "w") as f:
        f.write("\n")
    d = Daemon(settings={"http-port": gv(0), "ws-port": gv(0), "http-token-file": gv(token_file)})
    try:
        assert not PORT_RE.search(d.read_log()), d.read_log()
        assert "is empty" in d.read_log(), d.read_log()
    finally:
        d.cleanup()


def non_loopback_address():
    """An IPv4 address of this machine other than loopback, or None."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, timeout=5).stdout
        m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
        if m:
            return m.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))  # no packet is sent
        addr = s.getsockname()[0]
        s.close()
        return None if addr.startswith("127.") or addr == "0.0.0.0" else addr
    except OSError:
        return None


def test_non_loopback_needs_a_token():
    addr = non_loopback_address()
    if addr is None:
        print("  (skipped: this machine has no non-loopback IPv4 address)")
        return
    d = Daemon(settings={"http-port": gv(0), "ws-port": gv(0), "http-address": gv(addr)})
    try:
        log = d.read_log()
        assert "refusing to serve HTTP on " + addr in log, log
        assert not PORT_RE.search(log), log
        c = d.client()
        ids = {p["id"] for p in c.ok("plugins.list")["plugins"]}
        assert "transport-http" not in ids, ids
        c.close()
    finally:
        d.cleanup()
    for any_addr in ("0.0.0.0", "::"):
        d = Daemon(settings={"http-port": gv(0), "ws-port": gv(0), "http-address": gv(any_addr)})
        try:
            assert "refusing to serve HTTP on " + any_addr in d.read_log(), d.read_log()
        finally:
            d.cleanup()
    # with a token it serves there, and the token is needed
    tmp = tempfile.mkdtemp(prefix="ens-http-token-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("tok\n")
    d = Daemon(settings={"http-port": gv(0), "ws-port": gv(0), "http-address": gv(addr), "http-token-file": gv(token_file)})
    try:
        m = PORT_RE.search(d.read_log())
        assert m and m.group(1) == addr, d.read_log()
        c = http.client.HTTPConnection(addr, int(m.group(2)), timeout=5)
        c.request("GET", "/api/agents")
        r = c.getresponse()
        r.read()
        assert r.status == 401, r.status
        c.close()
        c = http.client.HTTPConnection(addr, int(m.group(2)), timeout=5)
        c.request("GET", "/api/agents", headers={"Authorization": "Bearer tok"})
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["agents"], r.status
        c.close()
    finally:
        d.cleanup()


def test_cors():
    d, port = start(**{"http-cors-origins": gv(["http://localhost:3000", "https://app.example"])})
    try:
        r = req(port, "GET", "/api/agents", headers={"Origin": "http://localhost:3000"})
        assert r.status == 200 and r.headers.get("access-control-allow-origin") == "http://localhost:3000", r
        assert "origin" in r.headers.get("vary", "").lower(), r
        r = req(port, "GET", "/api/agents", headers={"Origin": "https://evil.example"})
        assert r.status == 200 and "access-control-allow-origin" not in r.headers, r
        r = req(port, "GET", "/api/agents")
        assert "access-control-allow-origin" not in r.headers, r
        # errors carry the header too, so browsers can read them
        r = req(port, "POST", "/api/publish", raw=b"{", headers={"Origin": "https://app.example"})
        assert r.status == 400 and r.headers.get("access-control-allow-origin") == "https://app.example", r
        # preflight
        pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
        r = req(port, "OPTIONS", "/api/publish", headers=pre)
        assert r.status == 204, r
        assert r.headers.get("access-control-allow-origin") == "https://app.example", r
        assert "POST" in r.headers.get("access-control-allow-methods", ""), r
        allow = r.headers.get("access-control-allow-headers", "").lower()
        assert "authorization" in allow and "content-type" in allow, r
        pre["Origin"] = "https://evil.example"
        r = req(port, "OPTIONS", "/api/publish", headers=pre)
        assert "access-control-allow-origin" not in r.headers and "access-control-allow-methods" not in r.headers, r
    finally:
        d.cleanup()


# ---------------------------------------------------------------- metrics and the API document


def test_metrics():
    d, port = start()
    try:
        ok(port, "POST", "/api/completions", {"prompt": "count me", "provider": "local"})
        req(port, "GET", "/nope")
        r = req(port, "GET", "/metrics")
        assert r.status == 200 and r.headers["content-type"].startswith("text/plain"), r
        text = r.body.decode()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        assert types.get("ensemble_http_requests_total") == "counter", types
        assert types.get("ensemble_http_request_duration_seconds") == "histogram", types
        for name in ("ensemble_connections", "ensemble_completion_queue_depth", "ensemble_http_open_requests"):
            assert types.get(name) == "gauge", (name, types)
        for name in ("ensemble_provider_calls_total", "ensemble_events_published_total",
                     "ensemble_provider_input_tokens_total", "ensemble_provider_cost_usd_total"):
            assert types.get(name) == "counter", (name, types)
        route = 'route="POST /api/completions"'
        assert re.search(r'^ensemble_http_request_duration_seconds_bucket\{' + re.escape(route) +
                         r',le="\+Inf"\} 1$', text, re.M), text
        assert re.search(r'^ensemble_http_request_duration_seconds_count\{' + re.escape(route) + r'\} 1$', text, re.M)
        assert re.search(r'^ensemble_http_requests_total\{route="- unmatched",outcome="error"\} 1$', text, re.M), text
        m = re.search(r'^ensemble_provider_calls_total\{provider="local"\} (\S+)$', text, re.M)
        assert m and float(m.group(1)) >= 1, text
        # every sample line is NAME{labels} VALUE with a number
        for line in text.splitlines():
            if line and not line.startswith("#"):
                assert re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfa]+$', line), line
        # buckets are cumulative
        buckets = [int(v) for v in re.findall(r'^ensemble_http_request_duration_seconds_bucket\{' +
                                               re.escape(route) + r',le="[^"]+"\} (\d+)$', text, re.M)]
        assert buckets == sorted(buckets), buckets
        # every family has its HELP and TYPE, before its samples; every sample belongs to one
        helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
        assert helps == set(types), (set(types) ^ helps)
        declared = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                declared.add(line.split()[2])
            elif line and not line.startswith("#"):
                name = line.split("{")[0].split(" ")[0]
                fam = re.sub(r"_(bucket|sum|count)$", "", name) if types.get(
                    re.sub(r"_(bucket|sum|count)$", "", name)) == "histogram" else name
                assert fam in declared, line
        # seconds, bytes and dollars, never milliseconds
        assert not [t for t in types if re.search(r"_ms(_|$)|millis", t)], types
        assert types.get("ensemble_provider_latency_seconds") == "gauge", types
        # build info, and the process as the kernel sees it
        m = re.search(r'^ensemble_build_info\{version="([^"]+)",abi="(\d+\.\d+)",glib="[\d.]+"\} 1$', text, re.M)
        assert m and m.group(1) == ok(port, "GET", "/health")["version"], text
        value = lambda name: float(re.search(r"^" + name + r" (\S+)$", text, re.M).group(1))
        for name, kind in (("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
                           ("process_virtual_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                           ("process_max_fds", "gauge"), ("process_start_time_seconds", "gauge")):
            assert types.get(name) == kind, (name, types)
        pid = d.proc.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        assert abs(value("process_open_fds") - fds) <= 4, (value("process_open_fds"), fds)
        rss = int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        assert 0.5 * rss <= value("process_resident_memory_bytes") <= 2 * rss, (value("process_resident_memory_bytes"), rss)
        assert 0 < value("process_cpu_seconds_total") < 600, text
        started = os.stat(f"/proc/{pid}").st_mtime  # about when the process began
        assert abs(value("process_start_time_seconds") - started) < 30 * SCALE, (value("process_start_time_seconds"), started)
        assert 0 < value("process_max_fds") and value("ensemble_uptime_seconds") >= 0
    finally:
        d.cleanup()


def schema_errors(value, schema, schemas, where="$"):
    """What in @value disagrees with the JSON Schema @schema (the subset the
    document uses: $ref, type, const, enum, required, properties,
    additionalProperties, items)."""
    if "$ref" in schema:
        return schema_errors(value, schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, where)
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        fits = any((t in ("number", "integer") and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and (t == "number" or float(value).is_integer())) or
                   (t in kinds and isinstance(value, kinds[t]) and not (t != "boolean" and isinstance(value, bool)))
                   for t in wanted)
        if not fits:
            return [f"{where}: {value!r:.60} is not {wanted}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    errors = []
    if isinstance(value, dict):
        errors += [f"{where}: no {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            sub = schema.get("properties", {}).get(k)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                errors += schema_errors(v, sub, schemas, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += schema_errors(v, schema["items"], schemas, f"{where}[{i}]")
    return errors


def test_openapi_lists_every_served_route():
    d, port = start()
    try:
        doc = ok(port, "GET", "/openapi.json")
        assert doc["openapi"].startswith("3.1"), doc["openapi"]
        assert doc["info"]["title"] and doc["info"]["version"], doc["info"]
        assert doc["servers"][0]["url"] == f"http://127.0.0.1:{port}", doc["servers"]
        paths = doc["paths"]
        # the native routes, at least
        expect = {("get", "/health"), ("post", "/api/request"), ("post", "/api/route-llm"), ("get", "/api/plugins"),
                  ("get", "/api/agents"), ("post", "/api/agents/{agent}/{action}"), ("post", "/api/publish"),
                  ("get", "/api/events"), ("get", "/api/kv/{agent}"), ("get", "/api/kv/{agent}/{key}"),
                  ("put", "/api/kv/{agent}/{key}"), ("delete", "/api/kv/{agent}/{key}"),
                  ("post", "/api/completions"), ("post", "/api/route"), ("get", "/api/providers"),
                  ("get", "/api/budget"), ("get", "/api/sessions"), ("post", "/api/sessions"),
                  ("get", "/api/sessions/{id}"), ("post", "/api/sessions/{id}/execute"),
                  ("delete", "/api/sessions/{id}"), ("get", "/metrics"), ("get", "/openapi.json"), ("get", "/docs")}
        listed = {(m, p) for p, item in paths.items() for m in item}
        assert expect <= listed, expect - listed
        for p, item in paths.items():
            for m, op in item.items():
                assert m in ("get", "post", "put", "patch", "delete"), (m, p)
                assert op["summary"] and op["responses"], (m, p)
                names = re.findall(r"\{(\w+)\}", p)
                assert [x["name"] for x in op.get("parameters", []) if x["in"] == "path"] == names, (m, p, op)
        assert paths["/health"]["get"]["security"] == []
        # operationIds a code generator can use: identifiers, unique
        ids = [op["operationId"] for item in paths.values() for op in item.values()]
        assert len(ids) == len(set(ids)), sorted(ids)
        assert all(re.match(r"^[a-z][A-Za-z0-9]*$", i) for i in ids), ids
        assert paths["/api/kv/{agent}/{key}"]["get"]["operationId"] == "getApiKvByAgentByKey"
        # every operation says what it answers: a success with a schema, and its errors
        schemas = doc["components"]["schemas"]
        for p, item in paths.items():
            for m, op in item.items():
                success = [c for c in op["responses"] if c.startswith("2")]
                assert len(success) == 1, (m, p, op["responses"])
                content = op["responses"][success[0]]["content"]
                assert content and all("schema" in v for v in content.values()), (m, p)
                err = op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
                assert err == ("#/components/schemas/OpenAIError" if p.startswith("/v1") else "#/components/schemas/Error")
        assert paths["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/Health"}
        assert "text/event-stream" in paths["/api/completions"]["post"]["responses"]["200"]["content"]
        assert paths["/api/sessions"]["post"]["responses"]["201"]
        for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)):
            assert ref in schemas, ref

        # /docs: a page naming every path
        r = req(port, "GET", "/docs")
        assert r.status == 200 and r.headers["content-type"].startswith("text/html"), r
        page = r.body.decode()
        missing = [p for p in paths if html.escape(p, quote=False) not in page and p not in page]
        assert not missing, missing
        # readable: one line per element, every operation with its id and response schemas
        assert page.count("\n") > 500 and max(len(x) for x in page.splitlines()) < 2000, page.count("\n")
        assert all(f'id="{i}"' in page for i in ids), [i for i in ids if f'id="{i}"' not in page]
        assert "&quot;$ref&quot;" in page or '"$ref"' in page
        assert '<a href="#schema-Health">' in page and 'id="schema-Health"' in page  # references link to the schema
        health_section = page[page.index('id="getHealth"'):page.index("</section>", page.index('id="getHealth"'))]
        assert "public: no token needed" in health_section, health_section[:400]

        # every documented operation is served (not a routing 404/405)
        sess = ok(port, "POST", "/api/sessions", {"provider": "local"}, status=201)["session_id"]
        ok(port, "PUT", "/api/kv/web/k1", {"value": 1})
        values = {"agent": "echo", "action": "echo", "key": "k1", "id": sess, "session_id": sess}
        order = {"get": 0, "post": 1, "put": 1, "patch": 2, "delete": 3}
        ops = sorted(((m, p) for p, item in paths.items() for m in item), key=lambda x: (order[x[0]], x[1]))
        unserved = []
        checked = 0
        for m, p in ops:
            path = re.sub(r"\{(\w+)\}", lambda mm: values.get(mm.group(1), "x"), p)
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * SCALE)
                body = b"{}" if m in ("post", "put", "patch") else None
                c.request(m.upper(), path, body=body, headers={"Content-Type": "application/json"} if body else {})
                resp = c.getresponse()
                status = resp.status
                ctype = resp.getheader("Content-Type") or ""
                data = b"" if ctype.startswith("text/event-stream") else resp.read()
                c.close()
            except (OSError, http.client.HTTPException) as e:
                unserved.append((m, p, repr(e)))
                continue
            if status == 405 or (status == 404 and b"no route" in data):
                unserved.append((m, p, status, data[:200]))
            # what it answered is what the document says it answers
            documented = paths[p][m]["responses"].get(str(status))
            if 200 <= status < 300 and ctype.startswith("application/json"):
                assert documented, (m, p, status)
                wrong = schema_errors(json.loads(data), documented["content"]["application/json"]["schema"], schemas)
                assert not wrong, (m, p, wrong, data[:300])
                checked += 1
        assert not unserved, unserved
        assert checked >= 20, checked
        assert d.proc.poll() is None, d.read_log()
    finally:
        d.cleanup()


run_tests(globals())
