"""KSI multi-socket dialect through the real daemon: every command on the five
KSI sockets, with KSI's exact reply shapes, error codes and the
one-command-per-connection rule (except AGENT_CONNECTION connect)."""
import json
import os
import re
import socket
import subprocess
import sys
import time

from enslib import SCALE, Daemon, run_tests

HERE = os.path.dirname(os.path.abspath(__file__))
SPAWNED_AGENT = os.path.join(HERE, "ksi_spawned_agent.py")
KSI_SOCKETS = ["admin.sock", "agents.sock", "messaging.sock", "state.sock", "completion.sock"]
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


# ------------------------------------------------------------------ helpers

def wait_until(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout * SCALE
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def connect(d, name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    s.connect(d.path(name))
    return s


def read_line(s, buf=b""):
    """Returns (line, rest) or (None, buf) when the peer closed first."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line, rest


def assert_closed(s, rest=b""):
    """The daemon closes a KSI connection after answering its one command."""
    assert rest == b"", f"unexpected extra bytes after the reply: {rest!r}"
    chunk = s.recv(65536)
    assert chunk == b"", f"expected the daemon to close the connection, got {chunk!r}"


def send_line(d, sock_name, line):
    """Sends raw bytes (one line) on a fresh connection; returns the reply
    object after checking the daemon closed the connection."""
    s = connect(d, sock_name)
    try:
        if isinstance(line, str):
            line = line.encode()
        s.sendall(line)
        raw, rest = read_line(s)
        assert raw is not None, f"no reply to {line!r}"
        reply = json.loads(raw)
        assert_closed(s, rest)
        return reply
    finally:
        s.close()


def command(d, cmd, parameters=None, sock_name="admin.sock", **extra):
    msg = {"command": cmd, "version": "2.0", "parameters": parameters if parameters is not None else {}}
    msg.update(extra)
    return send_line(d, sock_name, json.dumps(msg) + "\n")


def check_success(reply, cmd):
    assert reply.get("status") == "success", reply
    assert set(reply) == {"status", "command", "metadata", "result"}, reply
    assert reply["command"] == cmd, reply
    assert "type" not in reply
    assert isinstance(reply["metadata"], dict), reply
    assert ISO_Z.match(reply["metadata"]["timestamp"]), reply
    assert isinstance(reply["result"], dict), reply
    return reply["result"]


def check_error(reply, cmd, code, field=None):
    """The handler-level KSI error shape."""
    assert reply.get("status") == "error", reply
    assert set(reply) == {"status", "command", "metadata", "error", "result"}, reply
    assert reply["command"] == cmd, reply
    assert reply["result"] is None, reply
    assert ISO_Z.match(reply["metadata"]["timestamp"]), reply
    err = reply["error"]
    assert set(err) == {"code", "message", "timestamp", "details"}, err
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    assert ISO_Z.match(err["timestamp"]), reply
    if field is not None:
        assert isinstance(err["details"], dict) and err["details"].get("field") == field, reply
    return err


def check_line_error(reply, code):
    """The dispatcher's smaller error shape (no command/metadata/result)."""
    assert reply.get("status") == "error", reply
    assert set(reply) == {"status", "error"}, reply
    err = reply["error"]
    assert set(err) == {"code", "message", "timestamp"}, err
    assert err["code"] == code, reply
    assert isinstance(err["message"], str) and err["message"], reply
    assert ISO_Z.match(err["timestamp"]), reply
    return err


class Persistent:
    """A KSI connection opened with AGENT_CONNECTION connect: stays open."""

    def __init__(self, d, agent_id, sock_name="messaging.sock"):
        self.s = connect(d, sock_name)
        self.buf = b""
        self.send("AGENT_CONNECTION", {"action": "connect", "agent_id": agent_id})
        self.connect_reply = self.recv()

    def send(self, cmd, parameters):
        msg = {"command": cmd, "version": "2.0", "parameters": parameters}
        self.s.sendall((json.dumps(msg) + "\n").encode())

    def recv(self):
        line, self.buf = read_line(self.s, self.buf)
        if line is None:
            raise EOFError("the daemon closed the persistent KSI connection")
        return json.loads(line)

    def close(self):
        self.s.close()


def check_event(ev, type_, from_):
    assert "status" not in ev and "command" not in ev, ev
    assert isinstance(ev["id"], str) and ev["id"], ev
    assert ev["type"] == type_, ev
    assert ev["from"] == from_, ev
    assert ISO_Z.match(ev["timestamp"]), ev


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()  # a zombie waiting for its reaper is gone
    except FileNotFoundError:
        return False


def agents(d):
    return check_success(command(d, "GET_AGENTS", sock_name="agents.sock"), "GET_AGENTS")["agents"]


# ------------------------------------------------------------------ tests

def test_health_check_admin_sock():
    d = Daemon()
    try:
        r = check_success(command(d, "HEALTH_CHECK"), "HEALTH_CHECK")
        assert r["status"] == "healthy", r
        assert isinstance(r["uptime"], (int, float)), r
        assert isinstance(r["version"], str) and r["version"], r
        assert isinstance(r["node_id"], str) and r["node_id"], r
        assert set(r["managers"]) >= {"state", "process", "agent", "message_bus"}, r
        for m in r["managers"].values():
            assert m["status"] == "active", r
        assert r["managers"]["agent"]["agents"] >= 1, r  # the echo plugin agent
        # Any command works on any of the five sockets, as in KSI.
        for name in KSI_SOCKETS:
            assert os.path.exists(d.path(name)), name
            check_success(command(d, "HEALTH_CHECK", sock_name=name), "HEALTH_CHECK")
        # version and parameters may be omitted.
        check_success(send_line(d, "admin.sock", '{"command":"HEALTH_CHECK"}\n'), "HEALTH_CHECK")
    finally:
        d.cleanup()


def test_get_processes_empty():
    d = Daemon()
    try:
        r = check_success(command(d, "GET_PROCESSES"), "GET_PROCESSES")
        assert r["processes"] == [] and r["total"] == 0, r
    finally:
        d.cleanup()


def test_register_agent_record_survives_connection():
    d = Daemon()
    try:
        r = check_success(command(d, "REGISTER_AGENT", {"agent_id": "planner", "role": "planning",
                                                        "capabilities": ["plan", "review"]}, "agents.sock"),
                          "REGISTER_AGENT")
        assert r == {"status": "registered", "agent_id": "planner", "role": "planning",
                     "capabilities": ["plan", "review"]}, r
        r = check_success(command(d, "REGISTER_AGENT", {"agent_id": "coder", "role": "coding",
                                                        "capabilities": "write, test ,debug"}, "agents.sock"),
                          "REGISTER_AGENT")
        assert r == {"status": "registered", "agent_id": "coder", "role": "coding",
                     "capabilities": ["write", "test", "debug"]}, r
        # Both connections are closed; the records stay.
        a = agents(d)
        assert a["planner"]["status"] == "registered", a
        assert a["planner"]["role"] == "planning", a
        assert a["planner"]["capabilities"] == ["plan", "review"], a
        assert a["coder"]["status"] == "registered", a
        assert a["coder"]["capabilities"] == ["write", "test", "debug"], a
        assert a["echo"]["status"] == "active", a
        # A request to a registered-but-not-connected agent says so.
        c = d.client()
        reply = c.request("plan", {}, agent="planner", timeout_ms=2000)
        assert reply["status"] == "error" and reply["error"]["code"] == "AGENT_NOT_CONNECTED", reply
        c.close()
    finally:
        d.cleanup()


def test_get_agents_lists_plugin_agent():
    d = Daemon()
    try:
        a = agents(d)
        assert "echo" in a, a
        assert set(a["echo"]) >= {"role", "status", "capabilities"}, a
        assert a["echo"]["status"] == "active", a
        assert "echo" in a["echo"]["capabilities"], a
    finally:
        d.cleanup()


def test_spawn_agent_runs_the_spawn_command():
    d = Daemon(settings={"spawn-command": repr([sys.executable, SPAWNED_AGENT, "{agent_id}", "{task}"])})
    try:
        r = check_success(command(d, "SPAWN_AGENT", {"task": "review the diff", "agent_id": "worker1",
                                                     "model": "m-small", "role": "reviewer"}, "agents.sock"),
                          "SPAWN_AGENT")
        assert set(r) == {"agent", "selection", "process_id"}, r
        ag = r["agent"]
        assert r["process_id"] == ag["process_id"], r  # where ksi_client's spawn_agent reads it
        assert set(ag) >= {"id", "process_id", "pid", "composition", "role", "capabilities", "status", "task",
                           "model"}, ag
        assert ag["id"] == "worker1" and ag["status"] == "active", ag
        assert ag["task"] == "review the diff" and ag["model"] == "m-small" and ag["role"] == "reviewer", ag
        assert isinstance(ag["process_id"], str) and ag["process_id"], ag
        assert isinstance(ag["capabilities"], list), ag

        # The spawned program registers itself on the native socket.
        wait_until(lambda: agents(d).get("worker1", {}).get("status") == "active", what="worker1 active")
        procs = check_success(command(d, "GET_PROCESSES"), "GET_PROCESSES")
        assert procs["total"] == 1, procs
        p = procs["processes"][0]
        assert p["process_id"] == ag["process_id"] and p["agent_id"] == "worker1", p
        assert p["status"] == "running" and str(p["pid"]) == str(ag["pid"]), p
        assert p["task"] == "review the diff" and p["model"] == "m-small", p
        assert p["command"] == [sys.executable, SPAWNED_AGENT, "worker1", "review the diff"], p
        assert ISO_Z.match(p["started_at"]), p
        os.kill(int(p["pid"]), 0)  # really running

        c = d.client()
        got = c.ok("echo", {"hello": 1}, agent="worker1", timeout_ms=int(5000 * SCALE))
        assert got == {"hello": 1, "spawned_as": "worker1", "task": "review the diff"}, got
        c.close()

        # The daemon terminates its agent processes when it stops.
        assert d.stop() == 0
        wait_until(lambda: not alive(int(p["pid"])), what="spawned agent gone after daemon stop")
    finally:
        d.cleanup()


def test_spawn_agent_errors():
    d = Daemon()
    try:
        err = check_error(command(d, "SPAWN_AGENT", {"task": "x"}, "agents.sock"), "SPAWN_AGENT", "SPAWN_FAILED")
        assert "spawn-command" in err["message"], err
        check_error(command(d, "SPAWN_AGENT", {}, "agents.sock"), "SPAWN_AGENT", "INVALID_PARAMETERS", field="task")
        r = check_success(command(d, "GET_PROCESSES"), "GET_PROCESSES")
        assert r["total"] == 0, r
    finally:
        d.cleanup()


def test_agent_connection_subscribe_publish_event():
    d = Daemon()
    alice = None
    try:
        alice = Persistent(d, "alice")
        r = check_success(alice.connect_reply, "AGENT_CONNECTION")
        assert r == {"status": "connected", "agent_id": "alice", "action": "connect"}, r
        assert agents(d)["alice"]["status"] == "active"

        r = check_success(command(d, "SUBSCRIBE", {"agent_id": "alice", "event_types": ["BROADCAST", "TASK_DONE"]},
                                  "messaging.sock"), "SUBSCRIBE")
        sub = r["subscription"]
        assert sub["status"] == "active", r
        assert sorted(sub["subscribed_to"]) == ["BROADCAST", "TASK_DONE"], r
        assert set(sub["all_subscriptions"]) >= {"BROADCAST", "TASK_DONE"}, r
        assert isinstance(r["message_bus"]["total_subscriptions"], int), r

        # Not subscribed: never reaches alice.  Then one she subscribed to.
        r = check_success(command(d, "PUBLISH", {"from_agent": "bob", "event_type": "UNRELATED",
                                                 "payload": {"n": 0}}, "messaging.sock"), "PUBLISH")
        assert r["delivery"]["status"] == "published", r
        r = check_success(command(d, "PUBLISH", {"from_agent": "bob", "event_type": "BROADCAST",
                                                 "payload": {"message": "hello all", "n": 1, "nested": {"k": [1]}}},
                                  "messaging.sock"), "PUBLISH")
        assert r["delivery"]["status"] == "published", r
        assert r["delivery"]["delivered"] >= 1, r
        assert isinstance(r["delivery"]["seq"], int), r

        ev = alice.recv()
        check_event(ev, "BROADCAST", "bob")
        assert ev["message"] == "hello all" and ev["n"] == 1 and ev["nested"] == {"k": [1]}, ev
        assert "payload" not in ev, ev

        check_success(command(d, "PUBLISH", {"from_agent": "bob", "event_type": "TASK_DONE",
                                             "payload": {"task": "t1"}}, "messaging.sock"), "PUBLISH")
        ev = alice.recv()
        check_event(ev, "TASK_DONE", "bob")
        assert ev["task"] == "t1", ev
    finally:
        if alice:
            alice.close()
        d.cleanup()


def test_direct_message_reaches_target_connection():
    d = Daemon()
    bob = None
    try:
        bob = Persistent(d, "bob", sock_name="agents.sock")
        check_success(bob.connect_reply, "AGENT_CONNECTION")
        r = check_success(command(d, "PUBLISH", {"from_agent": "alice", "event_type": "DIRECT_MESSAGE",
                                                 "payload": {"to": "bob", "message": "psst"}}, "messaging.sock"),
                          "PUBLISH")
        assert r["delivery"]["status"] == "published", r
        assert r["delivery"]["to_status"] == "delivered", r
        ev = bob.recv()
        check_event(ev, "DIRECT_MESSAGE", "alice")
        assert ev["to"] == "bob" and ev["message"] == "psst", ev

        # A recipient that is not connected.
        r = check_success(command(d, "PUBLISH", {"from_agent": "alice", "event_type": "DIRECT_MESSAGE",
                                                 "payload": {"to": "nobody", "message": "x"}}, "messaging.sock"),
                          "PUBLISH")
        assert r["delivery"]["to_status"] == "not_connected", r
    finally:
        if bob:
            bob.close()
        d.cleanup()


def test_agent_connection_disconnect():
    d = Daemon()
    carol = None
    try:
        carol = Persistent(d, "carol")
        check_success(carol.connect_reply, "AGENT_CONNECTION")
        assert agents(d)["carol"]["status"] == "active"
        carol.send("AGENT_CONNECTION", {"action": "disconnect", "agent_id": "carol"})
        r = check_success(carol.recv(), "AGENT_CONNECTION")
        assert r == {"status": "disconnected", "agent_id": "carol", "action": "disconnect"}, r
        assert "carol" not in agents(d)
        err = check_error(command(d, "SUBSCRIBE", {"agent_id": "carol", "event_types": ["X"]}, "messaging.sock"),
                          "SUBSCRIBE", "AGENT_NOT_CONNECTED")
        assert "carol" in err["message"], err
        carol.close()
        carol = None

        # Closing a persistent connection disconnects the agent as well.
        dave = Persistent(d, "dave")
        check_success(dave.connect_reply, "AGENT_CONNECTION")
        assert agents(d)["dave"]["status"] == "active"
        dave.close()
        wait_until(lambda: "dave" not in agents(d), what="dave gone after close")
    finally:
        if carol:
            carol.close()
        d.cleanup()


def test_agent_connection_invalid_action():
    d = Daemon()
    try:
        check_error(command(d, "AGENT_CONNECTION", {"action": "dance", "agent_id": "x"}, "messaging.sock"),
                    "AGENT_CONNECTION", "INVALID_ACTION", field="action")
        check_error(command(d, "AGENT_CONNECTION", {"agent_id": "x"}, "messaging.sock"),
                    "AGENT_CONNECTION", "INVALID_PARAMETERS", field="action")
        check_error(command(d, "AGENT_CONNECTION", {"action": "connect"}, "messaging.sock"),
                    "AGENT_CONNECTION", "INVALID_PARAMETERS", field="agent_id")
    finally:
        d.cleanup()


def test_subscribe_not_connected_agent():
    d = Daemon()
    try:
        err = check_error(command(d, "SUBSCRIBE", {"agent_id": "ghost", "event_types": ["BROADCAST"]},
                                  "messaging.sock"), "SUBSCRIBE", "AGENT_NOT_CONNECTED")
        assert "ghost" in err["message"], err
        check_error(command(d, "SUBSCRIBE", {"agent_id": "ghost", "event_types": []}, "messaging.sock"),
                    "SUBSCRIBE", "INVALID_PARAMETERS", field="event_types")
        check_error(command(d, "SUBSCRIBE", {"event_types": ["X"]}, "messaging.sock"),
                    "SUBSCRIBE", "INVALID_PARAMETERS", field="agent_id")
    finally:
        d.cleanup()


def test_agent_kv():
    d = Daemon()
    try:
        value = {"plan": ["a", "b"], "n": 3}
        r = check_success(command(d, "SET_AGENT_KV", {"key": "goal", "value": value}, "state.sock"), "SET_AGENT_KV")
        assert r == {"key": "goal", "status": "set"}, r
        r = check_success(command(d, "GET_AGENT_KV", {"key": "goal"}, "state.sock"), "GET_AGENT_KV")
        assert r == {"key": "goal", "value": value, "found": True}, r
        # The default owner is "system".
        r = check_success(command(d, "GET_AGENT_KV", {"key": "goal", "owner_agent_id": "system"}, "state.sock"),
                          "GET_AGENT_KV")
        assert r["found"] is True and r["value"] == value, r
        c = d.client()
        got = c.ok("kv.get", {"agent": "system", "key": "goal"})
        assert got["found"] is True and got["value"] == value, got
        c.close()
        # Missing key.
        r = check_success(command(d, "GET_AGENT_KV", {"key": "nope"}, "state.sock"), "GET_AGENT_KV")
        assert r == {"key": "nope", "value": None, "found": False}, r
        # One key space, keyed by the key alone (as KSI's server): the owner
        # is the writer's metadata, agent_id names no space.
        check_success(command(d, "SET_AGENT_KV", {"key": "goal", "value": "mine", "owner_agent_id": "ag1",
                                                  "agent_id": "ag1"}, "state.sock"), "SET_AGENT_KV")
        for params in ({"key": "goal"}, {"key": "goal", "agent_id": "ag1"}, {"key": "goal", "agent_id": "other"},
                       {"key": "goal", "owner_agent_id": "ag2"}):
            r = check_success(command(d, "GET_AGENT_KV", params, "state.sock"), "GET_AGENT_KV")
            assert r == {"key": "goal", "value": "mine", "found": True}, (params, r)
        # A stored null reads as not found, as in KSI.
        check_success(command(d, "SET_AGENT_KV", {"key": "nothing", "value": None}, "state.sock"), "SET_AGENT_KV")
        r = check_success(command(d, "GET_AGENT_KV", {"key": "nothing"}, "state.sock"), "GET_AGENT_KV")
        assert r == {"key": "nothing", "value": None, "found": False}, r
        # Parameter errors.
        check_error(command(d, "SET_AGENT_KV", {"key": "k"}, "state.sock"), "SET_AGENT_KV", "INVALID_PARAMETERS",
                    field="value")
        check_error(command(d, "SET_AGENT_KV", {"value": 1}, "state.sock"), "SET_AGENT_KV", "INVALID_PARAMETERS",
                    field="key")
        check_error(command(d, "GET_AGENT_KV", {"key": 5}, "state.sock"), "GET_AGENT_KV", "INVALID_PARAMETERS",
                    field="key")
    finally:
        d.cleanup()


def test_completion_without_provider_is_a_clear_error():
    d = Daemon(settings={"disabled-plugins": "['provider-local']"})  # no provider at all
    try:
        err = check_error(command(d, "COMPLETION", {"prompt": "hi", "client_id": "c1"}, "completion.sock"),
                          "COMPLETION", "NO_PROVIDER")
        assert len(err["message"]) > 10, err
    finally:
        d.cleanup()


def test_line_level_errors():
    d = Daemon()
    try:
        err = check_line_error(send_line(d, "admin.sock", b"{not json\n"), "INVALID_JSON")
        assert "valid JSON" in err["message"], err
        check_line_error(send_line(d, "admin.sock", b'{"version":"2.0","parameters":{}}\n'), "INVALID_COMMAND")
        check_line_error(send_line(d, "agents.sock", b'{"command":"HEALTH_CHECK","version":"1.0"}\n'),
                         "INVALID_COMMAND")
        check_line_error(send_line(d, "state.sock", b'{"command":"HEALTH_CHECK","version":"2.0","parameters":[1]}\n'),
                         "INVALID_COMMAND")
        check_line_error(send_line(d, "messaging.sock", b'[1,2]\n'), "INVALID_COMMAND")
        err = check_line_error(command(d, "MAKE_COFFEE", {}, "completion.sock"), "UNKNOWN_COMMAND")
        assert "MAKE_COFFEE" in err["message"], err
        # The daemon still serves afterwards.
        check_success(command(d, "HEALTH_CHECK"), "HEALTH_CHECK")
    finally:
        d.cleanup()


def test_invalid_parameters_name_the_field():
    d = Daemon()
    try:
        check_error(command(d, "REGISTER_AGENT", {"agent_id": "a"}, "agents.sock"), "REGISTER_AGENT",
                    "INVALID_PARAMETERS", field="role")
        check_error(command(d, "REGISTER_AGENT", {"agent_id": 7, "role": "r"}, "agents.sock"), "REGISTER_AGENT",
                    "INVALID_PARAMETERS", field="agent_id")
        check_error(command(d, "PUBLISH", {"from_agent": "a", "event_type": "X", "payload": "text"}, "messaging.sock"),
                    "PUBLISH", "INVALID_PARAMETERS", field="payload")
        check_error(command(d, "PUBLISH", {"from_agent": "a", "payload": {}}, "messaging.sock"),
                    "PUBLISH", "INVALID_PARAMETERS", field="event_type")
        check_error(command(d, "SPAWN_AGENT", {"task": 3}, "agents.sock"), "SPAWN_AGENT", "INVALID_PARAMETERS")
        # What the core refuses is said with the client's field names.
        err = check_error(command(d, "PUBLISH", {"from_agent": "a", "event_type": "news.*", "payload": {}},
                                  "messaging.sock"), "PUBLISH", "INVALID_PARAMETERS", field="event_type")
        assert err["message"].startswith("PUBLISH: parameters.event_type must be "), err
        assert err["details"]["fields"] == [{"field": "event_type", "expected": err["details"]["expected"]}], err
        err = check_error(command(d, "REGISTER_AGENT", {"agent_id": "bad name!", "role": "r"}, "agents.sock"),
                          "REGISTER_AGENT", "INVALID_PARAMETERS", field="agent_id")
        assert "parameters.agent_id" in err["message"], err
    finally:
        d.cleanup()


def test_one_command_per_connection():
    d = Daemon()
    try:
        s = connect(d, "admin.sock")
        try:
            # Two commands in one write: only the first is answered, then the close.
            two = (json.dumps({"command": "HEALTH_CHECK", "version": "2.0", "parameters": {}}) + "\n" +
                   json.dumps({"command": "GET_PROCESSES", "version": "2.0", "parameters": {}}) + "\n")
            s.sendall(two.encode())
            line, rest = read_line(s)
            check_success(json.loads(line), "HEALTH_CHECK")
            assert_closed(s, rest)
        finally:
            s.close()
    finally:
        d.cleanup()


def test_nc_shell_pipeline():
    d = Daemon()
    try:
        cmd = ("echo '{\"command\":\"HEALTH_CHECK\",\"version\":\"2.0\",\"parameters\":{}}' | nc -U "
               + d.path("admin.sock"))
        p = subprocess.run(cmd, shell=True, capture_output=True, timeout=10 * SCALE)
        assert p.returncode == 0, p
        lines = p.stdout.decode().splitlines()
        assert len(lines) == 1, p.stdout
        r = check_success(json.loads(lines[0]), "HEALTH_CHECK")
        assert r["status"] == "healthy", r

        cmd = ("echo '{\"command\":\"SET_AGENT_KV\",\"parameters\":{\"key\":\"via-nc\",\"value\":42}}' | nc -U "
               + d.path("state.sock"))
        p = subprocess.run(cmd, shell=True, capture_output=True, timeout=10 * SCALE)
        assert p.returncode == 0, p
        check_success(json.loads(p.stdout), "SET_AGENT_KV")
        r = check_success(command(d, "GET_AGENT_KV", {"key": "via-nc"}, "state.sock"), "GET_AGENT_KV")
        assert r["value"] == 42 and r["found"] is True, r
    finally:
        d.cleanup()


def test_zz_shutdown_last():
    d = Daemon()
    try:
        r = check_success(command(d, "SHUTDOWN"), "SHUTDOWN")
        assert r["status"] == "shutting_down" and r["message"] == "SHUTTING DOWN", r
        assert isinstance(r["details"], str), r
        rc = d.proc.wait(10 * SCALE)
        assert rc == 0, (rc, d.read_log())
        for name in ["ensemble.sock"] + KSI_SOCKETS + ["orchestrator-echo.sock"]:
            assert not os.path.exists(d.path(name)), f"{name} left behind"
    finally:
        d.cleanup()


def test_admin_room_beyond_max_connections():
    """Idle clients that fill max-connections leave admin.sock its own room
    (admin-connections), so an administrator can still ask for health; that
    room is bounded too."""
    d = Daemon(settings={"max-connections": "4", "admin-connections": "2"})
    held = []
    try:
        def refused(name):
            s = connect(d, name)
            try:
                line, _ = read_line(s)
                assert line is not None, f"{name}: closed without a word"
                err = json.loads(line)
                assert err["status"] == "error" and err["error"]["code"] == "OVERLOADED", err
                assert_closed(s)
            finally:
                s.close()

        def admin_agent(name):
            """An idle connection held on admin.sock (an agent connected over KSI)."""
            s = connect(d, "admin.sock")
            s.sendall((json.dumps({"command": "AGENT_CONNECTION", "version": "2.0",
                                   "parameters": {"action": "connect", "agent_id": name}}) + "\n").encode())
            line, _ = read_line(s)
            check_success(json.loads(line), "AGENT_CONNECTION")
            return s

        # Four idle native clients fill max-connections (each known to be in:
        # it answered a ping), once the readiness probe's connection is gone.
        first = d.client()
        wait_until(lambda: first.ok("health")["connections"] == 1, what="only one connection")
        held.append(first)
        for _ in range(3):
            c = d.client()
            c.ok("ping")
            held.append(c)
        # The next one on any ordinary socket is refused.
        refused("ensemble.sock")
        refused("agents.sock")
        # admin.sock still answers, one command after another.
        for _ in range(3):
            health = check_success(command(d, "HEALTH_CHECK"), "HEALTH_CHECK")
            assert health["status"] == "healthy", health
        # Its room is admin-connections: two idle ones fill it too.
        held += [admin_agent("adm1"), admin_agent("adm2")]
        refused("admin.sock")
        # One leaves: admin.sock has room again (once the daemon saw it go;
        # until then a try is refused, or reset as its unread command meets
        # the close); the ordinary sockets are still full.
        held.pop().close()

        def health_answers():
            try:
                return command(d, "HEALTH_CHECK").get("status") == "success"
            except OSError:
                return False
        wait_until(health_answers, what="admin room again")
        refused("ensemble.sock")
    finally:
        for s in held:
            s.close()
        d.cleanup()



def test_core_verbs_behind_the_table():
    """The native verbs KSI's rows stand on: bus.stats, agents.register
    replace (a second connection takes the name over), publish's reply."""
    d = Daemon()
    a = b = None
    try:
        a, b = d.client(), d.client()
        a.ok("agents.register", {"name": "twin", "replace": True})
        a.ok("subscribe", {"topics": ["news.*", "COMPLETION_RESULT"]})
        stats = b.ok("bus.stats")
        assert stats["connected_agents"] == ["twin"], stats
        assert stats["subscriptions"] == {"COMPLETION_RESULT": ["twin"], "news.*": ["twin"]}, stats
        assert stats["connections"] >= 2 and isinstance(stats["events_published"], int), stats
        # Without replace on either side the name stays taken.
        r = b.request("agents.register", {"name": "twin"})
        assert r["status"] == "error" and r["error"]["code"] == "AGENT_EXISTS", r
        b.ok("agents.register", {"name": "twin", "replace": True})
        r = b.ok("publish", {"topic": "hello", "to": "twin", "data": {"n": 1}})
        assert r["topic"] == "hello" and r["to"] == "twin" and r["target_found"] is True, r
        assert b.next_event()["data"] == {"n": 1}
        stats = a.ok("bus.stats")
        assert stats["connected_agents"] == ["twin"], stats
        assert stats["subscriptions"]["news.*"] != ["twin"], stats  # a serves twin no more: named by its id
        # A plugin's agent is never taken over.
        r = b.request("agents.register", {"name": "echo", "replace": True})
        assert r["status"] == "error" and r["error"]["code"] == "AGENT_EXISTS", r
        r = b.request("agents.register", {"name": "x", "replace": "yes"})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "replace", r
    finally:
        for c in (a, b):
            if c:
                c.close()
        d.cleanup()


run_tests(globals())
