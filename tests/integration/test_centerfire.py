"""Centerfire per-agent sockets (orchestrator-<agent>.sock) through the real
daemon: one raw JSON request per connection, the documented Centerfire reply
shapes, and sockets that follow agent registration."""
import json
import os
import re
import shlex
import socket
import stat
import subprocess
import time

from enslib import SCALE, Daemon, run_tests

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
    assert reply.get("status") == "success", reply
    assert set(reply) == {"id", "status", "data", "timestamp", "processing_time_ms"}, reply
    assert reply["id"] == rid, reply
    assert reply["data"] == data, reply
    assert ISO_Z.match(reply["timestamp"]), reply
    assert isinstance(reply["processing_time_ms"], (int, float)) and reply["processing_time_ms"] >= 0, reply


def check_error(reply, rid, code):
    assert reply.get("status") == "error", reply
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
        check_error(one_reply(p.stdout), None, "INVALID_JSON")
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
        check_error(cf_socket(path, '{"id":{},"action":"echo"}\n'), None, "INVALID_REQUEST")
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


run_tests(globals())
