"""The naming agent (plugins/agent-naming) through the real daemon: every
action over the native socket, the Centerfire socket orchestrator-naming.sock
and HTTP (POST /api/request and /api/agents/naming/ACTION); collisions,
sequences and CIDs that survive restarts, validate_name's reasons, and bad
parameters."""
import http.client
import json
import socket
import time
import urllib.parse

from enslib import SCALE, Daemon, gv, run_tests


# ---- three ways in ----

def native(d):
    """call(action, data) -> (status, data_or_error) over ensemble.sock."""
    c = d.client()

    def call(action, data):
        r = c.request(action, data, agent="naming")
        return (r["status"], r["data"] if r["status"] == "success" else r["error"])
    call.close = c.close
    return call


def wait_accepting(path, timeout=10):
    """The Centerfire socket of an agent appears shortly after "ready"."""
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return path
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    raise AssertionError(f"{path} never accepted a connection")


def centerfire(d):
    """call(action, data) over orchestrator-naming.sock: one request per connection."""
    path = wait_accepting(d.path("orchestrator-naming.sock"))
    n = [0]

    def call(action, data):
        n[0] += 1
        rid = f"cf-{n[0]}"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        try:
            s.connect(path)
            s.sendall(json.dumps({"id": rid, "interface": "test", "agent": "naming", "action": action,
                                  "data": data}).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        lines = buf.decode().splitlines()
        assert len(lines) == 1, buf
        r = json.loads(lines[0])
        assert r["id"] == rid, r
        return (r["status"], r["data"] if r["status"] == "success" else r["error"])
    call.close = lambda: None
    return call


def http_port(d):
    deadline = time.time() + 5 * SCALE
    while True:
        try:
            return urllib.parse.urlsplit(d.http_url()).port
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


def http_post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SCALE)
    try:
        c.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def http_centerfire(d):
    """call(action, data) over HTTP POST /api/request (the Centerfire shape)."""
    port = http_port(d)
    n = [0]

    def call(action, data):
        n[0] += 1
        rid = f"h-{n[0]}"
        status, r = http_post(port, "/api/request",
                              {"id": rid, "interface": "http", "agent": "naming", "action": action, "data": data})
        assert r["id"] == rid, r
        if r["status"] == "success":
            assert status == 200, (status, r)
            return ("success", r["data"])
        assert status >= 400, (status, r)
        return ("error", r["error"])
    call.close = lambda: None
    return call


def transports(d):
    return [("native", native(d)), ("centerfire", centerfire(d)), ("http", http_centerfire(d))]


def ok(call, action, data):
    status, out = call(action, data)
    assert status == "success", (action, data, out)
    return out


def err(call, action, data, code):
    status, out = call(action, data)
    assert status == "error", (action, data, out)
    assert out["code"] == code, (action, data, out)
    assert isinstance(out["message"], str) and out["message"], out
    return out


def invalid_field(call, action, data, field):
    e = err(call, action, data, "INVALID_PARAMETERS")
    assert e["details"]["field"] == field, e
    assert e["details"]["expected"], e
    return e


def rules(reasons):
    return {r["rule"] for r in reasons}


# ---- tests ----

def test_every_action_on_every_transport():
    d = Daemon()
    try:
        for i, (via, call) in enumerate(transports(d)):
            project = f"proj{i}"
            ns = ok(call, "allocate_namespace", {"project": project, "environment": "dev", "class_type": "service"})
            assert ns["namespace"] == f"{project}.dev.ns1", (via, ns)
            assert ns["project"] == project and ns["environment"] == "dev" and ns["class_type"] == "service", ns
            assert ns["kind"] == "namespace" and ns["name"] == ns["namespace"], ns
            assert ns["cid"].startswith(f"cid:{project}:dev:namespace:"), ns
            ns2 = ok(call, "allocate_namespace", {"project": project, "environment": "dev"})
            assert ns2["namespace"] == f"{project}.dev.ns2" and "class_type" not in ns2, ns2

            cap = ok(call, "allocate_capability", {"parent": ns["namespace"], "name": "search"})
            assert cap["capability"] == cap["name"] == f"{project}.dev.ns1.search", cap
            assert cap["kind"] == "capability" and cap["parent"] == ns["namespace"], cap
            assert cap["cid"].startswith(f"cid:{project}:dev:capability:"), cap
            mod = ok(call, "allocate_module", {"parent": cap["name"], "name": "index_v2"})
            assert mod["module"] == f"{project}.dev.ns1.search.index_v2" and mod["kind"] == "module", mod
            fn = ok(call, "allocate_function", {"parent": mod["name"], "name": "rebuild-all"})
            assert fn["function"] == f"{project}.dev.ns1.search.index_v2.rebuild-all", fn
            assert fn["parent"] == mod["name"] and fn["project"] == project and fn["environment"] == "dev", fn
            assert set(fn) >= {"name", "cid", "kind", "parent", "project", "environment", "allocated_at"}, fn

            v = ok(call, "validate_name", {"name": "good_name-1"})
            assert v == {"valid": True, "name": "good_name-1", "reasons": []}, v
            v = ok(call, "validate_name", {"name": "Bad Name", "kind": "segment"})
            assert v["valid"] is False and rules(v["reasons"]) >= {"case", "charset"}, v

            listed = ok(call, "list", {"project": project})["names"]
            names = [r["name"] for r in listed]
            assert names == sorted(names) and len(names) == 5, listed
            assert set(names) == {ns["name"], ns2["name"], cap["name"], mod["name"], fn["name"]}, names
            assert [r for r in listed if r["name"] == fn["name"]][0] == \
                {k: fn[k] for k in fn if k != "function"}, listed
            assert [r["name"] for r in ok(call, "list", {"project": project, "kind": "namespace"})["names"]] == \
                [ns["name"], ns2["name"]]
            assert [r["name"] for r in ok(call, "list", {"parent": cap["name"]})["names"]] == [mod["name"]]
            assert ok(call, "list", {"project": project, "environment": "prod"})["names"] == []

            e = err(call, "release", {"name": ns["name"]}, "HAS_CHILDREN")
            assert set(e["details"]["children"]) == {cap["name"], mod["name"], fn["name"]}, e
            r = ok(call, "release", {"name": fn["name"]})
            assert r["released"] is True and r["name"] == fn["name"], r
            r = ok(call, "release", {"name": ns["name"], "recursive": True})
            assert r["released"] is True and r["name"] == ns["name"], r
            assert set(r["released_names"]) == {ns["name"], cap["name"], mod["name"]}, r
            assert [x["name"] for x in ok(call, "list", {"project": project})["names"]] == [ns2["name"]]
            e = err(call, "release", {"name": ns["name"]}, "NOT_FOUND")
            assert e["details"]["name"] == ns["name"], e
            call.close()

        # POST /api/agents/naming/ACTION with the data as the body.
        port = http_port(d)
        status, body = http_post(port, "/api/agents/naming/allocate_namespace", {"project": "rest", "environment": "qa"})
        assert status == 200 and body["namespace"] == "rest.qa.ns1" and body["kind"] == "namespace", (status, body)
        status, body = http_post(port, "/api/agents/naming/validate_name", {"name": "Rest"})
        assert status == 200 and body["valid"] is False and rules(body["reasons"]) == {"case"}, (status, body)
        status, body = http_post(port, "/api/agents/naming/list", {"project": "rest"})
        assert status == 200 and [r["name"] for r in body["names"]] == ["rest.qa.ns1"], (status, body)
        status, body = http_post(port, "/api/agents/naming/allocate_namespace", {"project": "rest", "environment": "Q A"})
        assert status == 422 and body["error"]["details"]["field"] == "environment", (status, body)
        status, body = http_post(port, "/api/agents/naming/release", {"name": "rest.qa.ns1"})
        assert status == 200 and body["released"] is True, (status, body)
    finally:
        d.cleanup()


def test_parent_must_exist_and_be_of_the_right_kind():
    d = Daemon()
    try:
        for via, call in transports(d):
            e = err(call, "allocate_capability", {"parent": f"{via}.dev.ns1", "name": "x"}, "NOT_FOUND")
            assert e["details"]["field"] == "parent", e
            ns = ok(call, "allocate_namespace", {"project": via, "environment": "dev"})["namespace"]
            invalid_field(call, "allocate_module", {"parent": ns, "name": "x"}, "parent")  # a namespace, not a capability
            cap = ok(call, "allocate_capability", {"parent": ns, "name": "cap"})["name"]
            invalid_field(call, "allocate_function", {"parent": cap, "name": "x"}, "parent")
            invalid_field(call, "allocate_capability", {"parent": cap, "name": "x"}, "parent")
            e = err(call, "allocate_module", {"parent": cap + ".nope", "name": "x"}, "NOT_FOUND")
            assert e["details"]["field"] == "parent", e
            invalid_field(call, "allocate_capability", {"name": "x"}, "parent")
            invalid_field(call, "allocate_capability", {"parent": ns}, "name")
            e = invalid_field(call, "allocate_capability", {"parent": ns, "name": "a.b"}, "name")
            assert "structure" in rules(e["details"]["reasons"]), e
            e = invalid_field(call, "allocate_capability", {"parent": ns, "name": "Root"}, "name")
            assert rules(e["details"]["reasons"]) == {"case", "reserved"}, e
    finally:
        d.cleanup()


def test_collision_names_the_existing_record():
    d = Daemon()
    try:
        c = native(d)
        ns = ok(c, "allocate_namespace", {"project": "acme", "environment": "prod"})["namespace"]
        first = ok(c, "allocate_capability", {"parent": ns, "name": "billing"})
        record = {k: v for k, v in first.items() if k != "capability"}
        for via, call in transports(d):
            e = err(call, "allocate_capability", {"parent": ns, "name": "billing"}, "NAMESPACE_COLLISION")
            assert e["details"]["existing"] == record, (via, e)
            assert "acme.prod.ns1.billing" in e["message"], e
        # the cid stays the name's own
        listed = ok(c, "list", {"parent": ns})["names"]
        assert listed == [record], listed
        # the same code at every level
        mod = ok(c, "allocate_module", {"parent": first["name"], "name": "invoices"})
        e = err(c, "allocate_module", {"parent": first["name"], "name": "invoices"}, "NAMESPACE_COLLISION")
        assert e["details"]["existing"]["cid"] == mod["cid"], e
        fn = ok(c, "allocate_function", {"parent": mod["name"], "name": "send"})
        e = err(c, "allocate_function", {"parent": mod["name"], "name": "send"}, "NAMESPACE_COLLISION")
        assert e["details"]["existing"]["cid"] == fn["cid"], e
        # HTTP answers 4xx or 5xx with the same body shape
        status, body = http_post(http_port(d), "/api/request",
                                 {"id": "x", "agent": "naming", "action": "allocate_capability",
                                  "data": {"parent": ns, "name": "billing"}})
        assert status >= 400 and body["error"]["code"] == "NAMESPACE_COLLISION", (status, body)
    finally:
        d.cleanup()


def test_restart_keeps_sequences_and_records():
    d = Daemon()
    try:
        c = native(d)
        a = ok(c, "allocate_namespace", {"project": "p", "environment": "e"})
        b = ok(c, "allocate_namespace", {"project": "p", "environment": "e"})
        assert (a["namespace"], b["namespace"]) == ("p.e.ns1", "p.e.ns2"), (a, b)
        cap = ok(c, "allocate_capability", {"parent": "p.e.ns1", "name": "keep"})
        other = ok(c, "allocate_namespace", {"project": "p", "environment": "other"})
        assert other["namespace"] == "p.other.ns1", other  # one counter per project.environment
        c.close()

        d.restart()
        c = native(d)
        listed = ok(c, "list", {"project": "p"})["names"]
        assert {r["name"]: r["cid"] for r in listed} == \
            {a["name"]: a["cid"], b["name"]: b["cid"], cap["name"]: cap["cid"], other["name"]: other["cid"]}, listed
        third = ok(c, "allocate_namespace", {"project": "p", "environment": "e"})
        assert third["namespace"] == "p.e.ns3", third
        assert ok(c, "release", {"name": "p.e.ns3"})["released"] is True
        fourth = ok(c, "allocate_namespace", {"project": "p", "environment": "e"})
        assert fourth["namespace"] == "p.e.ns4", fourth
        err(c, "allocate_capability", {"parent": "p.e.ns1", "name": "keep"}, "NAMESPACE_COLLISION")
        # a released capability comes back as a new entity with a new cid
        ok(c, "release", {"name": cap["name"]})
        again = ok(c, "allocate_capability", {"parent": "p.e.ns1", "name": "keep"})
        assert again["cid"] != cap["cid"] and again["cid"] > cap["cid"], (again, cap)
        c.close()

        d.restart()
        c = native(d)
        assert ok(c, "allocate_namespace", {"project": "p", "environment": "e"})["namespace"] == "p.e.ns5"
        names = [r["name"] for r in ok(c, "list", {"project": "p", "environment": "e"})["names"]]
        assert names == sorted(["p.e.ns1", "p.e.ns1.keep", "p.e.ns2", "p.e.ns4", "p.e.ns5"]), names
        c.close()
    finally:
        d.cleanup()


def test_cids_sort_in_allocation_order():
    d = Daemon()
    try:
        c = native(d)
        cids = []
        ns = ok(c, "allocate_namespace", {"project": "zeta", "environment": "dev"})
        cids.append(ns["cid"])
        for i in range(12):  # past 9 and 10: padding keeps lexical order = numeric order
            cids.append(ok(c, "allocate_capability", {"parent": ns["name"], "name": f"c{i}"})["cid"])
        cids.append(ok(c, "allocate_namespace", {"project": "alpha", "environment": "dev"})["cid"])
        ids = [cid.rsplit(":", 1)[1] for cid in cids]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        assert all(len(i) == len(ids[0]) and i.isdigit() for i in ids), ids
        for cid in cids[:1] + cids[-1:]:
            assert cid.split(":")[3] == "namespace", cid
        assert cids[1].split(":")[:4] == ["cid", "zeta", "dev", "capability"], cids
        assert len(set(cids)) == len(cids), cids
        # stable: the list shows the cids handed out
        listed = {r["name"]: r["cid"] for r in ok(c, "list", {})["names"]}
        assert sorted(listed.values()) == sorted(cids), listed
    finally:
        d.cleanup()


def test_validate_name_reasons():
    d = Daemon(settings={"naming-reserved-words": gv(["ensemble", "forbidden"])})
    try:
        for via, call in [("native", native(d)), ("centerfire", centerfire(d))]:
            def check(name, expect, kind=None):
                data = {"name": name} if kind is None else {"name": name, "kind": kind}
                v = ok(call, "validate_name", data)
                assert v["name"] == name and v["valid"] is (not expect), (via, v)
                assert rules(v["reasons"]) == set(expect), (via, name, v)
                assert all(isinstance(r["message"], str) and r["message"] for r in v["reasons"]), v
                return v

            check("abc", [])
            check("a-b_c9", [])
            check("proj.env.ns1.cap", [])
            check("proj.env.ns12", [], kind="namespace")
            v = check("has space", ["charset"])
            assert "' '" in v["reasons"][0]["message"], v
            check("semi;colon", ["charset"])
            check("caf\u00e9", ["charset"])
            check("Upper", ["case"])
            check("CamelCase.ok", ["case"])
            check("9lives", ["start"])
            check("_under", ["start"])
            check("", ["length"])
            check("a" * 64, [])
            v = check("a" * 65, ["length"])
            assert v["reasons"][0]["segment"] == "a" * 65, v
            check(".".join(["a" * 60] * 4), [])  # 243 characters
            check(".".join(["a" * 63] * 4), [])  # 255 characters: the most
            v = check(".".join(["a" * 64] * 4), ["length"])  # 259
            assert len(v["reasons"]) == 1 and "segment" not in v["reasons"][0], v
            v = check("a..b...c", ["length"])
            assert len(v["reasons"]) == 1, v  # one reason for all the empty segments
            check("trailing.", ["length"])
            # reserved words come from the setting, case-insensitively
            check("forbidden", ["reserved"])
            check("proj.Ensemble.ns1", ["reserved", "case"])
            check("admin", [])  # not in this daemon's list
            # kinds
            check("one.two", ["structure"], kind="segment")
            check("p.e.ns1.cap", ["structure"], kind="namespace")
            check("p.e.x1", ["structure"], kind="namespace")
            check("p.e.ns0", ["structure"], kind="namespace")
            check("p.e.ns1.cap", [], kind="capability")
            check("p.e.ns1.cap.mod", [], kind="module")
            check("p.e.ns1.cap.mod.fn", [], kind="function")
            check("abc", ["kind"], kind="galaxy")
            v = check("Bad Name!", ["case", "charset"])
            assert len(v["reasons"]) == 2, v
            # a long segment of non-ASCII letters: the message is cut on a character boundary
            v = check("\u00e9" * 70, ["length", "charset", "start"])
            # thousands of bad segments: a bounded answer
            v = ok(call, "validate_name", {"name": ".".join(f"B{i}" for i in range(3000))})
            assert v["valid"] is False and 0 < len(v["reasons"]) <= 32, len(v["reasons"])
            # only a missing or non-string name is an error
            invalid_field(call, "validate_name", {}, "name")
            invalid_field(call, "validate_name", {"name": 5}, "name")
            invalid_field(call, "validate_name", {"name": ["a"]}, "name")
    finally:
        d.cleanup()


def test_default_reserved_words():
    d = Daemon()
    try:
        c = native(d)
        for word in ["ensemble", "system", "Admin", "ROOT", "null", "undefined", "default", "internal"]:
            v = ok(c, "validate_name", {"name": word})
            assert "reserved" in rules(v["reasons"]), v
        e = invalid_field(c, "allocate_namespace", {"project": "system", "environment": "dev"}, "project")
        assert rules(e["details"]["reasons"]) == {"reserved"}, e
    finally:
        d.cleanup()


def test_bad_parameters_name_the_field():
    d = Daemon()
    try:
        for via, call in transports(d):
            invalid_field(call, "allocate_namespace", {"environment": "dev"}, "project")
            invalid_field(call, "allocate_namespace", {"project": 5, "environment": "dev"}, "project")
            invalid_field(call, "allocate_namespace", {"project": "p"}, "environment")
            e = invalid_field(call, "allocate_namespace", {"project": "p", "environment": "Bad Env"}, "environment")
            assert rules(e["details"]["reasons"]) == {"case", "charset"}, e
            e = invalid_field(call, "allocate_namespace", {"project": "p.q", "environment": "dev"}, "project")
            assert rules(e["details"]["reasons"]) == {"structure"}, e
            invalid_field(call, "allocate_namespace", {"project": "p", "environment": "dev", "class_type": 3},
                          "class_type")
            invalid_field(call, "allocate_capability", {"parent": 1, "name": "x"}, "parent")
            invalid_field(call, "list", {"kind": "planet"}, "kind")
            invalid_field(call, "list", {"project": 1}, "project")
            invalid_field(call, "release", {}, "name")
            invalid_field(call, "release", {"name": "p.e.ns1", "recursive": "yes"}, "recursive")
            e = err(call, "release", {"name": "never.allocated.ns1"}, "NOT_FOUND")
            assert e["details"]["field"] == "name", e
            err(call, "no_such_action", {}, "UNKNOWN_ACTION")
        # nothing was allocated by any of that
        assert ok(native(d), "list", {})["names"] == []
        # data that is not an object
        c = d.client()
        r = c.request("allocate_namespace", [1, 2], agent="naming")
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
    finally:
        d.cleanup()


run_tests(globals())
