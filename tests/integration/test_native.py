"""Native protocol: core verbs, key-value store, the event bus (exact topics,
globs, targeted delivery), sequence numbers, id echo, pipelining and agent
lifecycle events."""
import json
import time
from enslib import MEMORY_SCALE, Daemon, SCALE, run_tests


def whoami(c, tag="whoami"):
    """The daemon-assigned client id of c: publish to a private topic and read `from`."""
    topic = f"ens.test.{tag}.{id(c)}"
    c.ok("subscribe", {"topics": [topic]})
    c.ok("publish", {"topic": topic, "data": "me"})
    ev = c.next_event()
    assert ev["event"] == topic, ev
    c.ok("unsubscribe", {"topics": [topic]})
    return ev["from"]


def events_until_marker(c, marker_topic="marker", marker_data=None):
    """Reads events until the marker event arrives; returns the events before it."""
    got = []
    while True:
        ev = c.next_event()
        if ev["event"] == marker_topic and (marker_data is None or ev.get("data") == marker_data):
            return got
        got.append(ev)


def test_health_fields():
    d = Daemon()
    try:
        c = d.client()
        h = c.ok("health")
        assert h["status"] == "healthy"
        assert isinstance(h["version"], str) and h["version"]
        assert isinstance(h["node_id"], str) and h["node_id"]
        assert isinstance(h["uptime_s"], (int, float)) and h["uptime_s"] >= 0
        assert h["socket_dir"] == d.socket_dir, h["socket_dir"]
        assert h["state_dir"] == d.state_dir, h["state_dir"]
        assert h["agents"] >= 1  # the echo plugin agent
        assert h["connections"] >= 1
        assert isinstance(h["subscriptions"], int)
        for key in ("requests", "errors", "events_published", "events_delivered", "agent_requests",
                    "agent_timeouts"):
            assert isinstance(h["counters"][key], int), (key, h["counters"])
        ids = {p["id"] for p in h["plugins"]}
        assert {"transport-unix", "agent-echo"} <= ids, ids
        for p in h["plugins"]:
            for key in ("id", "kind", "version", "description", "file"):
                assert key in p, (key, p)
        transport = [p for p in h["plugins"] if p["id"] == "transport-unix"][0]
        assert transport["kind"] == "transport"
        assert transport["info"]["events_dropped"] == 0

        # Counters move.
        before = h["counters"]["requests"]
        c.ok("ping")
        h2 = c.ok("health")
        assert h2["counters"]["requests"] >= before + 2, (before, h2["counters"])
        c.request("no.such.action")
        h3 = c.ok("health")
        assert h3["counters"]["errors"] >= h2["counters"]["errors"] + 1

        # Subscriptions count.
        c.ok("subscribe", {"topics": ["a.b", "c.*"]})
        h4 = c.ok("health")
        assert h4["subscriptions"] >= h["subscriptions"] + 2, (h["subscriptions"], h4["subscriptions"])

        # Reply envelope.
        r = c.request("ping")
        assert r["status"] == "success" and r["data"] == {"pong": True}
        assert isinstance(r["timestamp"], str) and r["timestamp"].endswith("Z"), r
        assert isinstance(r["processing_time_ms"], (int, float)), r
        c.close()
    finally:
        d.cleanup()


def test_plugins_and_agents_list():
    d = Daemon()
    try:
        c = d.client()
        plugins = c.ok("plugins.list")["plugins"]
        by_id = {p["id"]: p for p in plugins}
        assert by_id["agent-echo"]["kind"] == "agent"
        assert by_id["transport-unix"]["kind"] == "transport"
        assert by_id["agent-echo"]["file"].endswith(".so")
        assert d.path("ensemble.sock") in by_id["transport-unix"]["info"]["sockets"]

        agents = c.ok("agents.list")["agents"]
        echo = [a for a in agents if a["name"] == "echo"]
        assert len(echo) == 1, agents
        echo = echo[0]
        assert echo["kind"] == "plugin"
        assert echo["owner"] == "agent-echo"
        assert {"echo", "sleep", "fail", "ask", "count"} <= set(echo["actions"]), echo
        assert isinstance(echo["description"], str)
        assert isinstance(echo["registered_at"], str)

        # An external agent shows up as kind "client".
        a = d.client()
        a.ok("agents.register", {"name": "ext-lister", "actions": ["x", "y"], "description": "test agent"})
        agents = {x["name"]: x for x in c.ok("agents.list")["agents"]}
        assert agents["ext-lister"]["kind"] == "client", agents
        assert agents["ext-lister"]["actions"] == ["x", "y"]
        assert agents["ext-lister"]["description"] == "test agent"
        a.ok("agents.unregister", {"name": "ext-lister"})
        agents = {x["name"] for x in c.ok("agents.list")["agents"]}
        assert "ext-lister" not in agents
        a.close()
        c.close()
    finally:
        d.cleanup()


def test_kv_roundtrip_types_prefix_isolation():
    d = Daemon()
    try:
        c = d.client()
        values = {
            "s": "hello wörld \u2603 \"quoted\" \n newline",
            "i": 42,
            "neg": -7,
            "big": 9007199254740993,
            "f": 3.25,
            "t": True,
            "fl": False,
            "n": None,
            "list": [1, "two", [3], {"four": 4}, None],
            "obj": {"nested": {"deep": [True, 1.5]}, "empty": {}},
            "empty_list": [],
            "empty_str": "",
        }
        for key, value in values.items():
            r = c.ok("kv.set", {"agent": "alpha", "key": key, "value": value})
            assert r == {"agent": "alpha", "key": key, "stored": True}, r
        for key, value in values.items():
            r = c.ok("kv.get", {"agent": "alpha", "key": key})
            assert r["found"] is True, (key, r)
            assert r["value"] == value and type(r["value"]) is type(value), (key, value, r["value"])
            assert r["agent"] == "alpha" and r["key"] == key

        # Overwrite.
        c.ok("kv.set", {"agent": "alpha", "key": "i", "value": {"now": "an object"}})
        assert c.ok("kv.get", {"agent": "alpha", "key": "i"})["value"] == {"now": "an object"}

        # Missing key.
        r = c.ok("kv.get", {"agent": "alpha", "key": "missing"})
        assert r["found"] is False and r["value"] is None, r

        # Per-agent isolation.
        c.ok("kv.set", {"agent": "beta", "key": "s", "value": "beta's"})
        assert c.ok("kv.get", {"agent": "alpha", "key": "s"})["value"] == values["s"]
        assert c.ok("kv.get", {"agent": "beta", "key": "s"})["value"] == "beta's"
        assert c.ok("kv.get", {"agent": "beta", "key": "i"})["found"] is False
        assert sorted(c.ok("kv.list", {"agent": "beta"})["keys"]) == ["s"]
        assert c.ok("kv.list", {"agent": "gamma"})["keys"] == []

        # List and prefix.
        listed = c.ok("kv.list", {"agent": "alpha"})
        assert listed["agent"] == "alpha"
        assert sorted(listed["keys"]) == sorted(values), listed
        for k in ("cfg.a", "cfg.b", "cfg.sub.c", "cf", "other.cfg.x"):
            c.ok("kv.set", {"agent": "alpha", "key": k, "value": k})
        assert sorted(c.ok("kv.list", {"agent": "alpha", "prefix": "cfg."})["keys"]) == ["cfg.a", "cfg.b",
                                                                                          "cfg.sub.c"]
        assert sorted(c.ok("kv.list", {"agent": "alpha", "prefix": "cfg.sub"})["keys"]) == ["cfg.sub.c"]
        assert c.ok("kv.list", {"agent": "alpha", "prefix": "zzz"})["keys"] == []
        # A prefix is literal, not a LIKE/glob pattern.
        c.ok("kv.set", {"agent": "alpha", "key": "pct%x", "value": 1})
        c.ok("kv.set", {"agent": "alpha", "key": "und_x", "value": 1})
        assert c.ok("kv.list", {"agent": "alpha", "prefix": "pct%"})["keys"] == ["pct%x"]
        assert c.ok("kv.list", {"agent": "alpha", "prefix": "%"})["keys"] == []
        assert c.ok("kv.list", {"agent": "alpha", "prefix": "_"})["keys"] == []
        assert c.ok("kv.list", {"agent": "alpha", "prefix": "c*"})["keys"] == []

        # Delete.
        r = c.ok("kv.delete", {"agent": "alpha", "key": "cfg.a"})
        assert r == {"agent": "alpha", "key": "cfg.a", "deleted": True}, r
        r = c.ok("kv.delete", {"agent": "alpha", "key": "cfg.a"})
        assert r["deleted"] is False, r
        assert c.ok("kv.get", {"agent": "alpha", "key": "cfg.a"})["found"] is False
        assert sorted(c.ok("kv.list", {"agent": "alpha", "prefix": "cfg."})["keys"]) == ["cfg.b", "cfg.sub.c"]
        # Deleting in beta does not touch alpha.
        c.ok("kv.delete", {"agent": "beta", "key": "s"})
        assert c.ok("kv.get", {"agent": "alpha", "key": "s"})["value"] == values["s"]

        # Visible from another connection.
        c2 = d.client()
        assert c2.ok("kv.get", {"agent": "alpha", "key": "obj"})["value"] == values["obj"]
        c2.close()

        # Missing parameters.
        for data in ({"key": "k", "value": 1}, {"agent": "alpha", "value": 1}, {"agent": "alpha", "key": "k"}):
            r = c.request("kv.set", data)
            assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", (data, r)
        r = c.request("kv.get", {"agent": "alpha"})
        assert r["error"]["code"] == "INVALID_PARAMETERS", r
        c.close()
    finally:
        d.cleanup()


def test_subscribe_exact_and_unsubscribe():
    d = Daemon()
    try:
        sub = d.client()
        pub = d.client()
        r = sub.ok("subscribe", {"topics": ["news.sports", "marker"]})
        assert set(r["subscribed"]) == {"news.sports", "marker"}, r
        assert r["total"] == 2, r
        # Subscribing again to the same topic does not duplicate it.
        r = sub.ok("subscribe", {"topics": ["news.sports"]})
        assert r["total"] == 2, r

        r = pub.ok("publish", {"topic": "news.sports", "data": {"score": [1, 2]}})
        assert r["delivered"] == 1, r
        r = pub.ok("publish", {"topic": "news.weather", "data": "rain"})
        assert r["delivered"] == 0, r
        r = pub.ok("publish", {"topic": "news.sports.extra", "data": 1})
        assert r["delivered"] == 0, r
        r = pub.ok("publish", {"topic": "news.sports"})  # data defaults to null
        pub.ok("publish", {"topic": "marker", "data": 1})

        got = events_until_marker(sub)
        assert [e["event"] for e in got] == ["news.sports", "news.sports"], got
        assert got[0]["data"] == {"score": [1, 2]}
        assert got[1].get("data") is None
        pub_id = whoami(pub)
        assert got[0]["from"] == pub_id, (got[0], pub_id)
        assert "to" not in got[0], got[0]
        assert isinstance(got[0]["seq"], int)
        assert got[0]["timestamp"].endswith("Z")

        r = sub.ok("unsubscribe", {"topics": ["news.sports"]})
        assert r["unsubscribed"] == ["news.sports"], r
        assert r["total"] == 1, r
        pub.ok("publish", {"topic": "news.sports", "data": 2})
        pub.ok("publish", {"topic": "marker", "data": 2})
        assert events_until_marker(sub) == []

        # A publisher subscribed to its own topic hears itself.
        pub.ok("subscribe", {"topics": ["self.topic"]})
        assert pub.ok("publish", {"topic": "self.topic", "data": "echo"})["delivered"] == 1
        assert pub.next_event()["data"] == "echo"
        sub.close()
        pub.close()
    finally:
        d.cleanup()


def test_glob_patterns():
    d = Daemon()
    try:
        patterns = {
            "glob.*": {"glob.a", "glob.a.b", "glob.", "glob.hello"},
            "h?llo": {"hello", "hallo", "hxllo", "hillo"},
            "h[ae]llo": {"hello", "hallo"},
            "h[^e]llo": {"hallo", "hxllo", "hillo"},
            "*.end": {"x.end", "a.b.end"},
        }
        topics = ["glob.a", "glob.a.b", "glob.", "glob.hello", "globx", "glob", "hello", "hallo", "hxllo",
                  "hllo", "heello", "hillo", "x.end", "a.b.end", "end", "x.ends"]
        clients = {}
        for pattern in patterns:
            c = d.client()
            c.ok("subscribe", {"topics": [pattern, "marker"]})
            clients[pattern] = c
        pub = d.client()
        for t in topics:
            pub.ok("publish", {"topic": t, "data": t})
        pub.ok("publish", {"topic": "marker", "data": "end"})
        for pattern, expected in patterns.items():
            got = events_until_marker(clients[pattern])
            names = [e["event"] for e in got]
            assert sorted(names) == sorted(expected), (pattern, names, expected)
            assert all(e["data"] == e["event"] for e in got)
        # A published topic is concrete: glob characters are refused.
        for bad in ("glob.*", "h?llo", "h[ae]llo"):
            r = pub.request("publish", {"topic": bad})
            assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
            assert r["error"]["details"]["field"] == "topic", r
        for c in clients.values():
            c.close()
        pub.close()
    finally:
        d.cleanup()


def test_one_delivery_when_patterns_overlap():
    d = Daemon()
    try:
        sub = d.client()
        pub = d.client()
        sub.ok("subscribe", {"topics": ["dup.*", "dup.?", "dup.a", "d*", "marker"]})
        r = pub.ok("publish", {"topic": "dup.a", "data": 1})
        assert r["delivered"] == 1, r
        pub.ok("publish", {"topic": "dup.bb", "data": 2})  # dup.* and d*
        pub.ok("publish", {"topic": "marker"})
        got = events_until_marker(sub)
        assert [(e["event"], e["data"]) for e in got] == [("dup.a", 1), ("dup.bb", 2)], got

        # Unsubscribing one of the patterns keeps the others.
        sub.ok("unsubscribe", {"topics": ["dup.*", "d*"]})
        pub.ok("publish", {"topic": "dup.a", "data": 3})  # dup.? and dup.a
        pub.ok("publish", {"topic": "dup.bb", "data": 4})  # none left
        pub.ok("publish", {"topic": "marker"})
        got = events_until_marker(sub)
        assert [(e["event"], e["data"]) for e in got] == [("dup.a", 3)], got

        # Unsubscribing everything stops delivery.
        r = sub.ok("unsubscribe", {"topics": ["dup.?", "dup.a"]})
        assert r["total"] == 1, r
        assert pub.ok("publish", {"topic": "dup.a", "data": 5})["delivered"] == 0
        pub.ok("publish", {"topic": "marker"})
        assert events_until_marker(sub) == []

        # Unsubscribing something never subscribed is harmless.
        r = sub.request("unsubscribe", {"topics": ["never.subscribed"]})
        assert r["status"] == "success" or r["error"]["code"] == "NOT_FOUND", r
        assert sub.ok("ping") == {"pong": True}
        sub.close()
        pub.close()
    finally:
        d.cleanup()


def test_targeted_to_client_id():
    d = Daemon()
    try:
        plain = d.client()     # plain subscriber of the topic
        target = d.client()    # the target, no subscription at all
        observer = d.client()  # subscriber of "topic:target"
        pub = d.client()
        target_id = whoami(target)
        plain.ok("subscribe", {"topics": ["job.done"]})
        observer.ok("subscribe", {"topics": [f"job.done:{target_id}"]})

        r = pub.ok("publish", {"topic": "job.done", "data": {"secret": 1}, "to": target_id})
        assert r["delivered"] == 2, r
        assert r["target_found"] is True, r
        ev = target.next_event()
        assert ev["event"] == "job.done" and ev["data"] == {"secret": 1} and ev["to"] == target_id, ev
        ev = observer.next_event()
        assert ev["event"] == "job.done" and ev["data"] == {"secret": 1} and ev["to"] == target_id, ev

        # The plain subscriber must not have seen it: the next thing it receives is the marker.
        r = pub.ok("publish", {"topic": "job.done", "data": "marker"})
        assert r["delivered"] == 1, r  # only the plain subscriber
        ev = plain.next_event()
        assert ev["data"] == "marker" and "to" not in ev, ev

        # Target not found: nobody gets it, target_found false.
        r = pub.ok("publish", {"topic": "job.done", "data": "lost", "to": "c-no-such-client"})
        assert r["target_found"] is False, r
        assert r["delivered"] == 0, r
        pub.ok("publish", {"topic": "job.done", "data": "marker2"})
        assert plain.next_event()["data"] == "marker2"
        for c in (plain, target, observer, pub):
            c.close()
    finally:
        d.cleanup()


def test_targeted_to_agent_name():
    d = Daemon()
    try:
        plain = d.client()
        agent = d.client()
        observer = d.client()
        pub = d.client()
        agent.ok("agents.register", {"name": "worker-7"})
        plain.ok("subscribe", {"topics": ["task.assign"]})
        observer.ok("subscribe", {"topics": ["task.assign:worker-7"]})

        r = pub.ok("publish", {"topic": "task.assign", "data": {"n": 7}, "to": "worker-7"})
        assert r["target_found"] is True, r
        assert r["delivered"] == 2, r
        ev = agent.next_event()
        assert ev["event"] == "task.assign" and ev["data"] == {"n": 7}, ev
        ev = observer.next_event()
        assert ev["event"] == "task.assign" and ev["data"] == {"n": 7}, ev

        pub.ok("publish", {"topic": "task.assign", "data": "marker"})
        ev = plain.next_event()
        assert ev["data"] == "marker", ev
        # And the observer did not get the untargeted marker.
        pub.ok("subscribe", {"topics": ["x"]})
        observer.ok("subscribe", {"topics": ["end"]})
        pub.ok("publish", {"topic": "end"})
        assert observer.next_event()["event"] == "end"
        for c in (plain, agent, observer, pub):
            c.close()
    finally:
        d.cleanup()


def test_sequence_numbers_increase():
    d = Daemon()
    try:
        sub = d.client()
        pub = d.client()
        sub.ok("subscribe", {"topics": ["seq.*"]})
        seqs = []
        for i in range(20):
            r = pub.ok("publish", {"topic": f"seq.{i % 3}", "data": i})
            seqs.append(r["seq"])
        assert all(isinstance(s, int) for s in seqs)
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
        evs = [sub.next_event() for _ in range(20)]
        assert [e["data"] for e in evs] == list(range(20)), evs
        assert [e["seq"] for e in evs] == seqs, ([e["seq"] for e in evs], seqs)
        # Unheard events still take a number.
        r = pub.ok("publish", {"topic": "nobody.listens"})
        assert r["seq"] > seqs[-1] and r["delivered"] == 0
        sub.close()
        pub.close()
    finally:
        d.cleanup()


def test_published_data_arrives_as_sent():
    """A native publish hands the event's data on as the bytes it came as
    (not parsed for the bus): a subscriber reads them unchanged, numbers and
    escapes included, whatever order the request's members come in; bad
    parameters are refused as before."""
    d = Daemon()
    try:
        sub = d.client()
        pub = d.client()
        sub.ok("subscribe", {"topics": ["raw.*"]})
        data = '{"n": 1.50, "s":"\\u00e9\\n", "list":[ 1,2 ,{}], "big":12345678901234567890}'
        lines = [
            '{"id":"a","action":"publish","data":{"topic":"raw.a","data":%s}}' % data,
            '{"data":{"data":%s,"topic":"raw.b"},"action":"publish","id":7}' % data,
            '{"id":"c","action":"publish","data":{"topic":"raw.c","data":%s,"to":null}}' % data,
        ]
        for line in lines:
            pub.send_raw(line + "\n")
            reply = pub.recv()
            assert reply["status"] == "success", reply
            raw = sub.recv_line()
            assert ('"data":%s,' % data) in raw, raw
            ev = json.loads(raw)
            assert ev["data"]["n"] == 1.5 and ev["data"]["s"] == "\u00e9\n", ev
        err = pub.request("publish", {"topic": "raw.x", "to": 5, "data": {"a": 1}})
        assert err["error"]["code"] == "INVALID_PARAMETERS" and err["error"]["details"]["field"] == "to", err
        pub.send_raw('{"id":"y","action":"publish","data":{"topic":"","data":{"a":1}}}\n')
        err = pub.recv()
        assert err["error"]["code"] == "INVALID_PARAMETERS" and err["error"]["details"]["field"] == "topic", err
        pub.send_raw('{"id":"z","action":"publish","data":{"topic":"raw.z","data":{"a":}}}\n')
        err = pub.recv()
        assert err["error"]["code"] == "INVALID_JSON", err
        sub.close()
        pub.close()
    finally:
        d.cleanup()


def test_request_ids_echoed_as_sent():
    d = Daemon()
    try:
        c = d.client()
        for rid in (0, 1, 42, -5, 2 ** 53, "42", "", "id with spaces ✓"):
            c.send({"id": rid, "action": "ping"})
            line = c.recv_line()
            obj = json.loads(line)
            assert obj["id"] == rid and type(obj["id"]) is type(rid), (rid, line)
            assert obj["status"] == "success"
        c.send({"id": 42, "action": "ping"})
        assert '"id":42,' in c.recv_line().replace(" ", "")
        # Agent requests echo the numeric id too.
        c.send({"id": 7, "agent": "echo", "action": "echo", "data": {"k": 1}})
        obj = c.recv()
        assert obj["id"] == 7 and type(obj["id"]) is int and obj["data"] == {"k": 1}, obj
        # Errors too.
        c.send({"id": 99, "action": "no.such"})
        obj = c.recv()
        assert obj["id"] == 99 and type(obj["id"]) is int and obj["status"] == "error", obj
        c.close()
    finally:
        d.cleanup()


def test_pipelining_1000_requests():
    d = Daemon()
    try:
        c = d.client()
        n = 1000
        lines = []
        for i in range(n):
            if i % 3 == 0:
                lines.append(json.dumps({"id": i, "action": "ping"}))
            elif i % 3 == 1:
                lines.append(json.dumps({"id": f"s{i}", "action": "kv.set",
                                         "data": {"agent": "pipe", "key": f"k{i}", "value": i}}))
            else:
                lines.append(json.dumps({"id": i, "action": "kv.get", "data": {"agent": "pipe", "key": f"k{i - 1}"}}))
        c.send_raw("\n".join(lines) + "\n")
        for i in range(n):
            obj = c.recv()
            expected_id = f"s{i}" if i % 3 == 1 else i
            assert obj["id"] == expected_id, (i, obj)
            assert obj["status"] == "success", obj
            if i % 3 == 2:
                assert obj["data"]["value"] == i - 1, obj
        assert c.ok("ping") == {"pong": True}
        c.close()
    finally:
        d.cleanup()


def test_pipelining_agent_requests_mixed():
    d = Daemon()
    try:
        c = d.client()
        # A slow agent request first, then fast ones: all are answered, matched by id.
        c.send_raw(json.dumps({"id": "slow", "agent": "echo", "action": "sleep", "data": {"ms": 200}}) + "\n" +
                   "".join(json.dumps({"id": i, "agent": "echo", "action": "echo", "data": {"i": i}}) + "\n"
                           for i in range(50)))
        got = {}
        deadline = time.time() + 10 * SCALE
        while len(got) < 51 and time.time() < deadline:
            obj = c.recv()
            got[obj["id"]] = obj
        assert got["slow"]["data"] == {"slept_ms": 200}, got["slow"]
        for i in range(50):
            assert got[i]["data"] == {"i": i}, got[i]
        c.close()
    finally:
        d.cleanup()


def test_agent_lifecycle_events():
    d = Daemon()
    try:
        watcher = d.client()
        watcher.ok("subscribe", {"topics": ["ensemble.agent.*"]})
        a = d.client()
        a.ok("agents.register", {"name": "life-1", "actions": ["go"], "description": "lifecycle"})
        ev = watcher.next_event()
        assert ev["event"] == "ensemble.agent.registered", ev
        assert ev["data"]["name"] == "life-1", ev
        assert ev["data"].get("actions") == ["go"], ev
        # Explicit unregister.
        a.ok("agents.unregister", {"name": "life-1"})
        ev = watcher.next_event()
        assert ev["event"] == "ensemble.agent.unregistered" and ev["data"]["name"] == "life-1", ev
        # Register again, then the connection closes.
        a.ok("agents.register", {"name": "life-2"})
        ev = watcher.next_event()
        assert ev["event"] == "ensemble.agent.registered" and ev["data"]["name"] == "life-2", ev
        a.close()
        ev = watcher.next_event()
        assert ev["event"] == "ensemble.agent.unregistered" and ev["data"]["name"] == "life-2", ev
        names = {x["name"] for x in watcher.ok("agents.list")["agents"]}
        assert "life-2" not in names and "life-1" not in names, names
        watcher.close()
    finally:
        d.cleanup()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_distinct_topics_do_not_grow_the_daemon():
    """A client cycling through 250,000 distinct topic names (subscribe, then
    unsubscribe, 1,000 at a time): the daemon forgets each topic with its
    last subscriber (the bus unit test runs 1,000,000).  Under the
    sanitizers, which are much slower here, a few thousand: the plain build
    is where the bound bites."""
    d = Daemon()
    try:
        c = d.client()
        plain = SCALE == 1
        batches = 250 if plain else 4

        def cycle(prefix, n):
            for b in range(n):
                topics = [f"{prefix}.{b}.{i}" for i in range(1000)]
                assert len(c.ok("subscribe", {"topics": topics})["subscribed"]) == 1000
                r = c.ok("unsubscribe", {"topics": topics})
                assert len(r["unsubscribed"]) == 1000 and r["total"] == 0, r["total"]

        cycle("warm", 20 if plain else 1)  # the allocator's steady state
        before = rss_kb(d.proc.pid)
        cycle("cycling.topic", batches)
        grown = rss_kb(d.proc.pid) - before
        assert grown < 8 * 1024 * MEMORY_SCALE, f"{batches * 1000} distinct topics grew the daemon by {grown} kB"
        assert c.ok("health")["subscriptions"] == 0
        c.close()
    finally:
        d.cleanup()


run_tests(globals())
