"""What the D-Bus tests share: a private dbus-daemon (Bus), gdbus monitor in
the background (Monitor), and a reader of the GVariant text gdbus prints."""

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

from enslib import Daemon, SCALE, SOURCE_ROOT, gv

NAME = "org.ensemble.Daemon1"
PATH = "/org/ensemble/Daemon1"
IFACE = "org.ensemble.Daemon1"
XML = os.path.join(SOURCE_ROOT, "data", "org.ensemble.Daemon1.xml")
SYSTEM_PYTHON = "/usr/bin/python3"

# Nothing in this file may reach the user's own session bus.
os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)


def skip(reason):
    print(f"     skipped: {reason}", flush=True)


# ------------------------------------------------------------ GVariant text

class _GVParser:
    """Reads the GVariant text format that gdbus prints (g_variant_print
    with type annotations) into Python values: tuples, lists, dicts,
    str, int, float, bool; variants are unwrapped."""

    PREFIXES = ("objectpath", "signature", "uint64", "uint32", "uint16", "int64", "int32", "int16", "byte",
                "double", "handle", "boolean", "string")
    ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}

    def __init__(self, text):
        self.s = text
        self.i = 0

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\n\r":
            self.i += 1

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch):
        assert self.peek() == ch, f"expected {ch!r} at {self.i} in {self.s!r}"
        self.i += 1

    def word(self):
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        return m.group(0) if m else ""

    def value(self):
        ch = self.peek()
        if ch == "(":
            self.i += 1
            items = []
            while self.peek() != ")":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return tuple(items)
        if ch == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return items
        if ch == "{":
            self.i += 1
            d = {}
            while self.peek() != "}":
                k = self.value()
                self.expect(":")
                d[k] = self.value()
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return d
        if ch == "<":
            self.i += 1
            v = self.value()
            self.expect(">")
            return v
        if ch == "@":  # a type annotation: @as [], @a{sv} {}
            m = re.compile(r"@[a-z{}()]+").match(self.s, self.i)
            self.i = m.end()
            return self.value()
        if ch in "'\"":
            return self.string()
        w = self.word()
        if w in ("true", "false"):
            self.i += len(w)
            return w == "true"
        if w == "b" and self.s[self.i + 1:self.i + 2] in ("'", '"'):
            self.i += 1
            return self.string()
        if w in self.PREFIXES:
            self.i += len(w)
            return self.value()
        m = re.compile(r"-?(inf|nan|\d+(\.\d*)?([eE][-+]?\d+)?)").match(self.s, self.i)
        assert m, f"cannot read GVariant text at {self.i}: {self.s[self.i:self.i + 40]!r}"
        self.i = m.end()
        t = m.group(0)
        return float(t) if any(c in t for c in ".eEn") else int(t)

    def string(self):
        quote = self.s[self.i]
        self.i += 1
        out = []
        while True:
            c = self.s[self.i]
            if c == quote:
                self.i += 1
                return "".join(out)
            if c == "\\":
                n = self.s[self.i + 1]
                if n == "u":
                    out.append(chr(int(self.s[self.i + 2:self.i + 6], 16)))
                    self.i += 6
                    continue
                if n == "U":
                    out.append(chr(int(self.s[self.i + 2:self.i + 10], 16)))
                    self.i += 10
                    continue
                out.append(self.ESCAPES.get(n, n))
                self.i += 2
                continue
            out.append(c)
            self.i += 1


def parse_gvariant(text):
    p = _GVParser(text.strip())
    v = p.value()
    p.ws()
    assert p.i == len(p.s), f"trailing GVariant text: {p.s[p.i:]!r}"
    return v


# ------------------------------------------------------------ a private bus

class Bus:
    """A private dbus-daemon. open_to_all: a bus every uid may use (for the
    Shutdown authorisation test), listening on a world-reachable socket."""

    def __init__(self, open_to_all=False):
        self.tmp = tempfile.mkdtemp(prefix="ens-dbus-")
        cmd = ["dbus-daemon", "--nofork", "--print-address=1", "--nopidfile"]
        if open_to_all:
            os.chmod(self.tmp, 0o755)
            config = os.path.join(self.tmp, "bus.conf")
            with open(config, "w") as f:
                f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={self.tmp}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
            cmd.append(f"--config-file={config}")
        else:
            cmd.append("--session")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     stdin=subprocess.DEVNULL)
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("unix:"), f"dbus-daemon printed no address: {self.address!r}"
        if open_to_all:
            os.chmod(os.path.join(self.tmp, "bus"), 0o777)
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)

    def _with_address(self, func):
        """func() with this bus in os.environ, which enslib.Daemon passes on."""
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = self.address
        try:
            return func()
        finally:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)

    def daemon(self, **kw):
        """An ensembled on this bus, once it owns its name."""
        d = self._with_address(lambda: Daemon(**kw))
        try:
            self.wait_name(d)
        except BaseException:
            d.cleanup()
            raise
        return d

    def restart(self, d):
        """Starts a stopped daemon again on this bus."""
        self._with_address(d.start)
        self.wait_name(d)

    def wait_name(self, d, timeout=10):
        r = subprocess.run(["gdbus", "wait", "--session", "--timeout", str(int(timeout * SCALE)), NAME],
                           env=self.env, capture_output=True, text=True)
        assert r.returncode == 0, f"{NAME} never appeared on the bus: {r.stderr}\n{d.read_log()}"

    def gdbus(self, *args, prefix=(), timeout=10):
        return subprocess.run(list(prefix) + ["gdbus"] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout * SCALE, stdin=subprocess.DEVNULL)

    def call_raw(self, method, *args, path=PATH, iface=IFACE, prefix=()):
        return self.gdbus("call", "--session", "--dest", NAME, "--object-path", path,
                          "--method", f"{iface}.{method}", *[gv(a) for a in args], prefix=prefix)

    def call(self, method, *args, **kw):
        """A method call that must succeed: its out arguments as a tuple."""
        r = self.call_raw(method, *args, **kw)
        assert r.returncode == 0, f"{method}{args} failed: {r.stderr}"
        return parse_gvariant(r.stdout)

    def call_error(self, method, *args, **kw):
        """A method call that must fail: (D-Bus error name, message)."""
        r = self.call_raw(method, *args, **kw)
        assert r.returncode != 0, f"{method}{args} succeeded: {r.stdout}"
        m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+): (.*)", r.stderr)
        assert m, f"no D-Bus error name in: {r.stderr}"
        return m.group(1), m.group(2).strip()

    def get_all(self, iface=IFACE, path=PATH):
        return self.call("GetAll", iface, path=path, iface="org.freedesktop.DBus.Properties")[0]

    def managed_objects(self):
        return self.call("GetManagedObjects", iface="org.freedesktop.DBus.ObjectManager")[0]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Monitor:
    """gdbus monitor on the daemon's name in the background: its signals
    as (path, interface.member, args) tuples."""

    LINE = re.compile(r"^(/\S*): ([A-Za-z0-9_.]+)\.([A-Za-z0-9_]+) (\(.*\))$")

    def __init__(self, bus):
        # gdbus writes through stdio: line-buffer it so each signal comes at once.
        cmd = ["gdbus", "monitor", "--session", "--dest", NAME]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL"] + cmd
        self.proc = subprocess.Popen(cmd, env=bus.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.seen = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        # "Monitoring signals ... owned by :1.N" once its match rule is in place
        deadline = time.time() + 10 * SCALE
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            if line.startswith("Monitoring signals"):
                break
        # The match rule is added before that line, but give the bus a round trip.
        bus.call("Ping", iface="org.freedesktop.DBus.Peer")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    @staticmethod
    def _args(text):
        try:
            return parse_gvariant(text)
        except (AssertionError, IndexError, ValueError):
            return ("unparsed", text)  # never a match for the predicates; shows in failure messages

    def wait(self, member, pred=lambda path, args: True, timeout=10):
        """The first signal `member` (e.g. 'AgentRegistered') matching pred, not seen before."""
        for i, (path, name, args) in enumerate(self.seen):
            if name.endswith("." + member) and pred(path, args):
                return self.seen.pop(i)
        deadline = time.time() + timeout * SCALE
        while True:
            remaining = deadline - time.time()
            try:
                line = self.lines.get(timeout=max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(f"no {member} signal; saw {self.seen}")
            m = self.LINE.match(line)
            if not m:
                continue
            sig = (m.group(1), f"{m.group(2)}.{m.group(3)}", self._args(m.group(4)))
            if sig[1].endswith("." + member) and pred(sig[0], sig[2]):
                return sig
            self.seen.append(sig)

    def drain(self, settle=0.3):
        """Every signal arriving within settle seconds from now, plus those already seen."""
        deadline = time.time() + settle * SCALE
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                return self.seen
            m = self.LINE.match(line)
            if m:
                self.seen.append((m.group(1), f"{m.group(2)}.{m.group(3)}", self._args(m.group(4))))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()

