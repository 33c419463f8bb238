"""D-Bus for operators: an idle daemon sends no PropertiesChanged (uptime is
read, never signalled), the introspection data says which properties signal
their changes, timestamps have one unit, and CompleteAndWait lets `gdbus
call` ask for a completion and get the answer.  Each test on a private bus."""

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET

from dbuslib import IFACE, NAME, PATH, Bus, Monitor
from enslib import SCALE, run_tests

EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def properties_changed(signals, path=PATH):
    return [args for p, name, args in signals if p == path and name == "org.freedesktop.DBus.Properties.PropertiesChanged"]


def test_idle_daemon_sends_no_properties_changed():
    bus = Bus()
    d = mon = None
    try:
        d = bus.daemon()
        mon = Monitor(bus)
        before = bus.get_all()["UptimeSeconds"]
        # Two of the daemon's refresh periods (2 s) with nothing happening.
        seen = mon.drain(settle=4.5 / SCALE)
        assert properties_changed(seen) == [], seen
        # UptimeSeconds still tells the time when read.
        after = bus.get_all()["UptimeSeconds"]
        assert after >= before + 4, (before, after)
        # A real change is signalled, with only what changed.
        c = d.client()
        c.ok("agents.register", {"name": "props-changed"})
        sig = mon.wait("PropertiesChanged", lambda path, args: path == PATH and "Agents" in args[1])
        assert "UptimeSeconds" not in sig[2][1], sig
        assert set(sig[2][1]) <= {"Agents", "Connections"}, sig
        c.close()
    finally:
        if mon:
            mon.close()
        if d:
            d.cleanup()
        bus.close()


def test_introspection_says_which_properties_signal():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        r = bus.gdbus("introspect", "--session", "--dest", NAME, "--object-path", PATH, "--xml")
        assert r.returncode == 0, r.stderr
        root = ET.fromstring(r.stdout)
        iface = next(i for i in root.findall("interface") if i.get("name") == IFACE)
        emits = {}
        for prop in iface.findall("property"):
            ann = [a.get("value") for a in prop.findall("annotation") if a.get("name") == EMITS]
            emits[prop.get("name")] = ann[0] if ann else "true"
        assert emits["UptimeSeconds"] == "false", emits
        for name in ("Version", "NodeId", "StartedAt"):
            assert emits[name] == "const", emits
        for name in ("Connections", "Agents", "Plugins", "Sessions", "RouterPolicy", "DailyBudget", "CurrentSpend"):
            assert emits[name] == "true", emits
        # The plugin objects never change.
        r = bus.gdbus("introspect", "--session", "--dest", NAME, "--object-path", PATH + "/plugins/agent_2decho",
                      "--xml")
        plugin = next(i for i in ET.fromstring(r.stdout).findall("interface") if i.get("name") == "org.ensemble.Plugin1")
        for prop in plugin.findall("property"):
            assert [a.get("value") for a in prop.findall("annotation") if a.get("name") == EMITS] == ["const"], \
                prop.get("name")
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_timestamps_are_microseconds():
    bus = Bus()
    d = None
    try:
        t0 = time.time()
        d = bus.daemon()
        c = d.client()
        c.ok("agents.register", {"name": "stamped"})
        props = bus.get_all()
        agent = bus.get_all(iface="org.ensemble.Agent1", path=PATH + "/agents/stamped")
        for stamp in (props["StartedAt"], agent["ConnectedSince"]):
            assert t0 - 5 <= stamp / 1e6 <= time.time() + 5, (stamp, t0)
        assert props["StartedAt"] <= agent["ConnectedSince"], (props, agent)
        c.close()
    finally:
        if d:
            d.cleanup()
        bus.close()


def test_complete_and_wait_returns_the_answer():
    bus = Bus()
    d = None
    try:
        d = bus.daemon()
        # As an operator types it.
        r = bus.gdbus("call", "--session", "--dest", NAME, "--object-path", PATH, "--method",
                      IFACE + ".CompleteAndWait", "say hello over D-Bus", "{}")
        assert r.returncode == 0, r.stderr
        response, result = bus.call("CompleteAndWait", "say hello over D-Bus", "")
        assert "say hello over D-Bus" in response, response
        result = json.loads(result)
        assert result["response"] == response and result["provider"], result
        assert "model" in result and "cost" in result, result
        # Several at once each get their own answer.
        procs = [subprocess.Popen(["gdbus", "call", "--session", "--dest", NAME, "--object-path", PATH, "--method",
                                   IFACE + ".CompleteAndWait", f"question {i}", '{"max_tokens":64}'], env=bus.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=30 * SCALE)
            assert p.returncode == 0, err
            assert f"question {i}" in out and all(f"question {j}" not in out for j in range(4) if j != i), out
        # Bad input: clear D-Bus errors, and the daemon serves on.
        name, _ = bus.call_error("CompleteAndWait", "x", "{oops")
        assert name == "org.ensemble.Error.InvalidJson", name
        name, _ = bus.call_error("CompleteAndWait", "x", "[1]")
        assert name == "org.ensemble.Error.InvalidParameters", name
        name, message = bus.call_error("CompleteAndWait", "x", '{"client_id":"someone-else"}')
        assert name == "org.ensemble.Error.InvalidParameters" and "client_id" in message, (name, message)
        name, message = bus.call_error("CompleteAndWait", "x", '{"provider":"no-such-backend"}')
        assert name.startswith("org.ensemble.Error.") and message, (name, message)
        name, _ = bus.call_error("CompleteAndWait", "", "{}")
        assert name == "org.ensemble.Error.InvalidParameters", name
        response, _ = bus.call("CompleteAndWait", "still answering", "{}")
        assert "still answering" in response, response
    finally:
        if d:
            d.cleanup()
        bus.close()


run_tests(globals())
