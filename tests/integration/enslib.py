"""Test harness: runs the real ensembled on temporary folders and talks to it
over its Unix sockets, as a client would.  Standard library only."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("ENS_BUILD_ROOT", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
ENSEMBLED = os.environ.get("ENSEMBLED", os.path.join(BUILD, "core", "ensembled"))
ENSEMBLECTL = os.environ.get("ENSEMBLECTL", os.path.join(BUILD, "tools", "ensemblectl"))
PLUGIN_DIR = os.environ.get("ENS_PLUGIN_DIR", os.path.join(BUILD, "plugins"))
def die_with_parent():
    """preexec_fn: the child is killed when the test process dies, so an
    interrupted test leaves no daemon or server behind (Linux prctl)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ------------------------------------------------------------------ ports
#
# Tests run in parallel with each other and with whatever else the machine
# does, so a port is never "found free" and handed over later: between the
# look and the bind anyone may take it.  In order of preference:
#  - a server of ours binds port 0 and says which port it got (the daemon's
#    http-port=0 and ws-port=0 with its "listening on" log line, the fake
#    upstreams, ens-fake-upstream-server on stdout);
#  - a port that must stay unused is held bound, never listening
#    (refused_port): connections to it are refused and nobody can take it;
#  - a server that must be told its port (redis-server, a port changed at run
#    time) gets pick_port(): free, and outside the kernel's ephemeral range,
#    so no bind(0) and no outgoing connection anywhere can take it meanwhile;
#    only another explicit pick can, and the caller then sees the server fail
#    to bind and tries again with a new pick (Redis.start does).


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def pick_port():
    """A loopback TCP port free at this moment, outside the ephemeral range
    (see above: the caller must still retry when its server cannot bind)."""
    import random
    low, high = _ephemeral_range()
    ranges = [r for r in (range(max(1024, low - 16384), low), range(high + 1, 65536)) if len(r) > 0]
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.choice(rng.choice(ranges))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free loopback port outside the ephemeral range")


def refused_port():
    """(socket, port): a loopback port where connections are refused for as
    long as the socket stays open (bound, never listening).  Close it when
    done."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def listening_ports(pid):
    """The TCP ports process @pid listens on (its sockets in LISTEN state,
    from /proc): unlike a connection attempt, not fooled by another process
    that took a port the daemon let go."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def gv(value):
    """A Python value as GVariant text for a keyfile."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(gv(v) for v in value) + "]" if value else "@as []"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{gv(k)}: {gv(v)}" for k, v in value.items()) + "}" if value else "@a{ss} {}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


GOOD_FIXTURES = os.environ.get("ENS_GOOD_FIXTURES", os.path.join(BUILD, "tests", "fixtures", "good"))
BAD_FIXTURES = os.environ.get("ENS_BAD_FIXTURES", os.path.join(BUILD, "tests", "fixtures", "bad"))
SOURCE_ROOT = os.environ.get("ENS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SCALE = float(os.environ.get("ENS_TEST_TIMEOUT_SCALE", "1"))  # >1 under sanitizers
# Under AddressSanitizer freed memory sits in quarantine and every byte has a
# shadow: RSS bounds are checked in the plain build, loosened here.
MEMORY_SCALE = float(os.environ.get("ENS_TEST_MEMORY_SCALE", "1"))


class Daemon:
    """One ensembled process on its own socket and state folders.

    settings: dict of GSettings keys -> GVariant text, written to a keyfile
    passed with --config (so the test never touches the user's dconf)."""

    def __init__(self, plugin_dirs=None, settings=None, args=None, tmp=None, wait=True, groups=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="ens-test-")
        self.own_tmp = tmp is None
        self.socket_dir = os.path.join(self.tmp, "sock")
        self.state_dir = os.path.join(self.tmp, "state")
        self.config = os.path.join(self.tmp, "ensembled.conf")
        self.log_path = os.path.join(self.tmp, "ensembled.log")
        self.plugin_dirs = plugin_dirs if plugin_dirs is not None else [PLUGIN_DIR, GOOD_FIXTURES]
        self.settings = dict(settings or {})
        # Tests run in parallel: network transports take any free port.
        self.settings.setdefault("http-port", "0")
        self.settings.setdefault("ws-port", "0")
        # other keyfile groups, e.g. {"providers/gpt": {"plugin": "'provider-openai'"}}
        self.groups = dict(groups or {})
        self.args = list(args or [])
        self.proc = None
        self.start(wait=wait)

    def write_config(self):
        with open(self.config, "w") as f:
            f.write("[daemon]\n")
            for key, value in self.settings.items():
                f.write(f"{key}={value}\n")
            for group, keys in self.groups.items():
                f.write(f"[{group}]\n")
                for key, value in keys.items():
                    f.write(f"{key}={value}\n")

    def command(self):
        cmd = [ENSEMBLED, "--socket-dir", self.socket_dir, "--state-dir", self.state_dir, "--config", self.config]
        for d in self.plugin_dirs:
            cmd += ["--plugin-dir", d]
        return cmd + self.args

    def start(self, wait=True):
        self.write_config()
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("G_DEBUG", "fatal-criticals")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout * SCALE
        path = self.path("ensemble.sock")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ensembled exited with {self.proc.returncode}:\n{self.read_log()}")
            if os.path.exists(path) and "ready" in self.read_log():
                try:
                    c = Client(path)
                    c.close()
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        raise AssertionError(f"ensembled did not become ready:\n{self.read_log()}")

    def http_url(self):
        """The HTTP transport's base URL, from its line in the log."""
        import re
        m = re.search(r"transport-http: listening on (http://\S+)", self.read_log())
        assert m, f"transport-http is not listening:\n{self.read_log()}"
        return m.group(1)

    def path(self, name):
        return os.path.join(self.socket_dir, name)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def client(self, name="ensemble.sock"):
        return Client(self.path(name))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the daemon; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ensembled did not stop on {sig}:\n{self.read_log()}")
        finally:
            self.log.close()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        try:
            self.stop()
        except AssertionError:
            pass
        # A sanitizer report (memory error, leak, undefined behaviour) fails
        # the test even when the test itself did not look at the exit code.
        log = self.read_log()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError(f"ensembled reported '{marker}':\n{log[log.index(marker) - 200:][:6000]}")


class Client:
    """A native-protocol client: one JSON line out, lines back."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SCALE)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0
        self.events = []  # events read while waiting for a reply

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj) + "\n")

    def recv_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the daemon")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def recv(self):
        return json.loads(self.recv_line())

    def request(self, action, data=None, agent=None, timeout_ms=None):
        """Sends a request and returns its reply; events seen meanwhile go to self.events."""
        self.next_id += 1
        rid = f"t{self.next_id}"
        msg = {"id": rid, "action": action}
        if data is not None:
            msg["data"] = data
        if agent is not None:
            msg["agent"] = agent
        if timeout_ms is not None:
            msg["timeout_ms"] = timeout_ms
        self.send(msg)
        return self.wait_reply(rid)

    def wait_reply(self, rid):
        while True:
            obj = self.recv()
            if "event" in obj:
                self.events.append(obj)
            elif obj.get("id") == rid:
                return obj
            else:
                self.events.append(obj)

    def ok(self, action, data=None, **kw):
        reply = self.request(action, data, **kw)
        assert reply["status"] == "success", reply
        return reply["data"]

    def next_event(self):
        if self.events:
            return self.events.pop(0)
        while True:
            obj = self.recv()
            if "event" in obj:
                return obj
            self.events.append(obj)

    def close(self):
        self.sock.close()


def ksi(path, command, parameters=None, keep=False):
    """One KSI command on a fresh connection (as KSI clients do); returns the reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    s.connect(path)
    msg = {"command": command, "version": "2.0", "parameters": parameters or {}}
    s.sendall((json.dumps(msg) + "\n").encode())
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    if not keep:
        s.close()
    return json.loads(buf.split(b"\n", 1)[0])


def run_tests(namespace):
    """Runs every test_* function of a module; prints one line per test and a
    summary; exits non-zero when any failed."""
    tests = [(n, f) for n, f in sorted(namespace.items()) if n.startswith("test_") and callable(f)]
    only = os.environ.get("ENS_TEST_ONLY")
    passed = failed = 0
    for name, func in tests:
        if only and only not in name:
            continue
        start = time.time()
        try:
            func()
            passed += 1
            print(f"ok   {name} ({time.time() - start:.2f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
