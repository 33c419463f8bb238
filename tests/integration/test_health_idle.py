"""Health tells the truth, idle connections go away.

A transport that cannot bind its port makes the daemon "degraded", the
plugin named in failed_plugins, over the native protocol and HTTP alike;
once its setting changes to a free port it starts and the daemon is
"healthy" again.  With idle-timeout-seconds set, a connection that holds
nothing is closed, while one that subscribed, serves an agent or waits for
an answer stays; the setting changes while the daemon runs, and an invalid
value is reported and the one in force kept."""
import json
import os
import select
import socket
import time
import urllib.request

from enslib import SCALE, Daemon, run_tests


def save(d):
    """Writes the keyfile to a new file renamed over the old one (see
    test_live_settings)."""
    real = d.config
    d.config = real + ".new"
    try:
        d.write_config()
    finally:
        d.config = real
    os.replace(real + ".new", real)


def wait_until(cond, timeout=5, what="condition", interval=0.05):
    deadline = time.time() + timeout * SCALE
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(interval)


def taken_port():
    """A port something else listens on: (its socket, the port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def http_health(d):
    with urllib.request.urlopen(d.http_url() + "/health", timeout=5 * SCALE) as r:
        return json.loads(r.read().decode())


def closed_by_peer(sock):
    """TRUE when the daemon closed @sock (EOF waiting), without sending."""
    r, _, _ = select.select([sock], [], [], 0)
    if not r:
        return False
    try:
        return sock.recv(65536, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def test_port_taken_transport_makes_health_degraded():
    blocker, port = taken_port()
    d = None
    try:
        d = Daemon(settings={"ws-port": str(port)})
        c = d.client()
        h = c.ok("health")
        assert h["status"] == "degraded", h
        failed = {f["id"]: f for f in h["failed_plugins"]}
        assert list(failed) == ["transport-websocket"], h["failed_plugins"]
        assert failed["transport-websocket"]["reason"].startswith("init failed"), failed
        assert failed["transport-websocket"]["file"].endswith("transport-websocket.so"), failed
        assert "transport-websocket" not in {p["id"] for p in h["plugins"]}
        # The same over HTTP.
        hh = http_health(d)
        assert hh["status"] == "degraded", hh
        assert [f["id"] for f in hh["failed_plugins"]] == ["transport-websocket"], hh
        # Everything else works.
        assert c.ok("ping")["pong"] is True
        # A free port in the settings: the transport starts, health is whole again.
        d.settings["ws-port"] = "0"
        save(d)
        wait_until(lambda: c.ok("health")["status"] == "healthy", what="healthy after the port changed")
        h = c.ok("health")
        assert h["failed_plugins"] == [], h
        assert "transport-websocket" in {p["id"] for p in h["plugins"]}
        c.close()
    finally:
        blocker.close()
        if d:
            d.cleanup()


def test_idle_connections_are_closed_busy_ones_kept():
    d = Daemon(settings={"idle-timeout-seconds": "0"})
    try:
        idle = d.client()
        assert idle.ok("ping")["pong"] is True
        time.sleep(1.5)
        assert not closed_by_peer(idle.sock), "closed with idle-timeout-seconds 0"

        # Set while the daemon runs.
        d.settings["idle-timeout-seconds"] = "1"
        save(d)
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(d.path("ensemble.sock"))  # never says a word
        sub = d.client()
        sub.ok("subscribe", {"topics": ["keep.*"]})
        agent = d.client()
        agent.ok("agents.register", {"name": "keeper"})
        waiter = d.client()
        waiter.send({"id": "w", "agent": "echo", "action": "sleep", "data": {"ms": 3000}, "timeout_ms": 20000})

        wait_until(lambda: closed_by_peer(idle.sock), timeout=10, what="the idle connection closed")
        wait_until(lambda: closed_by_peer(silent), timeout=10, what="the silent connection closed")
        assert "closing idle connection" in d.read_log()
        time.sleep(1.5)  # another whole idle period
        for name, client in (("subscribed", sub), ("agent", agent), ("waiting", waiter)):
            assert not closed_by_peer(client.sock), f"the {name} connection was closed:\n{d.read_log()}"
        assert waiter.wait_reply("w")["data"] == {"slept_ms": 3000}
        # Answered, it holds nothing any more: it goes too.
        wait_until(lambda: closed_by_peer(waiter.sock), timeout=10, what="the answered connection closed")
        # The others were never cut off.
        assert sub.ok("ping")["pong"] is True
        assert agent.ok("ping")["pong"] is True
        assert "keeper" in {a["name"] for a in sub.ok("agents.list")["agents"]}
        for s in (idle, sub, agent, waiter):
            s.close()
        silent.close()
    finally:
        d.cleanup()


def test_invalid_idle_timeout_is_reported_and_not_taken():
    d = Daemon(settings={"idle-timeout-seconds": "1"})
    try:
        d.settings["idle-timeout-seconds"] = "-5"
        save(d)
        wait_until(lambda: "setting idle-timeout-seconds: invalid value" in d.read_log(),
                   what="the invalid value reported")
        # 1 s is still in force: an idle connection goes.
        idle = d.client()
        idle.ok("ping")
        wait_until(lambda: closed_by_peer(idle.sock), timeout=10, what="the idle connection closed")
        idle.close()
    finally:
        d.cleanup()


run_tests(globals())
