"""transport-redis, agents and budget across daemons: a request from a client
of daemon A to an agent registered on daemon B gets B's answer (errors,
timeouts and a vanishing agent included); a dual-mode agent script that only
speaks Redis (agent.NAME.request / agent.NAME.response) is an agent of every
daemon and every transport; the daemon's own agents answer requests
published on Redis; two daemons keep one daily budget in Redis and never
overspend it together."""

import json
import os
import subprocess
import sys
import threading
import urllib.request

from enslib import Daemon, SCALE, gv, run_tests
from test_redis import REDIS_CLI, REDIS_SERVER, CliSubscriber, Redis, bridge, node, wait_connected, wait_until
from fake_openai import FakeOpenAI

AGENT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "scripts",
                            "dual_mode_agent.py")


def paid_backend(url):
    """provider-openai on the fake server at 10 USD per 1k tokens either way."""
    return {"plugin": gv("provider-openai"), "base-url": gv(url), "models": gv(["paid-model"]),
            "model-map": gv({"paid-model": "ok-paid"}), "quality": gv(0.9), "cost-input-per-1k": gv(10.0),
            "cost-output-per-1k": gv(10.0), "latency-ms": gv(200), "max-retries": gv(0), "timeout-ms": gv(10000),
            "max-concurrency": gv(100)}


class Agent:
    """An external agent on its own connection to a daemon."""

    def __init__(self, d, name, actions=None):
        self.c = d.client()
        self.c.ok("agents.register", {"name": name, "actions": actions or []})

    def next_request(self):
        while True:
            obj = self.c.recv()
            if "action" in obj and "status" not in obj and "event" not in obj:
                return obj

    def answer(self, q, data):
        self.c.send({"reply_to": q["id"], "status": "success", "data": data})

    def fail(self, q, code, message, details=None):
        err = {"code": code, "message": message}
        if details is not None:
            err["details"] = details
        self.c.send({"reply_to": q["id"], "status": "error", "error": err})

    def close(self):
        self.c.close()


def agents_of(c):
    return {a["name"]: a for a in c.ok("agents.list")["agents"]}


def wait_agent(c, name, present=True):
    return wait_until(lambda: (name in agents_of(c)) == present and (agents_of(c).get(name) or True),
                      what=f"agent {name} {'listed' if present else 'gone'}")


def start_script(redis, name):
    proc = subprocess.Popen([sys.executable, AGENT_SCRIPT, "127.0.0.1", str(redis.port), name],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def send(c, action, data=None, agent=None, timeout_ms=None):
    """Sends a request without waiting; returns its id for c.wait_reply."""
    c.next_id += 1
    rid = f"t{c.next_id}"
    msg = {"id": rid, "action": action, "data": data if data is not None else {}}
    if agent:
        msg["agent"] = agent
    if timeout_ms:
        msg["timeout_ms"] = timeout_ms
    c.send(msg)
    return rid


def http_post(d, path, body):
    r = urllib.request.Request(d.http_url() + path, data=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10 * SCALE) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_request_to_an_agent_of_another_node():
    r = Redis()
    a = b = None
    try:
        a = node(r, "a")
        b = node(r, "b")
        ca, cb = a.client(), b.client()
        wait_connected(ca, ["a", "b"])
        wait_connected(cb, ["a", "b"])
        calc = Agent(b, "calc", actions=["add", "fail", "hang"])
        # listed on A as B's (who serves it is known at B's next heartbeat at the latest)
        listed = wait_until(lambda: agents_of(ca).get("calc", {}).get("node") == "b" and agents_of(ca)["calc"],
                            what="calc listed on A as B's")
        assert listed["kind"] == "remote" and listed["connected"] and listed["via"] == "redis", listed
        assert agents_of(cb)["calc"]["kind"] == "client", agents_of(cb)["calc"]

        # an event targeted at the agent's name reaches its connection on B, and only it
        wait_until(lambda: "ensemble:*:calc" in bridge(cb)["patterns"], what="B listens for events to calc")
        ca.ok("publish", {"topic": "job", "data": {"for": "calc"}, "to": "calc"})
        ev = calc.c.next_event()
        assert ev["event"] == "job" and ev["data"] == {"for": "calc"} and ev["to"] == "calc", ev

        # a reply, across nodes
        rid = send(ca, "add", {"x": 2, "y": 3}, agent="calc")
        q = calc.next_request()
        assert q["action"] == "add" and q["data"] == {"x": 2, "y": 3}, q
        calc.answer(q, {"sum": 5})
        rep = ca.wait_reply(rid)
        assert rep["status"] == "success" and rep["data"] == {"sum": 5}, rep

        # the agent's error, code and details intact
        rid = send(ca, "fail", {"why": "test"}, agent="calc")
        q = calc.next_request()
        calc.fail(q, "CALC_FAILED", "cannot", {"input": 1})
        rep = ca.wait_reply(rid)
        assert rep["status"] == "error" and rep["error"]["code"] == "CALC_FAILED", rep
        assert rep["error"]["message"] == "cannot" and rep["error"]["details"] == {"input": 1}, rep

        # no answer: the requester's deadline holds across nodes
        rid = send(ca, "hang", {}, agent="calc", timeout_ms=300)
        calc.next_request()
        rep = ca.wait_reply(rid)
        assert rep["status"] == "error" and rep["error"]["code"] == "TIMEOUT", rep

        # the agent vanishes mid-request: AGENT_GONE, then it is no longer listed
        rid = send(ca, "add", {"x": 1}, agent="calc")
        calc.next_request()
        calc.close()
        rep = ca.wait_reply(rid)
        assert rep["status"] == "error" and rep["error"]["code"] == "AGENT_GONE", rep
        wait_agent(ca, "calc", present=False)
        rep = ca.wait_reply(send(ca, "add", {}, agent="calc"))
        assert rep["error"]["code"] == "AGENT_NOT_FOUND", rep

        # a local registration takes the name from a remote one
        calc_b = Agent(b, "calc2")
        wait_agent(ca, "calc2")
        calc_a = Agent(a, "calc2")
        assert agents_of(ca)["calc2"]["kind"] == "client"
        rid = send(ca, "add", {}, agent="calc2")
        q = calc_a.next_request()
        calc_a.answer(q, "local")
        assert ca.wait_reply(rid)["data"] == "local"
        calc_a.close()
        calc_b.close()

        info = bridge(ca)["agents"]
        assert info["requests_sent"] >= 4 and info["answers_received"] >= 3 and info["waiting"] == 0, info
        assert a.stop() == 0 and b.stop() == 0, a.read_log() + b.read_log()
    finally:
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_dual_mode_agent_script():
    r = Redis()
    a = b = None
    script = None
    try:
        a = node(r, "a")
        b = node(r, "b")
        ca, cb = a.client(), b.client()
        wait_connected(ca, ["a", "b"])
        script = start_script(r, "scribe")
        for c in (ca, cb):
            listed = wait_agent(c, "scribe")
            assert listed["kind"] == "remote" and listed.get("dual_mode") is True, listed

        # native protocol, from either daemon
        for c in (ca, cb):
            rep = c.wait_reply(send(c, "echo", {"n": 1}, agent="scribe"))
            assert rep["status"] == "success" and rep["data"] == {"n": 1}, rep
        me = ca.wait_reply(send(ca, "whoami", {}, agent="scribe"))["data"]
        assert me["agent"] == "scribe" and me["node"] == "a" and me["from"].endswith("-a"), me
        rep = cb.wait_reply(send(cb, "fail", {"k": "v"}, agent="scribe"))
        assert rep["error"]["code"] == "SCRIPT_FAILED" and rep["error"]["details"] == {"input": {"k": "v"}}, rep

        # HTTP transport of daemon A
        status, body = http_post(a, "/api/agents/scribe/echo", {"via": "http"})
        assert status == 200 and body == {"via": "http"}, (status, body)

        # several at once, answered out of order, each to its own requester
        clients = [a.client() for _ in range(4)] + [b.client() for _ in range(4)]
        rids = [send(c, "slow", {"ms": 200 - 20 * i}, agent="scribe") for i, c in enumerate(clients)]
        for c, rid in zip(clients, rids):
            assert c.wait_reply(rid)["data"] == {"slept": True}

        # the script stops: requests get an error at once, and it leaves the lists
        script.kill()
        script.wait()
        rep = ca.wait_reply(send(ca, "echo", {}, agent="scribe"))
        assert rep["error"]["code"] in ("AGENT_GONE", "AGENT_NOT_FOUND"), rep
        wait_agent(ca, "scribe", present=False)
        wait_agent(cb, "scribe", present=False)
    finally:
        if script and script.poll() is None:
            script.kill()
            script.wait()
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_daemon_agents_answer_on_redis():
    """A process that only speaks Redis reaches the agents of a daemon."""
    r = Redis()
    d = None
    sub = None
    try:
        d = node(r, "a")
        c = d.client()
        wait_connected(c)
        ext = Agent(d, "local-one")
        wait_until(lambda: "agent.local-one.request" in r.cli("PUBSUB", "CHANNELS", "agent.*").split(),
                   what="the daemon listens on agent.local-one.request")
        sub = CliSubscriber(r, "agent.local-one.response")
        assert r.cli("PUBLISH", "agent.local-one.request",
                     json.dumps({"id": "x1", "action": "hello", "data": {"k": 1}})).strip() == "1"
        q = ext.next_request()
        assert q["action"] == "hello" and q["data"] == {"k": 1}, q
        ext.answer(q, {"hi": True})
        channel, payload = sub.message()
        body = json.loads(payload)
        assert body["id"] == "x1" and body["status"] == "success" and body["data"] == {"hi": True}, body
        assert body["node"] == "a", body

        # malformed requests: an answer when there is an id to answer, never a crash
        r.cli("PUBLISH", "agent.local-one.request", json.dumps({"id": "x2"}))
        body = json.loads(sub.message()[1])
        assert body["id"] == "x2" and body["status"] == "error" and body["error"]["code"] == "INVALID_REQUEST", body
        for junk in ("not json", "[1,2]", json.dumps({"action": "no id"}), "{" * 5000):
            r.cli("PUBLISH", "agent.local-one.request", junk)
        # a request with its own reply_to, for an action the agent refuses
        sub2 = CliSubscriber(r, "my.inbox")
        r.cli("PUBLISH", "agent.local-one.request", json.dumps({"id": "x3", "action": "nope", "reply_to": "my.inbox"}))
        q = ext.next_request()
        ext.fail(q, "NOPE", "refused")
        body = json.loads(sub2.message()[1])
        sub2.close()
        assert body["id"] == "x3" and body["error"]["code"] == "NOPE", body
        assert bridge(c)["agents"]["rejected_requests"] >= 2, bridge(c)
        assert c.ok("ping")["pong"] is True
        ext.close()
        wait_until(lambda: "agent.local-one.request" not in r.cli("PUBSUB", "CHANNELS", "agent.*").split(),
                   what="the daemon stops listening for a gone agent")
    finally:
        if sub:
            sub.close()
        if d:
            d.cleanup()
        r.kill()


def test_shared_budget_across_daemons():
    fake = FakeOpenAI()
    r = Redis()
    daemons = []
    try:
        for name in ("a", "b"):
            daemons.append(Daemon(
                settings={"redis-url": gv(r.url()), "redis-heartbeat-ms": gv(300), "node-id": gv(name),
                          "providers": gv(["paid"]), "disabled-plugins": gv(["provider-local"]),
                          "daily-budget": gv(1.0)},
                groups={"providers/paid": paid_backend(fake.url)}))
        for d in daemons:
            wait_connected(d.client(), ["a", "b"])
        outcomes = []
        lock = threading.Lock()

        def run(cl):
            for _ in range(5):
                rep = cl.request("complete", {"prompt": "hi", "token_count": 20, "max_tokens": 10})
                if rep["status"] == "error":
                    with lock:
                        outcomes.append(rep["error"]["code"])
                    continue
                while True:
                    ev = cl.next_event()
                    if ev["event"] == "COMPLETION_RESULT" and ev["data"]["request_id"] == rep["data"]["request_id"]:
                        break
                with lock:
                    outcomes.append("ok" if "result" in ev["data"] else ev["data"]["reason"])

        clients = [d.client() for d in daemons for _ in range(5)]
        threads = [threading.Thread(target=run, args=(cl,)) for cl in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        assert len(outcomes) == 50, outcomes
        ok = outcomes.count("ok")
        # each request costs 0.13 once settled (13 tokens at 10 USD per 1k);
        # a budget per daemon would let the two spend close to 2.0 together
        assert ok >= 3 and outcomes.count("BUDGET_EXCEEDED") >= 1, outcomes
        assert ok * 0.13 <= 1.0 + 1e-9, outcomes
        day = daemons[0].client().ok("budget")["day"]
        ledger = wait_until(lambda: (lambda h: h if float(h.get("spent", 0)) > 0 and not any(
            k.startswith("reserved:") and abs(float(v)) > 1e-9 for k, v in h.items()) else None)(
            dict(zip(*[iter(r.cli("HGETALL", f"ensemble:budget:{day}").split())] * 2))),
            what="the ledger settled")
        assert abs(float(ledger["spent"]) - ok * 0.13) < 1e-6, (ledger, outcomes)
        node_spends = []
        for d in daemons:
            budget = d.client().ok("budget")
            assert budget["shared"] is True and budget["current_spend"] <= budget["daily_budget"] + 1e-9, budget
            node_spends.append(budget["node_spend"])
        assert abs(sum(node_spends) - ok * 0.13) < 1e-6, (node_spends, outcomes)

        # Redis away: paid requests are refused rather than risking overspend
        r.kill()
        c = daemons[0].client()
        wait_until(lambda: bridge(c)["state"] != "connected", what="A notices Redis is gone")
        rep = c.request("complete", {"prompt": "hi", "token_count": 1, "max_tokens": 1})
        if rep["status"] == "success":
            while True:
                ev = c.next_event()
                if ev["event"] == "COMPLETION_RESULT":
                    break
            assert ev["data"]["reason"] == "BUDGET_EXCEEDED", ev
        assert bridge(c)["shared_budget"]["unavailable"] >= 1, bridge(c)
    finally:
        for d in daemons:
            d.cleanup()
        r.kill()
        fake.close()


if __name__ == "__main__":
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("SKIP: redis-server / redis-cli not installed")
        raise SystemExit(77)
    run_tests(globals())
