"""transport-redis: the bus bridged through a real redis-server (started on a
free loopback port, no persistence): redis-cli both ways, two daemons as one
bus (pub/sub once, no loops, targeted delivery across nodes, node heartbeats),
Redis killed and restarted with the outbox flushed, and a tiny outbox whose
drops are counted in health."""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from enslib import Daemon, SCALE, die_with_parent, gv, pick_port, run_tests

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


class Redis:
    """A private redis-server on a loopback port (see enslib's ports note:
    redis-server must be told its port, so it gets a picked one, and a new
    pick when another test took that port first)."""

    def __init__(self):
        self.port = None
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="ens-redis-")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.start()

    def start(self):
        """Starts redis-server: on a picked port the first time, on the same
        port again after kill() (the daemons under test know that one)."""
        if self.port is None:
            for _ in range(10):
                if self._try_start(pick_port()):
                    return
            raise AssertionError(f"redis-server lost the race for a port 10 times:\n{self.read_log()}")
        # A restart: the port was ours a moment ago and is outside the
        # ephemeral range, so only another test's pick can hold it, briefly.
        for _ in range(10):
            if self._try_start(self.port):
                return
            time.sleep(0.1)
        raise AssertionError(f"redis-server cannot take its port {self.port} back:\n{self.read_log()}")

    def _try_start(self, port):
        """True once redis-server answers on @port; False if the port was
        taken (it says so and exits)."""
        os.makedirs(self.dir, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--dir", self.dir],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.time() + 10 * SCALE
        while time.time() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.read_log():
                    return False
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{self.read_log()}")
            # Ours, not whatever else answers on that port: INFO names the pid.
            if self._pid_on(port) == self.proc.pid:
                self.port = port
                return True
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"redis-server did not answer on port {port}:\n{self.read_log()}")

    @staticmethod
    def _pid_on(port):
        """The process_id INFO reports from whatever listens on @port, or None."""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2 * SCALE) as s:
                s.sendall(b"INFO server\r\n")
                data = b""
                while len(data) < 1 << 20:
                    m = re.search(rb"process_id:(\d+)\r\n", data)
                    if m:
                        return int(m.group(1))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            pass
        return None

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args):
        return subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *args], check=True,
                              capture_output=True, text=True, timeout=10).stdout

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self):
        return f"redis://127.0.0.1:{self.port}"


class CliSubscriber:
    """redis-cli SUBSCRIBE in a subprocess; messages arrive on a queue."""

    def __init__(self, redis, channel):
        self.proc = subprocess.Popen([REDIS_CLI, "-h", "127.0.0.1", "-p", str(redis.port), "SUBSCRIBE", channel],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        # "subscribe", channel, count: then it is listening
        assert [self.line(), self.line()] == ["subscribe", channel]
        self.line()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, timeout=10):
        return self.lines.get(timeout=timeout * SCALE)

    def message(self):
        """(channel, payload) of the next message."""
        while self.line() != "message":
            pass
        return self.line(), self.line()

    def close(self):
        self.proc.kill()
        self.proc.wait()


def node(redis, node_id=None, **extra):
    settings = {"redis-url": gv(redis.url()), "redis-heartbeat-ms": gv(300)}
    if node_id:
        settings["node-id"] = gv(node_id)
    settings.update({k: gv(v) for k, v in extra.items()})
    return Daemon(settings=settings)


def bridge(c):
    h = c.ok("health")
    return [p for p in h["plugins"] if p["id"] == "transport-redis"][0].get("info", {})


def wait_until(pred, timeout=8, what="condition"):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_connected(c, nodes=()):
    return wait_until(lambda: (lambda i: i.get("state") == "connected" and set(nodes) <= set(i.get("nodes", []))
                               and i)(bridge(c)), what=f"bridge connected with nodes {nodes}")


def subscribe(c, topics):
    """Subscribes, then waits until Redis confirmed the node listens: a
    publish elsewhere reaches this subscriber from then on."""
    c.ok("subscribe", {"topics": topics})
    wait_until(lambda: {"ensemble:" + t for t in topics} <= set(bridge(c).get("patterns", [])),
               what=f"Redis confirms the node's PSUBSCRIBE of {topics}")


def whoami(c, tag):
    topic = f"ens.test.whoami.{tag}"
    c.ok("subscribe", {"topics": [topic]})
    c.ok("publish", {"topic": topic, "data": "me"})
    ev = c.next_event()
    c.ok("unsubscribe", {"topics": [topic]})
    return ev["from"]


def events_until(c, marker):
    got = []
    while True:
        ev = c.next_event()
        if ev["event"] == marker:
            return got
        got.append(ev)


def test_disabled_without_url():
    d = Daemon()
    try:
        info = bridge(d.client())
        assert info["state"] == "disabled", info
    finally:
        d.cleanup()


def test_redis_cli_both_ways():
    r = Redis()
    d = None
    sub = None
    try:
        d = node(r)
        c = d.client()
        wait_connected(c)
        subscribe(c, ["news", "plain", "text"])
        # redis-cli PUBLISH reaches a native subscriber
        r.cli("PUBLISH", "ensemble:news", '{"x":1}')
        ev = c.next_event()
        assert ev["event"] == "news" and ev["data"] == {"x": 1} and ev["from"] == "redis", ev
        r.cli("PUBLISH", "ensemble:text", "not json")
        ev = c.next_event()
        assert ev["event"] == "text" and ev["data"] == "not json", ev
        # an envelope whose fields have the wrong JSON types: the channel
        # names the topic, the sender is "redis"; nothing else is disturbed
        r.cli("PUBLISH", "ensemble:news", '{"node":{},"data":5}')
        ev = c.next_event()
        assert ev["event"] == "news" and ev["data"] == 5 and ev["from"] == "redis", ev
        r.cli("PUBLISH", "ensemble:news", '{"node":"elsewhere","topic":{},"from":[1],"to":7,"data":6}')
        ev = c.next_event()
        assert ev["event"] == "news" and ev["data"] == 6 and ev["from"] == "redis", ev
        # hostile channels (no topic, a glob as topic) are refused and counted;
        # the bridge and the subscriber carry on
        before = bridge(c).get("rejected", 0)
        subscribe(c, ["*"])
        r.cli("PUBLISH", "ensemble:", '{"x":2}')
        r.cli("PUBLISH", "ensemble:a*b", '{"x":3}')
        # a channel that is not UTF-8: no topic (found by tests/fuzz; it was
        # delivered, and its events written as invalid JSON text)
        r.cli("PUBLISH", "ensemble:bad\udcfc", '{"x":5}')
        r.cli("PUBLISH", "ensemble:news", '{"x":4}')
        ev = c.next_event()
        assert ev["event"] == "news" and ev["data"] == {"x": 4}, ev
        assert bridge(c)["rejected"] == before + 3, bridge(c)
        # redis-cli SUBSCRIBE sees a local publish, with the origin node
        sub = CliSubscriber(r, "ensemble:local.topic")
        other = d.client()
        other.ok("publish", {"topic": "local.topic", "data": {"n": 7}})
        channel, payload = sub.message()
        body = json.loads(payload)
        assert channel == "ensemble:local.topic", channel
        assert body["topic"] == "local.topic" and body["data"] == {"n": 7} and body["node"] == bridge(c)["node"], body
        assert isinstance(body["seq"], int) and body["from"].startswith("c"), body
    finally:
        if sub:
            sub.close()
        if d:
            d.cleanup()
        r.kill()


def test_envelope_data_travels_as_text():
    """A node's envelope carries "data" last; the receiving node checks it
    and writes it to its subscribers as it came, without parsing it. An
    envelope of an older shape, one whose data is not JSON, and one whose
    data spans lines are delivered as before, each as one line."""
    r = Redis()
    d = None
    try:
        d = node(r)
        c = d.client()
        wait_connected(c)
        subscribe(c, ["lazy"])
        text = '{"x": 1.50, "s": "\\u00e9", "a": [true, null]}'
        r.cli("PUBLISH", "ensemble:lazy", '{"node":"elsewhere","topic":"lazy","from":"c9-elsewhere","seq":3,"data":' + text + '}')
        line = c.recv_line()
        assert line.startswith('{"event":"lazy","data":' + text + ',"from":"c9-elsewhere",'), line
        assert json.loads(line)["data"] == {"x": 1.5, "s": "\u00e9", "a": [True, None]}, line
        # the shape older nodes wrote: "data" before the other members
        r.cli("PUBLISH", "ensemble:lazy", '{"node":"elsewhere","topic":"lazy","data":{"old":1},"from":"c8-elsewhere","seq":4}')
        ev = c.next_event()
        assert ev["data"] == {"old": 1} and ev["from"] == "c8-elsewhere", ev
        # data that is not JSON: the payload as a whole is not JSON either,
        # so it arrives as a string, as any non-JSON payload does
        bad = '{"node":"elsewhere","topic":"lazy","seq":5,"data":{"a":}'
        r.cli("PUBLISH", "ensemble:lazy", bad)
        ev = c.next_event()
        assert ev["data"] == bad and ev["from"] == "redis", ev
        # line breaks in the data's white space never split the event's line
        r.cli("PUBLISH", "ensemble:lazy", '{"node":"elsewhere","topic":"lazy","seq":6,"data":{"a":\n [1,\r\n2]}}')
        line = c.recv_line()
        assert '"data":{"a":[1,2]}' in line and json.loads(line)["data"] == {"a": [1, 2]}, line
        # the subscriber's connection is whole: a request still gets its answer
        assert c.ok("ping") is not None
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_patterns_map_to_psubscribe():
    """A node listens on Redis for exactly what its subscribers want."""
    r = Redis()
    d = None
    try:
        d = node(r, "a")
        c = d.client()
        wait_connected(c)
        assert r.cli("PUBLISH", "ensemble:orders.1", "{}").strip() == "0"  # nobody wants it yet
        subscribe(c, ["orders.*"])
        assert r.cli("PUBLISH", "ensemble:orders.1", '{"n":1}').strip() == "1"
        ev = c.next_event()
        assert ev["event"] == "orders.1" and ev["data"] == {"n": 1}, ev
        assert r.cli("PUBLISH", "ensemble:invoices.1", "{}").strip() == "0"
        # a second subscriber of the same pattern: still one PSUBSCRIBE
        c2 = d.client()
        subscribe(c2, ["orders.*"])
        assert r.cli("PUBLISH", "ensemble:orders.2", "{}").strip() == "1"
        c2.close()
        c.ok("unsubscribe", {"topics": ["orders.*"]})
        wait_until(lambda: "ensemble:orders.*" not in bridge(c)["patterns"] and
                   r.cli("PUBLISH", "ensemble:orders.3", "{}").strip() == "0", what="PUNSUBSCRIBE")
        assert bridge(c)["patterns_pending"] == 0, bridge(c)
    finally:
        if d:
            d.cleanup()
        r.kill()


def test_two_daemons_one_bus():
    r = Redis()
    a = b = None
    try:
        a = node(r, "a")
        b = node(r, "b")
        a1, a2 = a.client(), a.client()
        b1, b2 = b.client(), b.client()
        wait_connected(a1, ["a", "b"])
        wait_connected(b1, ["a", "b"])
        subscribe(a1, ["news", "marker"])
        subscribe(b2, ["news", "marker"])
        # pub/sub across nodes: exactly once on A, once on B (no loop)
        b1.ok("publish", {"topic": "news", "data": {"headline": 1}})
        b1.ok("publish", {"topic": "marker", "data": 1})
        got = events_until(a1, "marker")
        assert [e["data"] for e in got] == [{"headline": 1}], got
        got = events_until(b2, "marker")
        assert [e["data"] for e in got] == [{"headline": 1}], got

        # targeted delivery across nodes: only the target on A
        a1_id = whoami(a1, "a1")
        assert a1_id.endswith("-a"), a1_id
        subscribe(a2, ["job", "marker"])
        subscribe(a1, ["job"])
        b1.ok("publish", {"topic": "job", "data": "private", "to": a1_id})
        b1.ok("publish", {"topic": "marker", "data": 2})
        got = events_until(a1, "marker")
        assert [(e["event"], e["data"], e.get("to")) for e in got] == [("job", "private", a1_id)], got
        got = events_until(a2, "marker")
        assert got == [], got
        got = events_until(b2, "marker")  # B's own subscriber of job? none; marker once
        assert got == [], got

        # nodes: b alive on A, gone after B stops
        assert {"a", "b"} <= set(bridge(a1)["nodes"]), bridge(a1)
        b.stop()
        wait_until(lambda: "b" not in bridge(a1)["nodes"], timeout=5, what="node b gone")
    finally:
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_redis_restart_flushes_outbox():
    r = Redis()
    a = b = None
    try:
        a = node(r, "a")
        b = node(r, "b")
        pa, sb = a.client(), b.client()
        wait_connected(pa, ["a", "b"])
        wait_connected(sb, ["a", "b"])
        subscribe(sb, ["tick"])
        for i in range(20):  # traffic before the kill
            pa.ok("publish", {"topic": "tick", "data": i})
        got = [sb.next_event()["data"] for _ in range(20)]
        assert got == list(range(20)), got

        r.kill()
        wait_until(lambda: bridge(pa)["state"] != "connected", what="A notices Redis is gone")
        for i in range(20, 70):
            pa.ok("publish", {"topic": "tick", "data": i})
        info = bridge(pa)
        assert info["outbox"] == 50 and info["outbox_dropped"] == 0, info
        # Hold A until B is back on Redis, so B is subscribed when A flushes.
        a.proc.send_signal(signal.SIGSTOP)
        try:
            r.start()
            wait_until(lambda: "ensemble:tick" in bridge(sb).get("patterns", []), what="B listens on Redis again")
        finally:
            a.proc.send_signal(signal.SIGCONT)
        got = [sb.next_event()["data"] for _ in range(50)]
        assert got == list(range(20, 70)), got
        info = wait_connected(pa)
        assert info["reconnects"] >= 1 and info["outbox"] == 0 and info["outbox_dropped"] == 0, info
        with urllib.request.urlopen(a.http_url() + "/metrics", timeout=10 * SCALE) as resp:
            metrics = resp.read().decode()
        for line in ("ensemble_redis_connected 1", "ensemble_redis_nodes 2", "ensemble_redis_outbox 0",
                     "ensemble_redis_outbox_dropped_total 0"):
            assert line in metrics.splitlines(), (line, metrics)
        assert int(re.search(r"^ensemble_redis_reconnects_total (\d+)$", metrics, re.M).group(1)) >= 1, metrics
        assert int(re.search(r"^ensemble_redis_forwarded_total (\d+)$", metrics, re.M).group(1)) >= 70, metrics
        assert a.stop() == 0 and b.stop() == 0, a.read_log() + b.read_log()
    finally:
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_dropped_link_is_announced_as_a_gap():
    """Redis drops a node's subscription link (as it does a subscriber whose
    backlog outgrows client-output-buffer-limit): the node reconnects, and
    its local clients get ensemble.redis.gap {since, until, down_ms, reason,
    node} (what others published meanwhile is lost: pub/sub is at most
    once); only its own: B lost its link too, and its gap stays on B;
    traffic flows again afterwards."""
    r = Redis()
    a = b = None
    try:
        a = node(r, "a")
        b = node(r, "b")
        watcher, pb = a.client(), b.client()
        wait_connected(watcher, ["a", "b"])
        wait_connected(pb, ["a", "b"])
        watcher.ok("subscribe", {"topics": ["ensemble.redis.*"]})
        subscribe(watcher, ["after.*"])
        before = bridge(watcher)["reconnects"]
        out = subprocess.run(["redis-cli", "-p", str(r.port), "CLIENT", "KILL", "TYPE", "pubsub"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and int(out.stdout.strip() or 0) >= 2, out  # both nodes' links
        gap = watcher.next_event()
        assert gap["event"] == "ensemble.redis.gap" and gap["from"] == "transport-redis", gap
        data = gap["data"]
        assert data["reason"] and data["down_ms"] >= 0 and data["since"] < data["until"] and data["node"] == "a", data
        assert data["since"].endswith("Z") and data["until"].endswith("Z"), data
        info = wait_connected(watcher, ["a", "b"])
        assert info["reconnects"] == before + 1, info
        # the bus works again across the nodes
        wait_until(lambda: "ensemble:after.*" in bridge(watcher).get("patterns", []), what="A listens again")
        wait_connected(pb, ["a", "b"])
        pb.ok("publish", {"topic": "after.x", "data": {"n": 1}})
        ev = watcher.next_event()
        assert ev["event"] == "after.x" and ev["data"] == {"n": 1}, ev
    finally:
        for d in (a, b):
            if d:
                d.cleanup()
        r.kill()


def test_tiny_outbox_counts_drops():
    r = Redis()
    a = None
    sub = None
    try:
        a = node(r, "a", **{"redis-outbox-max": 5})
        c = a.client()
        wait_connected(c)
        r.kill()
        wait_until(lambda: bridge(c)["state"] != "connected", what="A notices Redis is gone")
        for i in range(12):
            c.ok("publish", {"topic": "tick", "data": i})
        info = bridge(c)
        assert info["outbox"] == 5 and info["outbox_dropped"] == 7, info
        assert "dropped" in a.read_log(), a.read_log()
        a.proc.send_signal(signal.SIGSTOP)
        try:
            r.start()
            sub = CliSubscriber(r, "ensemble:tick")
        finally:
            a.proc.send_signal(signal.SIGCONT)
        got = [json.loads(sub.message()[1])["data"] for _ in range(5)]
        assert got == list(range(7, 12)), got  # the oldest were dropped
        info = wait_connected(c)
        assert info["outbox"] == 0 and info["outbox_dropped"] == 7, info
        assert a.stop() == 0, a.read_log()
    finally:
        if sub:
            sub.close()
        if a:
            a.cleanup()
        r.kill()


if __name__ == "__main__":
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("SKIP: redis-server / redis-cli not installed")
        raise SystemExit(77)
    run_tests(globals())
