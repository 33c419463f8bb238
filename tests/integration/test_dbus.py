"""ensembled on D-Bus (org.ensemble.Daemon1, data/org.ensemble.Daemon1.xml):
introspection, every method through gdbus call, properties, the
ObjectManager objects (plugins, agents, sessions), lifecycle signals seen by
gdbus monitor, unicast Event signals, Shutdown authorisation by uid, and a
daemon without a bus.

Every test runs its own private dbus-daemon: nothing touches the user's bus.
The Event signals need one connection that both calls and listens, which the
command-line tools cannot give: a small helper run by the system python3 with
PyGObject (python3-gi) does that part."""

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from enslib import Daemon, SCALE, SOURCE_ROOT, gv, run_tests  # noqa: F401

from dbuslib import (IFACE, NAME, PATH, SYSTEM_PYTHON, XML, Bus, Monitor, parse_gvariant,  # noqa: F401
                     skip)

def test_gvariant_reader():
    """The little GVariant reader itself, on what gdbus prints."""
    v = parse_gvariant("({'a': <uint64 3>, 'b': <@as []>, 'c': <['x', \"it's\"]>, 'd': <10.0>, "
                       "'e': <objectpath '/o/p'>, 'f': <true>, 'g': <'tab\\there \\u00e9'>},)")
    assert v == ({"a": 3, "b": [], "c": ["x", "it's"], "d": 10.0, "e": "/o/p", "f": True, "g": "tab\there \u00e9"},), v


# ------------------------------------------------------------ a PyGObject peer

GI_HELPER = r'''
import json, sys
from gi.repository import Gio, GLib

address = sys.argv[1]
conns = []
loop = GLib.MainLoop()

def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def on_signal(conn, sender, path, iface, member, params, index):
    out({"signal": member, "conn": index, "path": path, "args": params.unpack()})

def on_reply(conn, result, data):
    try:
        out({"ok": conn.call_finish(result).unpack()})
    except GLib.Error as e:
        out({"error": Gio.DBusError.get_remote_error(e) or str(e), "message": e.message})

def on_line(channel, condition):
    line = sys.stdin.readline()
    if not line:
        loop.quit()
        return False
    cmd = json.loads(line)
    if cmd["op"] == "open":
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        c = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
        c.signal_subscribe(None, "org.ensemble.Daemon1", None, "/org/ensemble/Daemon1", None,
                           Gio.DBusSignalFlags.NONE, on_signal, len(conns))
        conns.append(c)
        # a round trip so that the match rule is in place before we answer
        c.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
                    None, None, Gio.DBusCallFlags.NONE, -1, None)
        out({"ok": [len(conns) - 1, c.get_unique_name()]})
    elif cmd["op"] == "call":
        args = GLib.Variant.parse(None, cmd["args"], None, None) if cmd.get("args") else None
        conns[cmd["conn"]].call("org.ensemble.Daemon1", "/org/ensemble/Daemon1", "org.ensemble.Daemon1",
                                cmd["method"], args, None, Gio.DBusCallFlags.NONE, 10000, None, on_reply, None)
    elif cmd["op"] == "close":
        conns[cmd["conn"]].close_sync(None)
        out({"ok": True})
    return True

GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.PRIORITY_DEFAULT,
                  GLib.IOCondition.IN | GLib.IOCondition.HUP, on_line)
loop.run()
'''


def have_gi():
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "from gi.repository import Gio, GLib"],
                          capture_output=True).returncode == 0


class GiPeer:
    """D-Bus connections in a PyGObject helper: calls and the signals they receive."""

    def __init__(self, bus):
        self.script = os.path.join(bus.tmp, "gi_peer.py")
        with open(self.script, "w") as f:
            f.write(GI_HELPER)
        self.proc = subprocess.Popen([SYSTEM_PYTHON, self.script, bus.address], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=bus.env)
        self.replies = queue.Queue()
        self.signals = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            obj = json.loads(line)
            (self.signals if "signal" in obj else self.replies).put(obj)

    def _send(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        try:
            return self.replies.get(timeout=15 * SCALE)
        except queue.Empty:
            raise AssertionError(f"the gi helper did not answer {obj}: {self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def open(self):
        """A new connection: (index, unique name)."""
        r = self._send({"op": "open"})
        assert "ok" in r, r
        return tuple(r["ok"])

    def call(self, conn, method, args=None):
        r = self._send({"op": "call", "conn": conn, "method": method, "args": args})
        assert "ok" in r, f"{method} {args}: {r}"
        return r["ok"]

    def call_error(self, conn, method, args=None):
        r = self._send({"op": "call", "conn": conn, "method": method, "args": args})
        assert "error" in r, f"{method} {args} succeeded: {r}"
        return r["error"]

    def wait_signal(self, conn, member, pred=lambda args: True, timeout=10):
        for i, s in enumerate(self.seen):
            if s["conn"] == conn and s["signal"] == member and pred(s["args"]):
                return self.seen.pop(i)
        deadline = time.time() + timeout * SCALE
        while True:
            try:
                s = self.signals.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"no {member} signal on connection {conn}; saw {self.seen}")
            if s["conn"] == conn and s["signal"] == member and pred(s["args"]):
                return s
            self.seen.append(s)

    def drain(self, settle=0.3):
        deadline = time.time() + settle * SCALE
        while True:
            try:
                self.seen.append(self.signals.get(timeout=max(0.01, deadline - time.time())))
            except queue.Empty:
                return self.seen

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


# ------------------------------------------------------------ the interface

def xml_interface(name):
    root = ET.parse(XML).getroot()
    for iface in root.findall("interface"):
        if iface.get("name") == name:
            return {kind: [e.get("name") for e in iface.findall(kind)] for kind in ("method", "signal", "property")}
    raise AssertionError(f"{name} is not in {XML}")


def introspected_members(text, iface):
    """method, signal and property names of one interface in gdbus introspect output."""
    m = re.search(r"interface " + re.escape(iface) + r" \{(.*?)\n  \};", text, re.S)
    assert m, f"no interface {iface} in:\n{text}"
    body = m.group(1)
    sections = re.split(r"\n\s+(methods|signals|properties):", body)
    found = {"method": [], "signal": [], "property": []}
    for kind, chunk in zip(sections[1::2], sections[2::2]):
        if kind == "properties":
            found["property"] = re.findall(r"readonly \S+ (\w+)", chunk)
        else:
            found[kind[:-1]] = re.findall(r"^\s+(\w+)\(", chunk, re.M)
    return found


def test_introspection_matches_the_xml():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        r = bus.gdbus("introspect", "--session", "--dest", NAME, "--object-path", PATH)
        assert r.returncode == 0, r.stderr
        want = xml_interface(IFACE)
        got = introspected_members(r.stdout, IFACE)
        for kind in ("method", "signal", "property"):
            assert sorted(got[kind]) == sorted(want[kind]), (kind, got[kind], want[kind])
        assert "interface org.freedesktop.DBus.ObjectManager" in r.stdout, r.stdout
        assert "GetManagedObjects" in r.stdout and "InterfacesAdded" in r.stdout, r.stdout
        assert re.search(r"^\s+node plugins \{", r.stdout, re.M), r.stdout
        # the plugin objects introspect as Plugin1 with every property of the XML
        r = bus.gdbus("introspect", "--session", "--dest", NAME, "--object-path", PATH + "/plugins/agent_2decho")
        assert r.returncode == 0, r.stderr
        got = introspected_members(r.stdout, "org.ensemble.Plugin1")
        assert sorted(got["property"]) == sorted(xml_interface("org.ensemble.Plugin1")["property"]), got
    finally:
        if d:
            d.cleanup()
        bus.close()


# ------------------------------------------------------------ methods

def test_health_and_lists():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        health = json.loads(bus.call("Health")[0])
        assert health["status"] == "healthy", health
        native = d.client().ok("health")
        assert health["node_id"] == native["node_id"] and health["version"] == native["version"], (health, native)
        plugins = json.loads(bus.call("ListPlugins")[0])["plugins"]
        ids = {p["id"] for p in plugins}
        assert {"transport-unix", "agent-echo", "provider-local"} <= ids, ids
        agents = json.loads(bus.call("ListAgents")[0])["agents"]
        echo = [a for a in agents if a["name"] == "echo"]
        assert echo and "echo" in echo[0]["actions"], agents
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_health_is_degraded_when_a_plugin_fails():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    bus = Bus()
    d = None
    try:
        d = bus.daemon(settings={"ws-port": str(blocker.getsockname()[1])})  # taken: the transport cannot bind
        health = json.loads(bus.call("Health")[0])
        assert health["status"] == "degraded", health
        assert [f["id"] for f in health["failed_plugins"]] == ["transport-websocket"], health["failed_plugins"]
    finally:
        if d:
            d.cleanup()
        bus.close()
        blocker.close()


def test_publish_reaches_a_native_subscriber():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        c = d.client()
        c.ok("subscribe", {"topics": ["dbus.test.*"]})
        seq = bus.call("Publish", "dbus.test.one", '{"n": 1, "s": "it\'s"}')[0]
        assert isinstance(seq, int) and seq > 0, seq
        ev = c.next_event()
        assert ev["event"] == "dbus.test.one" and ev["data"] == {"n": 1, "s": "it's"}, ev
        assert ev["seq"] == seq, (ev, seq)
        # any JSON value, not only objects
        seq2 = bus.call("Publish", "dbus.test.two", '"plain"')[0]
        ev = c.next_event()
        assert ev["event"] == "dbus.test.two" and ev["data"] == "plain" and seq2 > seq, ev
        name, _ = bus.call_error("Publish", "dbus.test.three", "{not json")
        assert name == "org.ensemble.Error.InvalidJson", name
        c.close()
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_request_and_its_errors():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        reply = bus.call("Request", "echo", "echo", '{"a":1}')[0]
        assert json.loads(reply) == {"a": 1}, reply
        reply = bus.call("Request", "echo", "echo", '[1, "two", null]')[0]
        assert json.loads(reply) == [1, "two", None], reply
        name, message = bus.call_error("Request", "nobody", "echo", "{}")
        assert name == "org.ensemble.Error.AgentNotFound", (name, message)
        assert "nobody" in message, message
        name, message = bus.call_error("Request", "echo", "echo", '{"a":')
        assert name == "org.ensemble.Error.InvalidJson", (name, message)
        name, _ = bus.call_error("Request", "", "echo", "{}")
        assert name == "org.ensemble.Error.InvalidParameters", name
        # an agent's own error code travels as the D-Bus error name
        name, message = bus.call_error("Request", "echo", "fail", '{"code": "MY_FAILURE", "message": "boom"}')
        assert name == "org.ensemble.Error.MyFailure" and "boom" in message, (name, message)
        # the daemon is still fine
        assert json.loads(bus.call("Health")[0])["status"] == "healthy"
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_subscribe_cannot_observe_other_callers_private_events():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        # Another caller's completion results (or anyone's, with a glob) are private.
        for pattern in ("COMPLETION_RESULT:*", "COMPLETION_RESULT::1.999", "*:*"):
            name, message = bus.call_error("Subscribe", [pattern])
            assert name == "org.ensemble.Error.PermissionDenied", (pattern, name, message)
        # Plain topics are fine.
        assert bus.call("Subscribe", ["news.*"]) == ()
        assert json.loads(bus.call("Health")[0])["status"] == "healthy"
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_request_timeout_and_pending_call_at_stop():
    """A slow agent: the request deadline answers TIMEOUT over D-Bus; a call
    still pending when the daemon stops gets an error at once, not the
    caller's own (25 s) timeout."""
    bus = Bus()
    d = None
    try:
        d = bus.daemon(settings={"request-timeout-ms": gv(300)})
        start = time.time()
        name, _ = bus.call_error("Request", "echo", "sleep", '{"ms": 3000}')
        assert name == "org.ensemble.Error.Timeout", name
        assert time.time() - start < 2.5 * SCALE, time.time() - start
        d.stop()
        d.settings["request-timeout-ms"] = gv(60000)
        bus.restart(d)
        pending = subprocess.Popen(["gdbus", "call", "--session", "--dest", NAME, "--object-path", PATH,
                                    "--method", IFACE + ".Request", "'echo'", "'sleep'", "'{\"ms\": 20000}'"],
                                   env=bus.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3 * SCALE)
        assert pending.poll() is None, pending.communicate()
        start = time.time()
        assert d.stop() == 0, d.read_log()
        try:
            out, err = pending.communicate(timeout=10 * SCALE)
        except subprocess.TimeoutExpired:
            pending.kill()
            pending.communicate()
            raise AssertionError("a pending D-Bus call got no answer when the daemon stopped")
        assert pending.returncode != 0 and "Error" in err, (out, err)
        assert time.time() - start < 5 * SCALE, time.time() - start
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_complete_returns_a_request_id():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        rid = bus.call("Complete", "hello", "{}")[0]
        assert re.match(r"^req_\w+$", rid), rid
        rid2 = bus.call("Complete", "hello", "")[0]  # empty options: {}
        assert rid2.startswith("req_") and rid2 != rid, rid2
        name, _ = bus.call_error("Complete", "hello", "[1]")
        assert name == "org.ensemble.Error.InvalidParameters", name
        name, _ = bus.call_error("Complete", "hello", "{oops")
        assert name == "org.ensemble.Error.InvalidJson", name
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_subscribe_event_signals_are_unicast():
    if not have_gi():
        # python3-gi is a Debian package; as root it can be added on the fly.
        if os.geteuid() == 0 and shutil.which("apt-get"):
            try:
                subprocess.run(["apt-get", "install", "-y", "-q", "python3-gi"], capture_output=True, timeout=120)
            except subprocess.TimeoutExpired:
                pass
        if not have_gi():
            skip(f"{SYSTEM_PYTHON} has no PyGObject (python3-gi): Event signals not tested")
            return
    bus = Bus()
    d = peer = None
    try:
        d = bus.daemon()
        peer = GiPeer(bus)
        me, my_name = peer.open()
        other, other_name = peer.open()
        peer.call(me, "Subscribe", f"(['dbus.ev.*', 'COMPLETION_RESULT:{my_name}'],)")
        # Publish from the same connection: the Event signal comes back to it.
        seq = peer.call(me, "Publish", "('dbus.ev.a', '{\"x\": 1}')")[0]
        assert seq > 0
        s = peer.wait_signal(me, "Event", lambda a: a[0] == "dbus.ev.a")
        assert json.loads(s["args"][1]) == {"x": 1}, s
        # ...and from a native client too
        c = d.client()
        c.ok("publish", {"topic": "dbus.ev.native", "data": {"from": "native"}})
        s = peer.wait_signal(me, "Event", lambda a: a[0] == "dbus.ev.native")
        assert json.loads(s["args"][1]) == {"from": "native"}, s
        # Complete: the result arrives as Event COMPLETION_RESULT to the caller.
        rid = peer.call(me, "Complete", "('hello', '{}')")[0]
        assert rid.startswith("req_"), rid
        s = peer.wait_signal(me, "Event", lambda a: a[0] == "COMPLETION_RESULT", timeout=15)
        result = json.loads(s["args"][1])
        assert result["request_id"] == rid, result
        assert result.get("to") == my_name, result
        assert "hello" in result["result"]["response"], result
        # The other connection subscribed to nothing and heard nothing:
        # no firehose, and the signals were unicast.
        peer.call(other, "Publish", "('dbus.ev.b', '2')")
        peer.wait_signal(me, "Event", lambda a: a[0] == "dbus.ev.b")
        assert not [s for s in peer.drain(0.2) if s["conn"] == other and s["signal"] == "Event"], peer.seen
        # Unsubscribe stops them; a marker topic shows delivery still works.
        peer.call(me, "Unsubscribe", "(['dbus.ev.*'],)")
        peer.call(me, "Subscribe", "(['dbus.marker'],)")
        peer.call(other, "Publish", "('dbus.ev.c', '3')")
        peer.call(other, "Publish", "('dbus.marker', '4')")
        peer.wait_signal(me, "Event", lambda a: a[0] == "dbus.marker")
        late = [s for s in peer.drain(0.1) if s["signal"] == "Event" and s["args"][0] == "dbus.ev.c"]
        assert not late, late
        # bad patterns are refused
        assert peer.call_error(me, "Subscribe", "([''],)") == "org.ensemble.Error.InvalidParameters"
        # A caller that leaves takes its subscriptions along (no leak, no crash).
        peer.call(other, "Subscribe", "(['dbus.gone.*'],)")
        peer._send({"op": "close", "conn": other})
        c.ok("publish", {"topic": "dbus.gone.x", "data": 1})
        assert json.loads(bus.call("Health")[0])["status"] == "healthy"
        c.close()
        assert d.stop() == 0, d.read_log()  # a clean exit (and, under ASan, no leaks)
    finally:
        if peer:
            peer.close()
        if d:
            d.cleanup()
        bus.close()


# ------------------------------------------------------------ properties and objects

def test_properties_and_plugin_objects():
    bus = Bus()
    d = None
    try:
        t0 = time.time()
        d = bus.daemon(settings={"daily-budget": gv(7.5), "router-policy": gv("cheapest")})
        # The properties are refreshed at every call that reads health
        # (ens-dbus.c), so after Health they describe the daemon as it is.
        health = json.loads(bus.call("Health")[0])
        props = bus.get_all()
        want = xml_interface(IFACE)["property"]
        assert sorted(props) == sorted(want), (sorted(props), want)
        assert props["Version"] == health["version"] and re.match(r"^\d+\.\d+", props["Version"]), props
        assert props["NodeId"] == health["node_id"] and props["NodeId"], props
        # microseconds since the epoch, as every timestamp on the interface
        assert t0 - 5 <= props["StartedAt"] / 1e6 <= time.time() + 5, (props["StartedAt"], t0)
        assert 0 <= props["UptimeSeconds"] < 60, props
        assert props["RouterPolicy"] == "cheapest", props
        assert props["DailyBudget"] == 7.5 and props["CurrentSpend"] == 0.0, props
        assert props["Sessions"] == 0, props
        assert props["Connections"] >= 1, props

        objects = bus.managed_objects()
        plugins = {path: ifaces["org.ensemble.Plugin1"] for path, ifaces in objects.items()
                   if "org.ensemble.Plugin1" in ifaces}
        listed = {p["id"]: p for p in json.loads(bus.call("ListPlugins")[0])["plugins"]}
        assert len(plugins) == len(listed), (sorted(plugins), sorted(listed))
        for path, p in plugins.items():
            assert sorted(p) == sorted(xml_interface("org.ensemble.Plugin1")["property"]), p
            assert path.startswith(PATH + "/plugins/"), path
            info = listed[p["Id"]]
            assert (p["Kind"], p["Version"], p["Description"], p["File"]) == \
                   (info["kind"], info["version"], info["description"], info["file"]), (p, info)
            assert os.path.isfile(p["File"]), p
        assert PATH + "/plugins/agent_2decho" in plugins, sorted(plugins)
        assert plugins[PATH + "/plugins/agent_2decho"]["Kind"] == "agent"
        # the plugin-provided agent has its object too
        agent = objects.get(PATH + "/agents/echo", {}).get("org.ensemble.Agent1")
        assert agent and agent["Name"] == "echo" and agent["Kind"] == "plugin" and agent["Connected"], objects.get(
            PATH + "/agents/echo")

        r = subprocess.run(["busctl", f"--address={bus.address}", "tree", NAME], capture_output=True, text=True,
                           timeout=10 * SCALE)
        assert r.returncode == 0, r.stderr
        for path in plugins:
            assert path in r.stdout, (path, r.stdout)
        assert PATH + "/agents/echo" in r.stdout, r.stdout

        # The counts agree with the objects and with health.
        assert props["Plugins"] == len(plugins), \
            f"Plugins property {props['Plugins']} with {len(plugins)} plugin objects (stale until the 2 s refresh)"
        agents = json.loads(bus.call("ListAgents")[0])["agents"]
        assert props["Agents"] == health["agents"] == len(agents), (props["Agents"], health["agents"], agents)
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_properties_follow_the_daemon():
    """Agents/Sessions/Connections/UptimeSeconds change as the daemon does
    (the periodic refresh, without any call that reads health)."""
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        c = d.client()
        before = len(c.ok("agents.list")["agents"])
        c.ok("agents.register", {"name": "counted"})
        c.ok("sessions.spawn", {"orchestrator_id": "o", "session_type": "chat"})
        deadline = time.time() + 5 * SCALE
        while True:
            props = bus.get_all()
            if props["Agents"] == before + 1 and props["Sessions"] == 1 and props["Connections"] >= 2:
                break
            assert time.time() < deadline, props
            time.sleep(0.2)
        c.close()
    finally:
        if d:
            d.cleanup()
        bus.close()


# ------------------------------------------------------------ lifecycle signals

AGENT1 = "org.ensemble.Agent1"
SESSION1 = "org.ensemble.Session1"


def test_agent_signals_and_objects():
    bus = Bus()
    d = mon = None
    try:
        d = bus.daemon()
        mon = Monitor(bus)
        c = d.client()
        before = time.time()
        c.ok("agents.register", {"name": "dbusagent", "actions": ["ping", "pong"], "description": "on the bus"})
        _, _, args = mon.wait("AgentRegistered")
        assert args == ("dbusagent",), args
        path = PATH + "/agents/dbusagent"
        _, _, args = mon.wait("InterfacesAdded", lambda p, a: a[0] == path)
        props = args[1][AGENT1]
        assert sorted(props) == sorted(xml_interface(AGENT1)["property"]), props
        assert props["Name"] == "dbusagent" and props["Actions"] == ["ping", "pong"], props
        assert props["Description"] == "on the bus" and props["Kind"] == "client", props
        assert props["Connected"] is True, props
        since = props["ConnectedSince"] / 1e6  # microseconds since the epoch
        assert before - 5 <= since <= time.time() + 1, (since, before)
        # the same through Properties on the object itself
        assert bus.get_all(AGENT1, path=path) == props
        # a name that needs escaping in an object path
        c.ok("agents.register", {"name": "dbus-agent.2"})
        _, _, args = mon.wait("InterfacesAdded", lambda p, a: AGENT1 in a[1] and a[1][AGENT1]["Name"] == "dbus-agent.2")
        assert args[0] == PATH + "/agents/dbus_2dagent_2e2", args
        # the connection goes: both agents go, with their objects
        c.close()
        removed = {mon.wait("AgentRemoved")[2][0], mon.wait("AgentRemoved")[2][0]}
        assert removed == {"dbusagent", "dbus-agent.2"}, removed
        _, _, args = mon.wait("InterfacesRemoved", lambda p, a: a[0] == path)
        assert args[1] == [AGENT1], args
        mon.wait("InterfacesRemoved", lambda p, a: a[0] == PATH + "/agents/dbus_2dagent_2e2")
        objects = bus.managed_objects()
        assert path not in objects and PATH + "/agents/echo" in objects, sorted(objects)
        assert d.stop() == 0, d.read_log()
    finally:
        if mon:
            mon.close()
        if d:
            d.cleanup()
        bus.close()


def test_agent_connected_property_follows_a_persistent_agent():
    """A persistent agent (registered without a connection) is Connected
    false; a connection serving it makes it true, losing it false again."""
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        path = PATH + "/agents/keeper"
        admin = d.client()
        admin.ok("agents.register", {"name": "keeper", "persistent": True})
        listed = [a for a in admin.ok("agents.list")["agents"] if a["name"] == "keeper"][0]
        props = bus.get_all(AGENT1, path=path)
        assert props["Connected"] == listed["connected"], (props, listed)
        server = d.client()
        server.ok("agents.register", {"name": "keeper"})
        listed = [a for a in admin.ok("agents.list")["agents"] if a["name"] == "keeper"][0]
        assert listed["connected"] is True, listed
        props = bus.get_all(AGENT1, path=path)
        assert props["Connected"] is True, f"Agent1.Connected stays {props['Connected']} once a connection serves it"
        server.close()
        deadline = time.time() + 5 * SCALE
        while [a for a in admin.ok("agents.list")["agents"] if a["name"] == "keeper"][0]["connected"]:
            assert time.time() < deadline
            time.sleep(0.05)
        props = bus.get_all(AGENT1, path=path)
        assert props["Connected"] is False, f"Agent1.Connected stays {props['Connected']} after its connection left"
        admin.close()
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_session_signals_and_objects():
    bus = Bus()
    d = mon = None
    try:
        d = bus.daemon()
        mon = Monitor(bus)
        c = d.client()
        sess = c.ok("sessions.spawn", {"orchestrator_id": "orch-dbus", "session_type": "chat"})
        sid = sess["session_id"]
        _, _, args = mon.wait("SessionChanged", lambda p, a: a[0] == sid)
        assert args == (sid, "idle"), args
        _, _, args = mon.wait("InterfacesAdded", lambda p, a: SESSION1 in a[1])
        path = args[0]
        assert path.startswith(PATH + "/sessions/"), path
        props = args[1][SESSION1]
        assert sorted(props) == sorted(xml_interface(SESSION1)["property"]), props
        assert props["Id"] == sid and props["Status"] == "idle" and props["Tasks"] == 0, props
        assert props["SessionType"] == "chat", f"SessionType of a spawned 'chat' session: {props['SessionType']!r}"
    finally:
        if mon:
            mon.close()
        if d:
            d.cleanup()
        bus.close()


def test_session_status_and_tasks_follow_execution():
    bus = Bus()
    d = mon = None
    try:
        d = bus.daemon()
        mon = Monitor(bus)
        c = d.client()
        sid = c.ok("sessions.spawn", {"orchestrator_id": "orch-dbus", "session_type": "chat"})["session_id"]
        mon.wait("SessionChanged", lambda p, a: a == (sid, "idle"))
        _, _, args = mon.wait("InterfacesAdded", lambda p, a: SESSION1 in a[1])
        path = args[0]
        c.ok("sessions.execute", {"session_id": sid, "task": "a task"})
        statuses = []
        while not statuses or statuses[-1] != "idle":
            statuses.append(mon.wait("SessionChanged", lambda p, a: a[0] == sid)[2][1])
        assert statuses[0] != "idle" and len(statuses) >= 2, statuses
        status = c.ok("sessions.status", {"session_id": sid})
        props = bus.get_all(SESSION1, path=path)
        assert props["Status"] == status["status"] == "idle", (props, status)
        assert props["Tasks"] == status["tasks_total"] == 1, \
            f"Session1.Tasks is {props['Tasks']} after {status['tasks_total']} task(s)"
        # stopped: the object goes
        c.ok("sessions.stop", {"session_id": sid})
        assert mon.wait("SessionChanged", lambda p, a: a[0] == sid)[2] == (sid, "stopped")
        _, _, args = mon.wait("InterfacesRemoved", lambda p, a: a[0] == path)
        assert args[1] == [SESSION1], args
        c.close()
    finally:
        if mon:
            mon.close()
        if d:
            d.cleanup()
        bus.close()


def test_sessions_from_the_store_are_objects_at_start():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        c = d.client()
        sid = c.ok("sessions.spawn", {"orchestrator_id": "orch-dbus", "session_type": "review"})["session_id"]
        c.close()
        d.stop()
        bus.restart(d)
        sessions = {p: i[SESSION1] for p, i in bus.managed_objects().items() if SESSION1 in i}
        assert [s["Id"] for s in sessions.values()] == [sid], sessions
        s = list(sessions.values())[0]
        assert s["Status"] == "idle" and s["SessionType"] == "review", s
    finally:
        if d:
            d.cleanup()
        bus.close()


def openai_backend(url, cost):
    return {
        "plugin": gv("provider-openai"),
        "base-url": gv(url),
        "models": gv(["paid-model"]),
        "model-map": gv({"paid-model": "ok-paid"}),
        "quality": gv(0.9),
        "cost-input-per-1k": gv(float(cost)),
        "cost-output-per-1k": gv(float(cost)),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }


def test_budget_exceeded_signal():
    from fake_openai import FakeOpenAI
    fake = FakeOpenAI()
    bus = Bus()
    d = mon = None
    try:
        d = bus.daemon(settings={"providers": gv(["paid"]), "disabled-plugins": gv(["provider-local"]),
                                 "daily-budget": gv(0.01)},
                       groups={"providers/paid": openai_backend(fake.url, 10.0)})
        mon = Monitor(bus)
        c = d.client()
        rep = c.request("complete", {"prompt": "hi", "token_count": 1000, "max_tokens": 100000})
        if rep["status"] == "success":
            rid = rep["data"]["request_id"]
            while True:
                ev = c.next_event()
                if ev["event"] == "COMPLETION_RESULT" and ev["data"]["request_id"] == rid:
                    break
            assert ev["data"].get("reason") == "BUDGET_EXCEEDED", ev
            _, _, args = mon.wait("BudgetExceeded")
            assert args[0] == rid and 0 <= args[1] <= 0.01, args
        else:
            # refused at once: operators must hear about it all the same
            assert rep["error"]["code"] == "BUDGET_EXCEEDED", rep
            _, _, args = mon.wait("BudgetExceeded")
            assert 0 <= args[1] <= 0.01, args
        assert fake.calls == [], fake.calls  # nothing was spent upstream
        c.close()
    finally:
        if mon:
            mon.close()
        if d:
            d.cleanup()
        bus.close()
        fake.close()


def test_plugin_loaded_signals_at_start():
    """PluginLoaded goes out while the daemon starts, before it owns its
    name: a listener matching on the interface (not the name) hears one per
    plugin, for the same ids as the plugin objects."""
    bus = Bus()
    d = mon = None
    try:
        cmd = ["dbus-monitor", "--address", bus.address, f"type='signal',interface='{IFACE}',member='PluginLoaded'"]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL"] + cmd
        mon = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               stdin=subprocess.DEVNULL)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in mon.stdout], daemon=True).start()
        lines.get(timeout=10 * SCALE)  # its own NameAcquired/NameLost: it is listening
        d = bus.daemon()
        ids = {i["org.ensemble.Plugin1"]["Id"] for i in bus.managed_objects().values() if "org.ensemble.Plugin1" in i}
        loaded, current = [], False
        deadline = time.time() + 5 * SCALE
        while len(loaded) < len(ids):
            try:
                line = lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if "member=PluginLoaded" in line:
                current = True
            elif current and line.strip().startswith("string "):
                loaded.append(line.strip()[len('string "'):-1])
                current = False
        assert sorted(loaded) == sorted(ids), (loaded, ids)
    finally:
        if mon:
            mon.kill()
            mon.wait()
            mon.stdout.close()
        if d:
            d.cleanup()
        bus.close()


# PluginFailed needs a plugin failing while the daemon runs (live settings);
# another test file covers it.

# ------------------------------------------------------------ Shutdown

def test_shutdown_is_for_the_daemons_own_user():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        skip("needs root and setpriv to call as another uid")
        return
    bus = Bus(open_to_all=True)
    d = None
    try:
        d = bus.daemon()
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        r = bus.call_raw("Health", prefix=nobody)
        assert r.returncode == 0, f"uid 65534 cannot use the test bus: {r.stderr}"
        r = bus.call_raw("Shutdown", prefix=nobody)
        assert r.returncode != 0, r.stdout
        assert "org.ensemble.Error.PermissionDenied" in r.stderr, r.stderr
        time.sleep(0.2)
        assert d.proc.poll() is None, d.read_log()
        assert json.loads(bus.call("Health")[0])["status"] == "healthy"
        assert d.client().ok("health")["status"] == "healthy"
        # the daemon's own user may
        assert bus.call("Shutdown") == ()
        assert d.proc.wait(10 * SCALE) == 0, d.read_log()
        assert "shutdown requested over D-Bus" in d.read_log(), d.read_log()
        assert not os.path.exists(d.path("ensemble.sock")), "socket left behind after Shutdown"
    finally:
        if d:
            d.cleanup()
        bus.close()


# ------------------------------------------------------------ no bus

def dbus_lines(log):
    return [line for line in log.splitlines() if "D-Bus" in line]


def test_no_bus_reachable_one_warning_and_serves():
    tmp = tempfile.mkdtemp(prefix="ens-nobus-")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp}/no-such-bus"
    try:
        d = Daemon()
    finally:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    try:
        assert d.client().ok("health")["status"] == "healthy"
        lines = dbus_lines(d.read_log())
        assert len(lines) == 1, lines
        assert "WARNING" in lines[0] and "no session bus reachable" in lines[0], lines
        assert d.stop() == 0, d.read_log()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_no_bus_address_does_not_autolaunch():
    """No DBUS_SESSION_BUS_ADDRESS and no $XDG_RUNTIME_DIR/bus: one warning,
    no dbus-launch."""
    tmp = tempfile.mkdtemp(prefix="ens-nobus-")
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = tmp
    try:
        d = Daemon()
    finally:
        if saved is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = saved
    try:
        assert d.client().ok("health")["status"] == "healthy"
        lines = dbus_lines(d.read_log())
        assert len(lines) == 1 and "WARNING" in lines[0] and "no session bus" in lines[0], lines
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dbus_bus_none_is_silent():
    tmp = tempfile.mkdtemp(prefix="ens-nobus-")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp}/no-such-bus"
    try:
        d = Daemon(settings={"dbus-bus": gv("none")})
    finally:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    try:
        assert d.client().ok("health")["status"] == "healthy"
        assert dbus_lines(d.read_log()) == [], d.read_log()
        assert "WARNING" not in d.read_log(), d.read_log()
        assert d.stop() == 0
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_dbus_bus_none_stays_off_a_live_bus():
    bus = Bus()
    d = None
    try:
        d = bus._with_address(lambda: Daemon(settings={"dbus-bus": gv("none")}))
        r = bus.gdbus("call", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus",
                      "--method", "org.freedesktop.DBus.NameHasOwner", NAME)
        assert r.returncode == 0 and parse_gvariant(r.stdout) == (False,), r
    finally:
        if d:
            d.cleanup()
        bus.close()


run_tests(globals())
