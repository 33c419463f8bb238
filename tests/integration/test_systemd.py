"""ensembled under a service manager and its operator's switches: the
sd_notify protocol (READY, STATUS, WATCHDOG, STOPPING) read from a fake
$NOTIFY_SOCKET (a Unix datagram socket this test owns), a --config file that
is not there, and debug logging per log domain (--debug, G_MESSAGES_DEBUG)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from enslib import Daemon, ENSEMBLED, PLUGIN_DIR, SCALE, run_tests


class NotifySocket:
    """A Unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, abstract=False):
        self.tmp = tempfile.mkdtemp(prefix="ens-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"ens-notify-{os.getpid()}-{time.time_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(self.tmp, "notify")
            self.sock.bind(self.address)
        self.seen = []

    def next(self, timeout=10):
        """The next datagram, as a dict of its KEY=VALUE lines."""
        self.sock.settimeout(timeout * SCALE)
        data = self.sock.recv(65536).decode()
        msg = dict(line.split("=", 1) for line in data.split("\n") if line)
        self.seen.append(msg)
        return msg

    def wait_for(self, key, timeout=10):
        deadline = time.time() + timeout * SCALE
        while time.time() < deadline:
            msg = self.next(max(0.05, deadline - time.time()) / SCALE)
            if key in msg:
                return msg
        raise AssertionError(f"no {key} notification; saw {self.seen}")

    def close(self):
        self.sock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def daemon_with_env(extra, **kw):
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        return Daemon(**kw)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_ready_status_and_stopping():
    n = NotifySocket()
    d = None
    try:
        d = daemon_with_env({"NOTIFY_SOCKET": n.address})
        ready = n.wait_for("READY")
        assert ready["READY"] == "1", ready
        assert ready["MAINPID"] == str(d.proc.pid), ready
        assert ready["STATUS"].startswith("Serving "), ready
        assert "plugin" in ready["STATUS"] and "agent" in ready["STATUS"], ready
        # READY only once the transports listen: the socket answers now.
        c = d.client()
        c.ok("ping")
        # STATUS follows what the daemon serves (it is refreshed when it changes).
        c.ok("agents.register", {"name": "notified"})
        status = n.wait_for("STATUS", timeout=15)
        assert status["STATUS"] != ready["STATUS"], (status, ready)
        c.close()
        assert d.stop() == 0
        stopping = n.wait_for("STOPPING")
        assert stopping["STOPPING"] == "1", stopping
        # No WATCHDOG without WATCHDOG_USEC.
        assert not any("WATCHDOG" in m for m in n.seen), n.seen
        # The variable is not passed on to what the daemon runs.
        assert "NOTIFY_SOCKET" not in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        n.close()


def test_watchdog_keep_alive():
    n = NotifySocket(abstract=True)
    d = None
    try:
        # 400 ms: a keep-alive every 200 ms.
        d = daemon_with_env({"NOTIFY_SOCKET": n.address, "WATCHDOG_USEC": "400000"})
        n.wait_for("READY")
        start = time.time()
        beats = 0
        while beats < 3:
            if "WATCHDOG" in n.next():
                beats += 1
        assert time.time() - start < 5 * SCALE, n.seen
        assert all(m.get("WATCHDOG", "1") == "1" for m in n.seen), n.seen
        assert "watchdog keep-alive every 200 ms" in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        n.close()


def test_watchdog_for_another_pid_is_ignored():
    n = NotifySocket()
    d = None
    try:
        d = daemon_with_env({"NOTIFY_SOCKET": n.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        n.wait_for("READY")
        n.sock.settimeout(0.6 * SCALE)
        try:
            while True:
                msg = n.next(0.6)
                assert "WATCHDOG" not in msg, n.seen
        except socket.timeout:
            pass
    finally:
        if d:
            d.cleanup()
        n.close()


def test_bad_notify_socket_and_watchdog_values():
    """Bad input from the environment: one warning each, and the daemon serves."""
    n = NotifySocket()
    d = None
    try:
        d = daemon_with_env({"NOTIFY_SOCKET": "relative/path", "WATCHDOG_USEC": "soon"})
        d.client().ok("ping")
        log = d.read_log()
        assert "NOTIFY_SOCKET=relative/path is neither a path nor an abstract name" in log, log
        d.cleanup()
        # A socket nobody listens on: the daemon warns and runs on.
        d = daemon_with_env({"NOTIFY_SOCKET": n.address + "-gone", "WATCHDOG_USEC": "soon"})
        d.client().ok("ping")
        log = d.read_log()
        assert "systemd: cannot notify" in log, log
        d.cleanup()
        d = daemon_with_env({"NOTIFY_SOCKET": n.address, "WATCHDOG_USEC": "soon"})
        n.wait_for("READY")
        assert "WATCHDOG_USEC=soon is not a number" in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        n.close()


def run_daemon(*args, env=None, timeout=10):
    tmp = tempfile.mkdtemp(prefix="ens-sd-")
    try:
        return subprocess.run([ENSEMBLED, "--socket-dir", os.path.join(tmp, "s"), "--state-dir",
                               os.path.join(tmp, "st")] + list(args), capture_output=True, text=True,
                              timeout=timeout * SCALE, env=dict(os.environ, **(env or {})),
                              stdin=subprocess.DEVNULL), tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_missing_config_file_is_an_error():
    tmp = tempfile.mkdtemp(prefix="ens-sd-conf-")
    n = NotifySocket()
    try:
        missing = os.path.join(tmp, "nope.conf")
        p, _ = run_daemon("--config", missing, env={"NOTIFY_SOCKET": n.address})
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert p.stderr.strip() == f"ensembled: --config {missing}: no such file", p.stderr
        assert not os.path.exists(missing)  # not created either
        p, _ = run_daemon("--config", tmp)
        assert p.returncode == 1 and f"--config {tmp}: not a regular file" in p.stderr, p.stderr
        unreadable = os.path.join(tmp, "locked.conf")
        with open(unreadable, "w") as f:
            f.write("[daemon]\n")
        os.chmod(unreadable, 0)
        if not os.access(unreadable, os.R_OK):  # root reads anything
            p, _ = run_daemon("--config", unreadable)
            assert p.returncode == 1 and "Permission denied" in p.stderr, p.stderr
        # It never said READY.
        n.sock.setblocking(False)
        try:
            data = n.sock.recv(65536)
            assert b"READY" not in data, data
        except BlockingIOError:
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        n.close()


def debug_lines(log, domain):
    return [line for line in log.splitlines() if f" {domain}-DEBUG: " in line]


def test_debug_per_domain():
    d = None
    try:
        # Only the domain asked for: transport-unix's debug lines, not the core's.
        d = Daemon(args=["--debug=transport-unix"])
        d.client().ok("ping")
        d.stop()
        log = d.read_log()
        assert any("connection accepted on" in line for line in debug_lines(log, "transport-unix")), log
        assert not debug_lines(log, "ensembled"), log
        # Messages and warnings are in each plugin's own domain as well.
        assert any(line.startswith("transport-unix-Message") and "listening in" in line
                   for line in log.splitlines()), log
        d.cleanup()

        # The core's domain through G_MESSAGES_DEBUG, as GLib reads it.
        saved = os.environ.get("G_MESSAGES_DEBUG")
        os.environ["G_MESSAGES_DEBUG"] = "ensembled"
        try:
            d = Daemon()
        finally:
            if saved is None:
                os.environ.pop("G_MESSAGES_DEBUG", None)
            else:
                os.environ["G_MESSAGES_DEBUG"] = saved
        c = d.client()
        c.ok("ping")
        c.close()
        d.stop()
        log = d.read_log()
        core = debug_lines(log, "ensembled")
        assert any("request " in line and "ping from c" in line for line in core), log
        assert any("client c" in line and "connected" in line for line in core), log
        assert not debug_lines(log, "transport-unix"), log
        d.cleanup()

        # --debug alone: every domain.
        d = Daemon(args=["--debug"])
        d.client().ok("ping")
        d.stop()
        log = d.read_log()
        assert debug_lines(log, "ensembled") and debug_lines(log, "transport-unix"), log
    finally:
        if d:
            d.cleanup()


def test_debug_bad_domain_is_a_usage_error():
    p, _ = run_daemon("--debug=transport unix!")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--debug: 'unix!' is not a log domain" in p.stderr, p.stderr


run_tests(globals())
