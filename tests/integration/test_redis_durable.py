"""transport-redis durable topics: events of redis-durable-topics appended to
Redis Streams (a real redis-server on a free loopback port, no persistence)
and read back through the agent "durable" on any node: read from a stream id
(what a reconnecting subscriber missed), consumer groups with redelivery to a
restarted consumer and claiming from a dead one, acknowledgements, trimming
by length, bad input, Redis away (NOT_AVAILABLE, appends flushed from the
outbox once it is back)."""

import signal
import time

from enslib import SCALE, run_tests
from test_redis import REDIS_CLI, REDIS_SERVER, Redis, bridge, node, wait_connected, wait_until, whoami

DURABLE = ["orders.*"]


def durable_node(redis, node_id=None, **extra):
    settings = {"redis-durable-topics": DURABLE, "redis-heartbeat-ms": 200}
    settings.update(extra)
    return node(redis, node_id, **settings)


def call(c, action, data=None):
    """The agent durable's raw answer."""
    return c.request(action, data, agent="durable")


def ok(c, action, data=None):
    reply = call(c, action, data)
    assert reply["status"] == "success", reply
    return reply["data"]


def error(c, action, data, code):
    reply = call(c, action, data)
    assert reply["status"] == "error" and reply["error"]["code"] == code, reply
    return reply["error"]


def xlen(redis, topic):
    return int(redis.cli("XLEN", f"ensemble:stream:{topic}").strip())


def wait_xlen(redis, topic, n):
    wait_until(lambda: xlen(redis, topic) == n, what=f"{n} entries in the stream of {topic}")


def durable_info(c):
    return bridge(c)["durable"]


def test_read_from_any_node():
    r = Redis()
    a = b = None
    try:
        a = durable_node(r, "a")
        b = durable_node(r, "b")
        ca, cb = a.client(), b.client()
        wait_connected(ca, ["a", "b"])
        wait_connected(cb, ["a", "b"])
        sender = whoami(ca, "sender")
        for i in range(5):
            ca.ok("publish", {"topic": "orders.new", "data": {"n": i, "text": "é\"\n", "nested": [1, {"x": None}]}})
        wait_xlen(r, "orders.new", 5)

        # B reads everything from the start, in order, data intact
        got = ok(cb, "read", {"topic": "orders.new", "after": "0"})
        entries = got["entries"]
        assert got["topic"] == "orders.new" and len(entries) == 5, got
        assert [e["data"] for e in entries] == [{"n": i, "text": "é\"\n", "nested": [1, {"x": None}]}
                                                 for i in range(5)], entries
        for e in entries:
            assert e["topic"] == "orders.new" and e["node"] == "a" and e["from"] == sender, e
            assert isinstance(e["seq"], int) and isinstance(e["ts"], int) and "redelivered" not in e, e
        assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries), entries
        assert abs(entries[0]["ts"] - time.time() * 1000) < 60000, entries[0]
        assert got["last_id"] == entries[-1]["id"], got
        # "after" defaults to the start
        assert ok(cb, "read", {"topic": "orders.new"})["entries"] == entries

        # a subscriber that saw the third entry gets the last two
        got = ok(cb, "read", {"topic": "orders.new", "after": entries[2]["id"]})
        assert [e["id"] for e in got["entries"]] == [e["id"] for e in entries[3:]], got
        # nothing after the last: last_id stays where it was
        got = ok(cb, "read", {"topic": "orders.new", "after": entries[-1]["id"]})
        assert got["entries"] == [] and got["last_id"] == entries[-1]["id"], got
        # paging with count
        got = ok(ca, "read", {"topic": "orders.new", "count": 2})
        assert [e["id"] for e in got["entries"]] == [e["id"] for e in entries[:2]], got
        got = ok(ca, "read", {"topic": "orders.new", "after": got["last_id"], "count": 2})
        assert [e["id"] for e in got["entries"]] == [e["id"] for e in entries[2:4]], got
        # another durable topic has its own stream; a topic never published reads empty
        assert ok(cb, "read", {"topic": "orders.none"}) == {"topic": "orders.none", "entries": [], "last_id": "0"}

        # neither a non-durable topic nor a targeted event is stored
        ca.ok("publish", {"topic": "news", "data": 1})
        ca.ok("publish", {"topic": "orders.new", "data": "private", "to": sender})
        ca.ok("publish", {"topic": "orders.new", "data": "marker"})
        wait_xlen(r, "orders.new", 6)
        assert r.cli("KEYS", "ensemble:stream:*").split() == ["ensemble:stream:orders.new"], r.cli("KEYS", "*")
        got = ok(cb, "read", {"topic": "orders.new", "after": entries[-1]["id"]})
        assert [e["data"] for e in got["entries"]] == ["marker"], got

        info = durable_info(ca)
        assert info["topics"] == DURABLE and info["maxlen"] == 100000 and info["agent"] is True, info
        assert info["appended"] == 6 and info["reads"] >= 2, info
        assert durable_info(cb)["reads"] >= 5 and durable_info(cb)["appended"] == 0, durable_info(cb)
        assert a.stop() == 0 and b.stop() == 0, a.read_log() + b.read_log()
    finally:
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_consumer_group_redelivery():
    r = Redis()
    d = None
    try:
        d = durable_node(r, "a")
        pub = d.client()
        wait_connected(pub)
        for i in range(3):
            pub.ok("publish", {"topic": "orders.q", "data": {"job": i}})
        wait_xlen(r, "orders.q", 3)
        info = ok(pub, "info", {"topic": "orders.q"})
        assert info == {"topic": "orders.q", "length": 3, "groups": []}, info

        # w1 takes the three jobs and dies before acknowledging
        w = d.client()
        got = ok(w, "consume", {"topic": "orders.q", "group": "g", "consumer": "w1"})
        assert got["topic"] == "orders.q" and got["group"] == "g" and got["consumer"] == "w1", got
        assert [e["data"] for e in got["entries"]] == [{"job": i} for i in range(3)], got
        assert [e["redelivered"] for e in got["entries"]] == [False] * 3 and got["trimmed"] == [], got
        ids = [e["id"] for e in got["entries"]]
        w.close()
        info = ok(pub, "info", {"topic": "orders.q"})
        assert info["length"] == 3 and info["groups"][0]["name"] == "g", info
        assert info["groups"][0]["pending"] == 3 and info["groups"][0]["last_delivered_id"] == ids[-1], info

        # restarted, w1 gets the same jobs again, marked redelivered
        w = d.client()
        got = ok(w, "consume", {"topic": "orders.q", "group": "g", "consumer": "w1"})
        assert [e["id"] for e in got["entries"]] == ids, got
        assert all(e["redelivered"] for e in got["entries"]), got
        assert [e["data"] for e in got["entries"]] == [{"job": i} for i in range(3)], got
        assert ok(w, "ack", {"topic": "orders.q", "group": "g", "ids": ids}) == {
            "topic": "orders.q", "group": "g", "acked": 3}
        assert ok(w, "ack", {"topic": "orders.q", "group": "g", "ids": ids})["acked"] == 0  # once only

        # then only what is new
        for i in range(3, 5):
            pub.ok("publish", {"topic": "orders.q", "data": {"job": i}})
        wait_xlen(r, "orders.q", 5)
        got = ok(w, "consume", {"topic": "orders.q", "group": "g", "consumer": "w1", "count": 10})
        assert [(e["data"], e["redelivered"]) for e in got["entries"]] == [({"job": 3}, False), ({"job": 4}, False)], got
        assert ok(w, "ack", {"topic": "orders.q", "group": "g", "ids": [e["id"] for e in got["entries"]]})["acked"] == 2
        assert ok(w, "consume", {"topic": "orders.q", "group": "g", "consumer": "w1"})["entries"] == []
        info = ok(pub, "info", {"topic": "orders.q"})
        assert info["length"] == 5 and info["groups"][0]["pending"] == 0, info

        # a second group sees the whole stream on its own, count respected
        got = ok(w, "consume", {"topic": "orders.q", "group": "audit", "consumer": "x", "count": 4})
        assert [e["data"]["job"] for e in got["entries"]] == [0, 1, 2, 3], got
        info = ok(pub, "info", {"topic": "orders.q"})
        groups = {g["name"]: g for g in info["groups"]}
        assert groups["audit"]["pending"] == 4 and groups["g"]["pending"] == 0, info
        assert groups["audit"]["consumers"] == 1, info
        h = durable_info(pub)
        assert h["consumed"] == 3 + 3 + 2 + 4 and h["redelivered"] == 3 and h["acked"] == 5, h
        assert d.stop() == 0, d.read_log()
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_claim_from_dead_consumer():
    r = Redis()
    d = None
    try:
        d = durable_node(r, "a")
        c = d.client()
        wait_connected(c)
        for i in range(4):
            c.ok("publish", {"topic": "orders.claim", "data": i})
        wait_xlen(r, "orders.claim", 4)
        got = ok(c, "consume", {"topic": "orders.claim", "group": "g", "consumer": "dead"})
        ids = [e["id"] for e in got["entries"]]
        assert len(ids) == 4, got

        # not idle long enough: nothing to claim, nothing new
        live = {"topic": "orders.claim", "group": "g", "consumer": "live", "count": 2, "claim_idle_ms": 5000}
        assert ok(c, "consume", live)["entries"] == []
        time.sleep(0.3)
        live["claim_idle_ms"] = 200
        got = ok(c, "consume", live)
        assert [(e["id"], e["data"], e["redelivered"]) for e in got["entries"]] == [
            (ids[0], 0, True), (ids[1], 1, True)], got
        # its own pending first: the same two until acknowledged
        assert [e["id"] for e in ok(c, "consume", live)["entries"]] == ids[:2]
        assert ok(c, "ack", {"topic": "orders.claim", "group": "g", "ids": ids[:2]})["acked"] == 2
        got = ok(c, "consume", live)
        assert [e["id"] for e in got["entries"]] == ids[2:], got
        assert ok(c, "ack", {"topic": "orders.claim", "group": "g", "ids": ids[2:]})["acked"] == 2
        # the dead consumer, back, has nothing left
        assert ok(c, "consume", {"topic": "orders.claim", "group": "g", "consumer": "dead"})["entries"] == []
        info = ok(c, "info", {"topic": "orders.claim"})
        assert info["groups"][0]["pending"] == 0 and info["groups"][0]["consumers"] == 2, info
        assert d.stop() == 0, d.read_log()
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_trimmed_by_length():
    r = Redis()
    d = None
    try:
        d = durable_node(r, "a", **{"redis-stream-maxlen": 10})
        c = d.client()
        wait_connected(c)
        for i in range(5):
            c.ok("publish", {"topic": "orders.t", "data": i})
        wait_xlen(r, "orders.t", 5)
        slow = {"topic": "orders.t", "group": "g", "consumer": "slow", "count": 5}
        first = ok(c, "consume", slow)["entries"]
        assert [e["data"] for e in first] == list(range(5)), first
        for i in range(5, 300):
            c.ok("publish", {"topic": "orders.t", "data": i})
        # the last one is in: everything was appended
        wait_until(lambda: (lambda e: e and e[-1]["data"] == 299)(
            ok(c, "read", {"topic": "orders.t", "count": 10000})["entries"]), what="the 300th entry")
        n = xlen(r, "orders.t")
        assert 10 <= n < 300, n  # MAXLEN ~ trims whole nodes, never below the bound
        entries = ok(c, "read", {"topic": "orders.t", "count": 10000})["entries"]
        assert len(entries) == n and entries[0]["data"] > 4, (n, entries[0])
        assert [e["data"] for e in entries] == list(range(300 - n, 300)), entries
        assert durable_info(c)["appended"] == 300

        # the slow consumer's unacknowledged entries are gone: reported as
        # trimmed (and acknowledged for it), then it goes on with what is left
        got = ok(c, "consume", slow)
        assert got["trimmed"] == [e["id"] for e in first], got
        assert [(e["data"], e["redelivered"]) for e in got["entries"]] == [(i, False) for i in range(300 - n, 305 - n)], got
        info = ok(c, "info", {"topic": "orders.t"})
        assert info["length"] == n and info["groups"][0]["pending"] == 5, info
        assert durable_info(c)["trimmed_pending"] == 5, durable_info(c)
        assert d.stop() == 0, d.read_log()
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_redis_glob_patterns_and_bad_setting():
    r = Redis()
    d = bad = None
    try:
        # Redis glob rules ([...] classes too), as the bus and PSUBSCRIBE match
        d = durable_node(r, "a", **{"redis-durable-topics": ["orders.*", "log.[a-c]?", "x.[^0-9]"]})
        c = d.client()
        wait_connected(c)
        for topic in ("log.a1", "log.d1", "log.a", "log.b22", "x.y", "x.5", "orders.m"):
            c.ok("publish", {"topic": topic, "data": topic})
        wait_until(lambda: len(r.cli("KEYS", "ensemble:stream:*").split()) == 3, what="three streams")
        # orders.m came last: nothing else is on its way
        wait_xlen(r, "orders.m", 1)
        assert sorted(r.cli("KEYS", "ensemble:stream:*").split()) == [
            "ensemble:stream:log.a1", "ensemble:stream:orders.m", "ensemble:stream:x.y"], r.cli("KEYS", "*")
        assert ok(c, "read", {"topic": "log.a1"})["entries"][0]["data"] == "log.a1"
        for topic in ("log.d1", "log.a", "x.5", "orders"):
            error(c, "read", {"topic": topic}, "NOT_FOUND")
        assert d.stop() == 0, d.read_log()

        # a bad setting: the bridge refuses to start and says why
        bad = durable_node(r, "b", **{"redis-durable-topics": ["orders.*", ""]})
        plugins = [p["id"] for p in bad.client().ok("health")["plugins"]]
        assert "transport-redis" not in plugins, plugins
        assert "redis-durable-topics: entry 2 must be a topic or pattern" in bad.read_log(), bad.read_log()
    finally:
        for x in (d, bad):
            if x:
                x.cleanup()
        r.kill()


def test_bad_input_and_redis_away():
    r = Redis()
    d = None
    try:
        d = durable_node(r, "a")
        c = d.client()
        wait_connected(c)

        def invalid(action, data, field):
            err = error(c, action, data, "INVALID_PARAMETERS")
            assert err["details"]["field"] == field and err["details"]["expected"], err
            assert field in err["message"], err
            c.ok("ping")

        invalid("read", None, "data")
        invalid("read", [1], "data")
        invalid("read", {}, "topic")
        invalid("read", {"topic": ""}, "topic")
        invalid("read", {"topic": 7}, "topic")
        invalid("read", {"topic": "orders.*"}, "topic")
        invalid("read", {"topic": "x" * 2000}, "topic")
        invalid("read", {"topic": "orders.a", "count": "x"}, "count")
        invalid("read", {"topic": "orders.a", "count": 0}, "count")
        invalid("read", {"topic": "orders.a", "count": 10001}, "count")
        invalid("read", {"topic": "orders.a", "count": 1.5}, "count")
        invalid("read", {"topic": "orders.a", "after": "abc"}, "after")
        invalid("read", {"topic": "orders.a", "after": 5}, "after")
        invalid("read", {"topic": "orders.a", "after": "1-2-3"}, "after")
        invalid("read", {"topic": "orders.a", "after": "99999999999999999999999-0"}, "after")
        invalid("consume", {"topic": "orders.a", "consumer": "w"}, "group")
        invalid("consume", {"topic": "orders.a", "group": "g"}, "consumer")
        invalid("consume", {"topic": "orders.a", "group": "g", "consumer": ["w"]}, "consumer")
        invalid("consume", {"topic": "orders.a", "group": "g", "consumer": "w", "count": True}, "count")
        invalid("consume", {"topic": "orders.a", "group": "g", "consumer": "w", "claim_idle_ms": -1}, "claim_idle_ms")
        invalid("ack", {"topic": "orders.a", "group": "g", "ids": "1-0"}, "ids")
        invalid("ack", {"topic": "orders.a", "group": "g", "ids": []}, "ids")
        invalid("ack", {"topic": "orders.a", "group": "g", "ids": [1]}, "ids")
        invalid("ack", {"topic": "orders.a", "group": "g", "ids": ["1-0", "nope"]}, "ids")
        invalid("ack", {"topic": "orders.a", "ids": ["1-0"]}, "group")

        err = error(c, "read", {"topic": "news"}, "NOT_FOUND")
        assert err["message"] == "topic news is not durable (setting redis-durable-topics)", err
        assert err["details"] == {"topic": "news", "durable_topics": DURABLE}, err
        err = error(c, "drop", {"topic": "orders.a"}, "UNKNOWN_ACTION")
        assert "read, consume, ack, info" in err["message"], err

        # Redis says no: its message comes back
        assert ok(c, "ack", {"topic": "orders.a", "group": "nogroup", "ids": ["1-0"]})["acked"] == 0
        r.cli("SET", "ensemble:stream:orders.bad", "not a stream")
        for action, data in (("read", {}), ("consume", {"group": "g", "consumer": "w"}), ("info", {}),
                             ("ack", {"group": "g", "ids": ["1-0"]})):
            err = error(c, action, {"topic": "orders.bad", **data}, "UPSTREAM_ERROR")
            assert "WRONGTYPE" in err["message"] and err["details"]["redis_error"].startswith("WRONGTYPE"), err
        c.ok("ping")

        # a request in flight when the link breaks
        r.proc.send_signal(signal.SIGSTOP)
        c.send({"id": "inflight", "agent": "durable", "action": "info", "data": {"topic": "orders.a"}})
        time.sleep(0.3 * SCALE)
        r.kill()
        reply = c.wait_reply("inflight")
        assert reply["status"] == "error" and reply["error"]["code"] == "NOT_AVAILABLE", reply
        wait_until(lambda: bridge(c)["state"] != "connected", what="the bridge notices Redis is gone")
        # Redis away: a clear answer, the daemon carries on
        for action, data in (("read", {}), ("consume", {"group": "g", "consumer": "w"}), ("info", {}),
                             ("ack", {"group": "g", "ids": ["1-0"]})):
            err = error(c, action, {"topic": "orders.a", **data}, "NOT_AVAILABLE")
            assert "Redis" in err["message"], err
        # bad input is still bad input
        invalid("read", {"topic": "orders.a", "count": "x"}, "count")
        c.ok("ping")
        assert durable_info(c)["waiting"] == 0, durable_info(c)
        assert d.stop() == 0, d.read_log()
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_appended_after_redis_restart():
    r = Redis()
    d = None
    try:
        d = durable_node(r, "a")
        c = d.client()
        wait_connected(c)
        for i in range(3):
            c.ok("publish", {"topic": "orders.o", "data": {"before": i}})
        wait_xlen(r, "orders.o", 3)

        r.kill()
        wait_until(lambda: bridge(c)["state"] != "connected", what="the bridge notices Redis is gone")
        for i in range(7):
            c.ok("publish", {"topic": "orders.o", "data": {"while_down": i}})
            c.ok("publish", {"topic": "news", "data": i})
        info = bridge(c)
        assert info["outbox"] == 7 * 3, info  # XADD + PUBLISH per durable event, PUBLISH for news

        # no persistence: the restarted Redis holds what was published since
        r.start()
        wait_connected(c)
        wait_xlen(r, "orders.o", 7)
        for i in range(3):
            c.ok("publish", {"topic": "orders.o", "data": {"after": i}})
        wait_xlen(r, "orders.o", 10)
        got = [e["data"] for e in ok(c, "read", {"topic": "orders.o"})["entries"]]
        assert got == [{"while_down": i} for i in range(7)] + [{"after": i} for i in range(3)], got
        info = bridge(c)
        assert info["outbox"] == 0 and info["outbox_dropped"] == 0 and info["durable"]["appended"] == 13, info
        assert d.stop() == 0, d.read_log()
    finally:
        if d:
            d.cleanup()
        r.kill()


if __name__ == "__main__":
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("SKIP: redis-server / redis-cli not installed")
        raise SystemExit(77)
    run_tests(globals())
