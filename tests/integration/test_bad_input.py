"""Bad input on the native socket: malformed JSON, oversized lines, wrong
types, garbage bytes and abrupt disconnects.  The daemon answers with
structured errors, keeps the connection usable where it can, and keeps
serving everyone else."""
import json
import os
import random
import socket
import time
from enslib import Daemon, SCALE, run_tests


def assert_error(reply, code, rid="__any__", field=None):
    assert reply["status"] == "error", reply
    err = reply["error"]
    assert err["code"] == code, (code, reply)
    assert isinstance(err["message"], str) and err["message"], reply
    assert isinstance(err["details"], dict), reply
    if rid != "__any__":
        assert reply["id"] == rid, (rid, reply)
    if field is not None:
        assert err["details"].get("field") == field, (field, reply)
    assert isinstance(reply.get("timestamp"), str), reply


def assert_alive(d):
    """The daemon process runs and a fresh client gets ping and health."""
    assert d.proc.poll() is None, f"daemon died:\n{d.read_log()}"
    c = d.client()
    try:
        assert c.ok("ping") == {"pong": True}
        assert c.ok("health")["status"] == "healthy"
    finally:
        c.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])


def raw_line(c, line):
    c.send_raw(line)
    return c.recv()


def test_malformed_json():
    d = Daemon()
    try:
        c = d.client()
        for line in (b"{bad\n", b"{\"id\":1,\"action\":\"ping\"\n", b"nul\n", b"}\n",
                     b"{\"id\":1,\"action\":\"ping\"} trailing\n", b"[1,2\n", b"\"unterminated\n",
                     b"{\"id\":\"\xff\xfe\",\"action\":\"ping\"}\n", b"{\"a\":1,}\n"):
            r = raw_line(c, line)
            assert_error(r, "INVALID_JSON", rid=None)
        # Valid JSON that is not an object.
        for line in (b"[1]\n", b"\"str\"\n", b"42\n", b"null\n", b"true\n"):
            r = raw_line(c, line)
            assert_error(r, "INVALID_REQUEST", rid=None)
        # The same connection still works.
        assert c.ok("ping") == {"pong": True}
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_two_objects_on_one_line_not_silently_dropped():
    """One JSON value per line: a second object on the same line must either be
    refused (INVALID_JSON) or answered -- never silently ignored."""
    d = Daemon()
    try:
        c = d.client()
        c.send_raw(b'{"id":1,"action":"ping"}{"id":2,"action":"ping"}\n{"id":3,"action":"ping"}\n')
        replies = []
        while True:
            r = c.recv()
            replies.append(r)
            if r.get("id") == 3:
                break
        ids = [r.get("id") for r in replies]
        invalid = [r for r in replies if r["status"] == "error" and r["error"]["code"] == "INVALID_JSON"]
        assert ids == [1, 2, 3] or (len(invalid) == 1 and ids[-1] == 3 and 2 not in ids and 1 not in ids), replies
        c.close()
    finally:
        d.cleanup()


def test_empty_and_whitespace_lines_ignored():
    d = Daemon()
    try:
        c = d.client()
        c.send_raw(b"\n\n   \n\t\n \t \r\n\r\n" + b"\n" * 1000 + b'{"id":"after","action":"ping"}\n')
        r = c.recv()
        assert r["id"] == "after" and r["status"] == "success", r
        # CRLF line endings work for requests.
        r = raw_line(c, b'{"id":"crlf","action":"ping"}\r\n')
        assert r["id"] == "crlf" and r["status"] == "success", r
        # Leading/trailing blanks around a request are fine.
        r = raw_line(c, b'   {"id":"pad","action":"ping"}   \n')
        assert r["id"] == "pad" and r["status"] == "success", r
        # Nothing else was sent in reply to the blank lines.
        c.sock.settimeout(0.3)
        try:
            extra = c.sock.recv(65536)
        except socket.timeout:
            extra = b""
        c.sock.settimeout(10 * SCALE)
        assert extra == b"", extra
        c.close()
    finally:
        d.cleanup()


def test_10mib_line_then_ping_same_connection():
    d = Daemon()
    try:
        c = d.client()
        c.sock.settimeout(30 * SCALE)
        base_kb = rss_kb(d.proc.pid)
        big = b'{"id":"big","action":"ping","data":{"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}}\n'
        c.send_raw(big + b'{"id":"next","action":"ping"}\n')
        r = c.recv()
        assert_error(r, "LINE_TOO_LONG", rid=None)
        r = c.recv()
        assert r["id"] == "next" and r["status"] == "success" and r["data"] == {"pong": True}, r
        # Exactly one error for the oversized line: nothing else is pending.
        assert c.ok("ping") == {"pong": True}
        # The 10 MiB line was never held in memory (the limit is 1 MiB).
        growth_mb = (rss_kb(d.proc.pid) - base_kb) / 1024
        assert growth_mb < 8, f"RSS grew by {growth_mb:.1f} MiB"
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_long_line_in_many_small_writes():
    d = Daemon()
    try:
        c = d.client()
        # Over the 1 MiB limit, written 4 KiB at a time.
        payload = b'{"id":"big","action":"ping","data":{"pad":"' + b"y" * (1536 * 1024) + b'"}}\n'
        for i in range(0, len(payload), 4096):
            c.send_raw(payload[i:i + 4096])
        c.send_raw(b'{"id":"after-big","action":"ping"}\n')
        assert_error(c.recv(), "LINE_TOO_LONG", rid=None)
        r = c.recv()
        assert r["id"] == "after-big" and r["status"] == "success", r

        # Under the limit (~900 KiB) in 1000-byte writes: a normal request.
        value = "z" * (900 * 1024)
        line = json.dumps({"id": "fits", "action": "kv.set",
                           "data": {"agent": "big", "key": "v", "value": value}}).encode() + b"\n"
        for i in range(0, len(line), 1000):
            c.send_raw(line[i:i + 1000])
        r = c.recv()
        assert r["id"] == "fits" and r["status"] == "success", r
        assert c.ok("kv.get", {"agent": "big", "key": "v"})["value"] == value

        # A small request one byte at a time.
        for b in b'{"id":"bytewise","action":"ping"}\n':
            c.send_raw(bytes([b]))
        r = c.recv()
        assert r["id"] == "bytewise" and r["status"] == "success", r
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_line_limit_setting():
    d = Daemon(settings={"max-line-bytes": "4096"})
    try:
        c = d.client()
        ok_line = json.dumps({"id": "small", "action": "ping", "data": {"p": "a" * 3000}}).encode() + b"\n"
        assert raw_line(c, ok_line)["status"] == "success"
        big = json.dumps({"id": "big", "action": "ping", "data": {"p": "a" * 5000}}).encode() + b"\n"
        assert_error(raw_line(c, big), "LINE_TOO_LONG", rid=None)
        # Several oversized lines back to back: one error each, then a good reply.
        c.send_raw(big * 3 + b'{"id":"ok","action":"ping"}\n')
        for _ in range(3):
            assert_error(c.recv(), "LINE_TOO_LONG", rid=None)
        r = c.recv()
        assert r["id"] == "ok" and r["status"] == "success", r
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_unknown_action():
    d = Daemon()
    try:
        c = d.client()
        r = c.request("no.such.verb", {})
        assert_error(r, "UNKNOWN_ACTION", rid="t1")
        actions = r["error"]["details"]["actions"]
        assert {"ping", "health", "subscribe", "publish", "kv.set"} <= set(actions), actions
        # An unknown action on an agent is answered by the agent with an error.
        r = c.request("no.such.verb", {}, agent="echo")
        assert r["status"] == "error", r
        for key in ("code", "message"):
            assert key in r["error"], r
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_wrong_types():
    d = Daemon()
    try:
        c = d.client()
        cases = [
            # (request object, expected code, expected id, expected details.field)
            ({"id": "d1", "action": "ping", "data": [1, 2]}, "INVALID_PARAMETERS", "d1", "data"),
            ({"id": "d2", "action": "kv.list", "data": "agent"}, "INVALID_PARAMETERS", "d2", "data"),
            ({"id": True, "action": "ping"}, "INVALID_REQUEST", None, None),
            ({"id": 1.5, "action": "ping"}, "INVALID_REQUEST", None, None),
            ({"id": {"x": 1}, "action": "ping"}, "INVALID_REQUEST", None, None),
            ({"id": [1], "action": "ping"}, "INVALID_REQUEST", None, None),
            ({"id": "a1", "action": 5}, "INVALID_REQUEST", "a1", None),
            ({"id": "a2", "action": None}, "INVALID_REQUEST", "a2", None),
            ({"id": "a3", "action": ""}, "INVALID_REQUEST", "a3", None),
            ({"id": "a4"}, "INVALID_REQUEST", "a4", None),
            ({"id": "s1", "action": "subscribe", "data": {"topics": 5}}, "INVALID_PARAMETERS", "s1", "topics"),
            ({"id": "s2", "action": "subscribe", "data": {"topics": {"a": 1}}}, "INVALID_PARAMETERS", "s2", "topics"),
            ({"id": "s3", "action": "subscribe", "data": {"topics": [1, 2]}}, "INVALID_PARAMETERS", "s3", "topics"),
            ({"id": "s4", "action": "subscribe", "data": {}}, "INVALID_PARAMETERS", "s4", "topics"),
            ({"id": "s5", "action": "subscribe", "data": {"topics": []}}, "INVALID_PARAMETERS", "s5", "topics"),
            ({"id": "s6", "action": "unsubscribe", "data": {"topics": 7}}, "INVALID_PARAMETERS", "s6", "topics"),
            ({"id": "p1", "action": "publish", "data": {"topic": 5}}, "INVALID_PARAMETERS", "p1", "topic"),
            ({"id": "p2", "action": "publish", "data": {}}, "INVALID_PARAMETERS", "p2", "topic"),
            ({"id": "p3", "action": "publish", "data": {"topic": "a", "to": 5}}, "INVALID_PARAMETERS", "p3", "to"),
            ({"id": "k1", "action": "kv.set", "data": {"agent": "a", "key": "k"}}, "INVALID_PARAMETERS", "k1",
             "value"),
            ({"id": "k2", "action": "kv.set", "data": {"agent": "a", "key": 5, "value": 1}}, "INVALID_PARAMETERS",
             "k2", "key"),
            ({"id": "k3", "action": "kv.get", "data": {"agent": ["a"], "key": "k"}}, "INVALID_PARAMETERS", "k3",
             "agent"),
            ({"id": "k4", "action": "kv.set", "data": {"agent": "a/b", "key": "k", "value": 1}},
             "INVALID_PARAMETERS", "k4", "agent"),
            ({"id": "k5", "action": "kv.delete", "data": {"agent": "a"}}, "INVALID_PARAMETERS", "k5", "key"),
            ({"id": "r1", "action": "agents.register", "data": {"name": "a/b"}}, "INVALID_PARAMETERS", "r1", "name"),
            ({"id": "r2", "action": "agents.register", "data": {"name": "../etc"}}, "INVALID_PARAMETERS", "r2",
             "name"),
            ({"id": "r3", "action": "agents.register", "data": {"name": ""}}, "INVALID_PARAMETERS", "r3", "name"),
            ({"id": "r4", "action": "agents.register", "data": {"name": 5}}, "INVALID_PARAMETERS", "r4", "name"),
            ({"id": "r5", "action": "agents.register", "data": {"name": "x" * 65}}, "INVALID_PARAMETERS", "r5",
             "name"),
            ({"id": "r6", "action": "agents.register", "data": {"name": "ok", "actions": [1]}},
             "INVALID_PARAMETERS", "r6", "actions[0]"),
            ({"id": "r8", "action": "agents.register", "data": {"name": "ok", "actions": 5}},
             "INVALID_PARAMETERS", "r8", "actions"),
            ({"id": "r7", "action": "agents.register", "data": {}}, "INVALID_PARAMETERS", "r7", "name"),
            ({"id": "g1", "agent": 5, "action": "echo"}, "INVALID_REQUEST", "g1", None),
        ]
        for obj, code, rid, field in cases:
            r = raw_line(c, json.dumps(obj).encode() + b"\n")
            assert_error(r, code, rid=rid, field=field)
        # timeout_ms out of range or of the wrong type.
        for bad in (-1, 0, 3600001, "5", 1.5, None, True):
            r = raw_line(c, json.dumps({"id": "tm", "agent": "echo", "action": "echo", "data": {},
                                        "timeout_ms": bad}).encode() + b"\n")
            assert r["status"] == "error" and r["id"] == "tm", (bad, r)
            assert r["error"]["code"] in ("INVALID_REQUEST", "INVALID_PARAMETERS"), (bad, r)
            assert "details" in r["error"] and "message" in r["error"], r
        # None of these registered anything: only the plugins' agents are there.
        names = {a["name"] for a in c.ok("agents.list")["agents"]}
        kinds = {a["kind"] for a in c.ok("agents.list")["agents"]}
        assert "echo" in names and kinds == {"plugin"}, (names, kinds)
        assert c.ok("ping") == {"pong": True}
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_abrupt_disconnects():
    d = Daemon()
    try:
        # Mid-line.
        c = d.client()
        c.send_raw(b'{"id":1,"action":"pi')
        c.close()
        # Mid-pipeline: many requests written, connection closed without reading.
        # Long ids make the replies large (several MB in all) at the cost of a
        # ping, so the daemon is still writing them when the client goes.
        pad = "p" * 1000
        c = d.client()
        c.send_raw(b"".join(json.dumps({"id": f"{i}{pad}", "action": "ping"}).encode() + b"\n" for i in range(2000)))
        c.close()
        # With a reset (SO_LINGER 0) while replies are in flight.
        c = d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.send_raw(b"".join(json.dumps({"id": f"{i}{pad}", "action": "ping"}).encode() + b"\n" for i in range(2000)))
        c.close()
        # A pending agent request whose requester leaves before the answer.
        c = d.client()
        c.send_raw(json.dumps({"id": "s", "agent": "echo", "action": "sleep", "data": {"ms": 100}}).encode() + b"\n")
        c.close()
        # A subscriber that leaves while events are published to it.
        sub = d.client()
        sub.ok("subscribe", {"topics": ["gone.*"]})
        pub = d.client()
        sub.close()
        for i in range(100):
            pub.ok("publish", {"topic": f"gone.{i}", "data": i})
        # An external agent's requester that leaves; the agent answers afterwards.
        agent = d.client()
        agent.ok("agents.register", {"name": "answerer"})
        req = d.client()
        req.send({"id": "x", "agent": "answerer", "action": "a", "data": {}})
        q = agent.recv()
        req.close()
        time.sleep(0.05)
        agent.send({"reply_to": q["id"], "status": "success", "data": {}})
        # The daemon may refuse the answer (UNKNOWN_REQUEST: requester gone) or drop it silently.
        agent.send({"id": "after", "action": "ping"})
        while True:
            r = agent.recv()
            if r.get("id") == "after":
                assert r["status"] == "success", r
                break
            assert r["status"] == "error" and r["error"]["code"] == "UNKNOWN_REQUEST", r
        # Wait past the sleep so the late plugin answer happens.
        time.sleep(0.2)
        assert_alive(d)
        h = pub.ok("health")
        assert h["connections"] >= 2
        pub.close()
        agent.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_garbage_binary():
    d = Daemon()
    try:
        rng = random.Random(1234)
        # Random bytes with newlines: every line gets an error reply; the connection survives.
        c = d.client()
        lines = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"") for _ in
                 range(200)]
        lines = [l for l in lines if l.strip(b" \t\r\x0b\x0c")]
        c.send_raw(b"\n".join(lines) + b"\n" + b'{"id":"survived","action":"ping"}\n')
        while True:
            r = c.recv()
            if r.get("id") == "survived":
                assert r["status"] == "success", r
                break
            assert r["status"] == "error" and r["error"]["code"] in ("INVALID_JSON", "INVALID_REQUEST"), r
        c.close()
        # Garbage without any newline, then gone.
        c = d.client()
        c.send_raw(os.urandom(256 * 1024).replace(b"\n", b"\x00"))
        c.close()
        # NUL bytes inside a line.
        c = d.client()
        r = raw_line(c, b'{"id":"n","action":"ping"\x00}\n')
        assert r["status"] == "error" and r["error"]["code"] in ("INVALID_JSON", "INVALID_REQUEST"), r
        r = raw_line(c, b'\x00\x00\x00\n')
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_JSON", r
        assert c.ok("ping") == {"pong": True}
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_deeply_nested_json():
    """Nesting within the line limit must not crash the daemon (a recursive
    parser overflows its stack on ~100000 levels)."""
    d = Daemon()
    try:
        c = d.client()
        for depth in (1000, 100000, 400000):
            for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
                c.send_raw(opener * depth + b"1" + closer * depth + b"\n")
                try:
                    r = c.recv()
                except (EOFError, OSError):
                    try:
                        d.proc.wait(2 * SCALE)
                    except Exception:
                        pass
                    raise AssertionError(f"connection dropped on depth {depth} {opener!r}; daemon exit "
                                         f"status {d.proc.poll()}")
                assert r["status"] == "error", r
                assert r["error"]["code"] in ("INVALID_JSON", "INVALID_REQUEST", "LINE_TOO_LONG"), r
                assert c.ok("ping") == {"pong": True}
        c.close()
        assert_alive(d)
    finally:
        d.cleanup()


def test_bad_client_does_not_disturb_others():
    d = Daemon()
    try:
        good = d.client()
        good.ok("subscribe", {"topics": ["steady"]})
        bad = d.client()
        bad.send_raw(b"{{{{\n" * 1000 + b"\xff" * 5000 + b"\n")
        # The good client is served while the bad one is being refused.
        for i in range(50):
            assert good.ok("ping") == {"pong": True}
            good.ok("publish", {"topic": "steady", "data": i})
        for i in range(50):
            assert good.next_event()["data"] == i
        errors = 0
        while errors < 1001:
            r = bad.recv()
            assert r["status"] == "error", r
            errors += 1
        assert bad.ok("ping") == {"pong": True}
        bad.close()
        good.close()
        assert_alive(d)
    finally:
        d.cleanup()


run_tests(globals())
