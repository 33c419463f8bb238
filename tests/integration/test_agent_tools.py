"""Agents declare their actions as tools: a description and a JSON Schema of
the input, when they register (agents.register, an agent plugin's vtable).
The daemon lists them and checks every request against the schema before
the agent sees it: a request that does not fit gets INVALID_PARAMETERS
naming the field, from every transport and dialect."""
import json
import socket
import urllib.error
import urllib.request

from enslib import SCALE, Daemon, run_tests

ADD_SCHEMA = {
    "type": "object",
    "required": ["a", "b"],
    "additionalProperties": False,
    "properties": {"a": {"type": "number"}, "b": {"type": "number"},
                   "mode": {"enum": ["sum", "product"]},
                   "tags": {"type": "array", "items": {"type": "string", "minLength": 1}}},
}


def register(c, name, actions, **extra):
    return c.request("agents.register", {"name": name, "actions": actions, **extra})


def invalid(reply, field, words):
    assert reply["status"] == "error", reply
    err = reply["error"]
    assert err["code"] == "INVALID_PARAMETERS", reply
    assert err["details"]["field"] == field, reply
    assert words in err["details"]["expected"], reply
    assert err["message"] == f"{field} must be {err['details']['expected']}", reply


def nothing_pending(agent_conn):
    """The agent's connection has received nothing."""
    agent_conn.sock.settimeout(0.2)
    try:
        data = agent_conn.sock.recv(65536)
        raise AssertionError(f"the agent received {data!r}")
    except socket.timeout:
        pass
    finally:
        agent_conn.sock.settimeout(10 * SCALE)


def test_external_agent_declares_tools_and_requests_are_checked():
    d = Daemon()
    try:
        agent = d.client()
        r = register(agent, "calc", ["plain", {"name": "add", "description": "Adds a and b", "input_schema": ADD_SCHEMA}],
                     description="a calculator")
        assert r["status"] == "success", r
        assert r["data"]["actions"] == ["plain", "add"], r
        tools = {t["name"]: t for t in r["data"]["tools"]}
        assert tools["add"] == {"name": "add", "description": "Adds a and b", "input_schema": ADD_SCHEMA}, tools
        assert tools["plain"] == {"name": "plain"}, tools

        c = d.client()
        listed = {a["name"]: a for a in c.ok("agents.list")["agents"]}
        assert listed["calc"]["tools"][1]["input_schema"] == ADD_SCHEMA, listed["calc"]

        cases = [
            ({"a": 1}, "b", "present (required)"),
            ({"a": 1, "b": "2"}, "b", "a number"),
            ({"a": 1, "b": 2, "c": 3}, "c", "absent"),
            ({"a": 1, "b": 2, "mode": "div"}, "mode", 'one of "sum", "product"'),
            ({"a": 1, "b": 2, "tags": ["x", ""]}, "tags[1]", "at least 1 character"),
            ([1, 2], "data", "an object"),
            (None, "a", "present (required)"),  # no data: checked as {}
        ]
        for data, field, words in cases:
            invalid(c.request("add", data, agent="calc"), field, words)
        nothing_pending(agent)

        # What fits reaches the agent unchanged; undeclared schemas check nothing.
        c.send({"id": "ok1", "agent": "calc", "action": "add", "data": {"a": 1, "b": 2.5, "mode": "sum"}})
        q = agent.recv()
        assert q["action"] == "add" and q["data"] == {"a": 1, "b": 2.5, "mode": "sum"}, q
        agent.send({"reply_to": q["id"], "status": "success", "data": {"result": 3.5}})
        assert c.wait_reply("ok1")["data"] == {"result": 3.5}
        c.send({"id": "ok2", "agent": "calc", "action": "plain", "data": ["anything"]})
        q = agent.recv()
        assert q["data"] == ["anything"], q
        agent.send({"reply_to": q["id"], "status": "success", "data": {}})
        assert c.wait_reply("ok2")["status"] == "success"
    finally:
        d.cleanup()


def test_malformed_declarations_are_refused_and_register_nothing():
    d = Daemon()
    try:
        c = d.client()
        cases = [
            ([{"name": "x", "input_schema": {"type": "string"}}], "actions[0].input_schema", "of an object"),
            (["a", {"name": "x", "input_schema": {"type": "bogus"}}], "actions[1].input_schema", "#/type"),
            ([{"name": "x", "input_schema": {"type": "object", "properties": {"n": {"minimum": "1"}}}}],
             "actions[0].input_schema", "#/properties/n/minimum must be a number"),
            ([{"name": "x", "input_schema": {"type": "object", "pattern": "("}}], "actions[0].input_schema",
             "regular expression"),
            ([{"name": "x", "input_schema": [1]}], "actions[0].input_schema", "a JSON Schema"),
            ([{"name": "x", "description": 5}], "actions[0].description", "a string"),
            ([{"description": "no name"}], "actions[0].name", "an action name"),
            ([{"name": "y" * 300}], "actions[0].name", "1-256 bytes"),
            ([True], "actions[0]", "an action name or"),
            ({"name": "x"}, "actions", "a list of actions"),
        ]
        for actions, field, words in cases:
            invalid(register(c, "bad", actions), field, words)
        assert "bad" not in {a["name"] for a in c.ok("agents.list")["agents"]}
        # One string is still a list of one, as before.
        r = c.ok("agents.register", {"name": "single", "actions": "only"})
        assert r["actions"] == ["only"], r
    finally:
        d.cleanup()


def test_plugin_agent_tools_from_every_transport():
    d = Daemon()
    try:
        c = d.client()
        echo = {a["name"]: a for a in c.ok("agents.list")["agents"]}["echo"]
        tools = {t["name"]: t for t in echo["tools"]}
        assert tools["sleep"]["input_schema"]["required"] == ["ms"], tools
        assert tools["echo"]["description"] == "Answers with the data it was sent", tools
        assert "input_schema" not in tools["fail"], tools
        naming = {a["name"]: a for a in c.ok("agents.list")["agents"]}["naming"]
        assert {"allocate_namespace", "validate_name"} <= {t["name"] for t in naming["tools"] if "input_schema" in t}

        invalid(c.request("sleep", {"ms": "soon"}, agent="echo"), "ms", "an integer")
        invalid(c.request("sleep", {"ms": -5}, agent="echo"), "ms", ">= 0")
        invalid(c.request("big", {"bytes": 1, "more": True}, agent="echo"), "more", "absent")
        invalid(c.request("allocate_namespace", {"project": "p"}, agent="naming"), "environment", "present")
        assert c.ok("sleep", {"ms": 1}, agent="echo") == {"slept_ms": 1}
        assert c.ok("big", {"bytes": 5}, agent="echo") == {"text": "xxxxx"}

        # HTTP: 422 with the failing fields.
        url = d.http_url()
        req = urllib.request.Request(url + "/api/agents/echo/sleep", data=json.dumps({"ms": "x"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(req, timeout=10 * SCALE)
            raise AssertionError("expected 422")
        except urllib.error.HTTPError as e:
            assert e.code == 422, e.code
            body = json.loads(e.read())
            assert body["error"]["code"] == "VALIDATION_ERROR", body  # HTTP's name for it
            assert body["error"]["details"]["fields"] == [{"field": "ms", "expected": "an integer"}], body

        # Centerfire's per-agent socket.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        s.connect(d.path("orchestrator-echo.sock"))
        s.sendall(b'{"id":"cf1","interface":"api","agent":"echo","action":"sleep","data":{"ms":[1]}}\n')
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        r = json.loads(buf.split(b"\n")[0])
        s.close()
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "ms", r
        # Nothing else was disturbed.
        assert c.ok("ping") is not None
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
