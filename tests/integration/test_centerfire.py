"""Centerfire per-agent sockets (orchestrator-<agent>.sock) through the real
daemon: one raw JSON request per connection, the documented Centerfire reply
shapes, and sockets that follow agent registration.

The conformance tests at the end behave as Centerfire's own clients do
(CenterfireDigital/centerfire-intelligence orchestrator-go): test-client.go
writes one JSON object with no newline, keeps its side open and does one
1024-byte read within 2 s; the agent proxy writes a line with request_id and
client_id, reads once and unmarshals the bytes (success, error, request_id);
its health check sends "ping"."""
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time

from enslib import SCALE, Daemon, gv, run_tests

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout * SCALE
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def echo_socket(d):
    """orchestrator-echo.sock, once it accepts connections.  (The daemon logs
    "ready" before it creates the Centerfire sockets of agents registered at
    start; see the report.  Waiting keeps these tests about Centerfire.)"""
    path = d.path("orchestrator-echo.sock")

    def accepting():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    wait_until(accepting, what="orchestrator-echo.sock accepting")
    return path


def shell(cmd):
    p = subprocess.run(cmd, shell=True, capture_output=True, timeout=10 * SCALE)
    return p


def one_reply(stdout):
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def cf_socket(path, payload, half_close=True):
    """Sends @payload on a fresh connection; returns (reply, closed_by_daemon)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    try:
        s.connect(path)
        s.sendall(payload if isinstance(payload, bytes) else payload.encode())
        if half_close:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return one_reply(buf)
    finally:
        s.close()


def check_success(reply, rid, data):
    assert reply.get("status") == "success" and reply.get("success") is True, reply
    assert set(reply) - {"request_id"} == {"id", "status", "success", "data", "timestamp", "processing_time_ms"}, reply
    assert reply["id"] == rid, reply
    assert reply["data"] == data, reply
    assert ISO_Z.match(reply["timestamp"]), reply
    assert isinstance(reply["processing_time_ms"], (int, float)) and reply["processing_time_ms"] >= 0, reply


def check_error(reply, rid, code):
    assert reply.get("status") == "error" and reply.get("success") is False, reply
    assert {"id", "status", "error", "timestamp"} <= set(reply), reply
    assert "data" not in reply, reply
    assert reply["id"] == rid, reply
    err = reply["error"]
    assert set(err) >= {"code", "message", "details"}, err
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    assert isinstance(err["details"], dict), reply
    assert ISO_Z.match(reply["timestamp"]), reply
    return err


def test_echo_via_nc_pipeline():
    d = Daemon()
    try:
        path = echo_socket(d)
        req = '{"id":"r1","interface":"api","agent":"echo","action":"echo","data":{"x":1}}'
        p = shell(f"echo {shlex.quote(req)} | nc -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        check_success(one_reply(p.stdout), "r1", {"x": 1})
    finally:
        d.cleanup()


def test_raw_json_without_newline():
    d = Daemon()
    try:
        path = echo_socket(d)
        req = '{"id":"r2","interface":"claude-code","agent":"echo","action":"echo","data":{"environment":"test"}}'
        p = shell(f"printf '%s' {shlex.quote(req)} | nc -N -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        check_success(one_reply(p.stdout), "r2", {"environment": "test"})
        # The same from a plain socket that half-closes, and with no agent field.
        check_success(cf_socket(path, '{"id":"r3","interface":"web","action":"echo","data":{"y":[1,2]}}'),
                      "r3", {"y": [1, 2]})
        # The client's half-close comes before the agent answers: the reply
        # must still be written before the daemon closes.
        req = '{"id":"r3s","interface":"api","agent":"echo","action":"sleep","data":{"ms":50}}'
        p = shell(f"printf '%s' {shlex.quote(req)} | nc -N -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        check_success(one_reply(p.stdout), "r3s", {"slept_ms": 50})
    finally:
        d.cleanup()


def test_agent_error_shape():
    d = Daemon()
    try:
        path = echo_socket(d)
        req = json.dumps({"id": "r4", "interface": "api", "agent": "echo", "action": "fail",
                          "data": {"code": "NAMESPACE_COLLISION", "message": "Namespace already exists"}})
        p = shell(f"echo {shlex.quote(req)} | nc -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        err = check_error(one_reply(p.stdout), "r4", "NAMESPACE_COLLISION")
        assert err["message"] == "Namespace already exists", err
        # An action the agent does not have.
        check_error(cf_socket(path, '{"id":"r5","interface":"api","agent":"echo","action":"nope","data":{}}\n'),
                    "r5", "UNKNOWN_ACTION")
    finally:
        d.cleanup()


def test_wrong_agent_field():
    d = Daemon()
    try:
        path = echo_socket(d)
        req = '{"id":"r6","interface":"api","agent":"cf-naming","action":"echo","data":{}}'
        p = shell(f"echo {shlex.quote(req)} | nc -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        err = check_error(one_reply(p.stdout), "r6", "INVALID_REQUEST")
        assert "cf-naming" in err["message"], err
    finally:
        d.cleanup()


def test_malformed_json():
    d = Daemon()
    try:
        path = echo_socket(d)
        p = shell(f"echo '{{\"id\":\"r7\",' | nc -U {shlex.quote(path)}")
        assert p.returncode == 0, p
        check_error(one_reply(p.stdout), "", "INVALID_JSON")  # never a null id
        # The daemon keeps serving.
        check_success(cf_socket(path, '{"id":"r8","agent":"echo","action":"echo","data":{}}\n'), "r8", {})
    finally:
        d.cleanup()


def test_wrong_types():
    d = Daemon()
    try:
        path = echo_socket(d)
        # Fields of the wrong JSON type are answered, never read as if right.
        for req in ('{"id":"r9","action":{},"data":{}}', '{"id":"r9","action":["echo"]}', '{"id":"r9","action":7}'):
            err = check_error(cf_socket(path, req + "\n"), "r9", "INVALID_REQUEST")
            assert "action" in err["message"], err
        err = check_error(cf_socket(path, '{"id":"r10","agent":{},"action":"echo"}\n'), "r10", "INVALID_REQUEST")
        assert "agent" in err["message"], err
        err = check_error(cf_socket(path, '{"id":{},"action":"echo"}\n'), "", "INVALID_REQUEST")
        assert err["details"]["field"] == "id", err
        # The daemon keeps serving.
        check_success(cf_socket(path, '{"id":"r11","agent":"echo","action":"echo","data":{}}\n'), "r11", {})
    finally:
        d.cleanup()


def test_external_agent_gets_a_socket():
    d = Daemon()
    agent = other = None
    nc = None
    try:
        agent = d.client()
        r = agent.ok("agents.register", {"name": "cf-naming", "actions": ["allocate_namespace"]})
        assert r["name"] == "cf-naming", r
        path = d.path("orchestrator-cf-naming.sock")
        wait_until(lambda: os.path.exists(path), what="orchestrator-cf-naming.sock")
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode), oct(mode)
        assert stat.S_IMODE(mode) == 0o600, oct(mode)

        req = json.dumps({"id": "req_123", "interface": "claude-code", "agent": "cf-naming",
                          "action": "allocate_namespace", "data": {"environment": "test", "project": "centerfire"}})
        nc = subprocess.Popen(f"echo {shlex.quote(req)} | nc -U {shlex.quote(path)}", shell=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pushed = agent.recv()
        assert pushed["action"] == "allocate_namespace" and pushed["agent"] == "cf-naming", pushed
        assert pushed["data"] == {"environment": "test", "project": "centerfire"}, pushed
        agent.send({"reply_to": pushed["id"], "status": "success",
                    "data": {"namespace": "centerfire.test.ns1"}})
        out, errout = nc.communicate(timeout=10 * SCALE)
        assert nc.returncode == 0, (out, errout)
        check_success(one_reply(out), "req_123", {"namespace": "centerfire.test.ns1"})

        # An error answered by the external agent keeps its code and details.
        nc = subprocess.Popen(f"printf '%s' {shlex.quote(req.replace('req_123', 'req_124'))} | nc -N -U "
                              f"{shlex.quote(path)}", shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pushed = agent.recv()
        agent.send({"reply_to": pushed["id"], "status": "error",
                    "error": {"code": "NAMESPACE_COLLISION", "message": "Namespace already exists",
                              "details": {"existing_namespace": "centerfire.test.ns1"}}})
        out, errout = nc.communicate(timeout=10 * SCALE)
        assert nc.returncode == 0, (out, errout)
        err = check_error(one_reply(out), "req_124", "NAMESPACE_COLLISION")
        assert err["details"] == {"existing_namespace": "centerfire.test.ns1"}, err
        nc = None

        # Unregistering removes the socket.
        agent.ok("agents.unregister", {"name": "cf-naming"})
        wait_until(lambda: not os.path.exists(path), what="orchestrator-cf-naming.sock removed on unregister")

        # Disconnecting removes it too.
        other = d.client()
        other.ok("agents.register", {"name": "cf-struct"})
        spath = d.path("orchestrator-cf-struct.sock")
        wait_until(lambda: os.path.exists(spath), what="orchestrator-cf-struct.sock")
        other.close()
        other = None
        wait_until(lambda: not os.path.exists(spath), what="orchestrator-cf-struct.sock removed on disconnect")
        assert os.path.exists(echo_socket(d))
    finally:
        if nc:
            nc.kill()
            nc.wait()
        for c in (agent, other):
            if c:
                c.close()
        d.cleanup()



# ------------------------------------------------------------------ as Centerfire's clients behave

# test-client.go's one write: exactly these 86 bytes, no newline, no
# interface or agent member.
TEST_CLIENT_BYTES = b'{"id":"socket-test-001","action":"test","data":{"message":"Hello from socket client"}}'


def accepting(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def one_json_value(raw):
    """The bytes as Go's json.Unmarshal takes them: one value, nothing but
    white space after it."""
    text = raw.decode()
    value, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == "", raw
    return value


def barrier(d):
    """A round trip on another socket: the daemon's one loop has served what
    came before it (a wait on a condition, not a sleep)."""
    c = d.client()
    try:
        c.ok("ping")
    finally:
        c.close()


def nothing_yet(s):
    """No byte from the daemon so far (a read that would block)."""
    timeout = s.gettimeout()
    s.settimeout(0.0)
    try:
        got = s.recv(1024)
    except BlockingIOError:
        return True
    finally:
        s.settimeout(timeout)
    raise AssertionError(f"the daemon answered early: {got!r}")


def test_test_client_bytes_no_newline_side_kept_open():
    """test-client.go: one object without '\n', the socket kept open, one
    read of up to 1024 bytes within 2 s, then the close."""
    cf_dir = tempfile.mkdtemp(prefix="ens-cf-")
    d = Daemon(settings={"centerfire-socket-dir": gv(cf_dir)})
    try:
        path = os.path.join(cf_dir, "orchestrator-naming.sock")
        wait_until(lambda: accepting(path), what="orchestrator-naming.sock in centerfire-socket-dir")
        assert not os.path.exists(d.path("orchestrator-naming.sock")), "the socket is in the configured folder only"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
        assert len(TEST_CLIENT_BYTES) == 86
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(TEST_CLIENT_BYTES)   # and no shutdown: the side stays open
            s.settimeout(2 * SCALE)
            raw = s.recv(1024)             # the client's one read
            assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw
            reply = one_json_value(raw)
            assert reply["id"] == "socket-test-001", reply
            assert "status" in reply and "success" in reply, reply
            # "test" is not an action of naming: its error is the answer.
            check_error(reply, "socket-test-001", "UNKNOWN_ACTION")
            s.settimeout(10 * SCALE)
            assert s.recv(1024) == b"", "then the daemon closes"
        finally:
            s.close()
        # Gone with the daemon.
        d.stop()
        assert not os.path.exists(path), os.listdir(cf_dir)
    finally:
        d.cleanup()
        shutil.rmtree(cf_dir, ignore_errors=True)


def test_split_writes_and_nested_strings():
    d = Daemon()
    try:
        path = echo_socket(d)
        # One request in three writes: no answer before its last byte.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            for piece in (b'{"id":"sp1","act', b'ion":"echo","data":{"k":[1,{"n":'):
                s.sendall(piece)
                barrier(d)
                assert nothing_yet(s)
            s.sendall(b'2}]}}')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1024)
                assert chunk, buf
                buf += chunk
            check_success(one_json_value(buf), "sp1", {"k": [1, {"n": 2}]})
            assert s.recv(1024) == b""
        finally:
            s.close()

        # Strings holding braces, quotes and backslashes do not end the value.
        data = {"s": "}{\"\\", "t": "a\\\"}", "u": "[[[", "v": "\u00e9\u2603"}
        req = json.dumps({"id": "nest1", "action": "echo", "data": data}, ensure_ascii=False).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            s.sendall(req)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1024)
                assert chunk, buf
                buf += chunk
            check_success(one_json_value(buf), "nest1", data)
        finally:
            s.close()

        # Two values in one write: the first is the request, the rest is not read.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            s.sendall(b' \r\n {"id":"first","action":"echo","data":{"a":1}}{"id":"second","action":"echo"}')
            buf = b""
            while True:
                chunk = s.recv(1024)
                if not chunk:
                    break
                buf += chunk
            check_success(one_reply(buf), "first", {"a": 1})
        finally:
            s.close()
    finally:
        d.cleanup()


def test_agent_proxy_style_and_ping():
    """agent_proxy.go: a line {action, data?, client_id, request_id}, one read,
    json.Unmarshal into {success, data, error, request_id, timestamp}; its
    health check sends "ping" and reads success."""
    d = Daemon()
    try:
        path = echo_socket(d)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            s.sendall(b'{"action":"ping","client_id":"orchestrator","request_id":"health_1"}\n')
            raw = s.recv(1024)
            reply = one_json_value(raw)
            assert reply["success"] is True and reply["status"] == "success", reply
            assert reply["id"] == "health_1" and reply["request_id"] == "health_1", reply
            assert reply["data"] == {"agent": "echo", "pong": True}, reply
            assert ISO_Z.match(reply["timestamp"]), reply
        finally:
            s.close()
        # Without "data", the members beside the envelope are the data.
        reply = cf_socket(path, '{"action":"echo","client_id":"orchestrator","request_id":"r42"}\n', half_close=False)
        check_success(reply, "r42", {"client_id": "orchestrator"})
        assert reply["request_id"] == "r42", reply
        # ping on every built-in agent's socket, and no agent serves "ping" itself.
        for agent in ("naming", "struct", "semantic", "manager"):
            p = d.path(f"orchestrator-{agent}.sock")
            wait_until(lambda: accepting(p), what=f"orchestrator-{agent}.sock")
            reply = cf_socket(p, '{"id":"p","action":"ping"}')
            assert reply["success"] is True and reply["data"] == {"agent": agent, "pong": True}, reply
    finally:
        d.cleanup()


def test_replies_fit_the_test_clients_buffer():
    """test-client.go reads 1024 bytes once: every built-in agent's answer to
    an unknown action (the error that lists its actions) fits."""
    d = Daemon()
    try:
        for agent in ("naming", "struct", "semantic", "manager", "echo"):
            p = d.path(f"orchestrator-{agent}.sock")
            wait_until(lambda: accepting(p), what=f"orchestrator-{agent}.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10 * SCALE)
            try:
                s.connect(p)
                s.sendall(TEST_CLIENT_BYTES)
                raw = s.recv(1024)
                assert len(raw) < 1024 and raw.endswith(b"\n"), (agent, len(raw), raw)
                check_error(one_json_value(raw), "socket-test-001", "UNKNOWN_ACTION")
            finally:
                s.close()
    finally:
        d.cleanup()


def test_bad_input_without_newline():
    d = Daemon(settings={"max-line-bytes": "1024"})
    try:
        path = echo_socket(d)
        # An unfinished value, then EOF.
        err = check_error(cf_socket(path, '{"id":'), "", "INVALID_JSON")
        assert "malformed JSON" in err["message"], err
        # A value that is not an object, with no newline and the side kept open.
        for raw in (b"[1]", b'"text"', b"[1,[2,{}]]"):
            check_error(cf_socket(path, raw, half_close=False), "", "INVALID_REQUEST")
        # A number or literal ends at white space.
        check_error(cf_socket(path, "42 ", half_close=False), "", "INVALID_REQUEST")
        check_error(cf_socket(path, "nul\n", half_close=False), "", "INVALID_JSON")
        # The wrong types, without a newline.
        err = check_error(cf_socket(path, '{"request_id":"x1","action":5}', half_close=False), "x1", "INVALID_REQUEST")
        assert err["details"]["field"] == "action", err
        err = check_error(cf_socket(path, '{"id":"x2","action":"echo","agent":"other"}', half_close=False),
                          "x2", "INVALID_REQUEST")
        assert "other" in err["message"], err
        # Over max-line-bytes without the value's end: LINE_TOO_LONG, then the close.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            s.sendall(b'{"id":"big","action":"echo","data":{"s":"' + b"x" * 4096)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            check_error(one_reply(buf), "", "LINE_TOO_LONG")
        finally:
            s.close()
        # Nothing else disturbed: the other sockets and this one serve on.
        check_success(cf_socket(path, '{"id":"ok","action":"echo","data":{}}', half_close=False), "ok", {})
        assert d.client().ok("ping") is not None
    finally:
        d.cleanup()


run_tests(globals())
