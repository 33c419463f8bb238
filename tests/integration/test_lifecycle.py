"""Daemon lifecycle through the real binary: socket permissions, a second
daemon on the same folder, stale sockets, kill -9 durability, clean signal
shutdown, plugin refusals and disabling, command-line flags."""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

from enslib import BAD_FIXTURES, ENSEMBLED, GOOD_FIXTURES, PLUGIN_DIR, SCALE, Daemon, run_tests

BAD_REASONS = {
    "bad-major.so": "ABI 2.0",
    "bad-minor.so": "newer",
    "bad-short.so": "at least",
    "bad-nosymbol.so": "no ens_plugin_query",
    "bad-init.so": "init failed",
    "bad-duplicate.so": "already taken",
    "bad-vtable.so": "EnsAgentVTable",
    "bad-tools.so": "tools[0].input_schema must be a JSON Schema of an object",
}
REFUSED = re.compile(r"plugin refused: (\S+): (.*)$", re.M)


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout * SCALE
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def socket_files(folder):
    out = []
    for name in os.listdir(folder):
        if stat.S_ISSOCK(os.lstat(os.path.join(folder, name)).st_mode):
            out.append(name)
    return sorted(out)


def plugin_ids(d):
    c = d.client()
    try:
        return {p["id"] for p in c.ok("plugins.list")["plugins"]}
    finally:
        c.close()


def agent_names(d):
    c = d.client()
    try:
        return {a["name"] for a in c.ok("agents.list")["agents"]}
    finally:
        c.close()


def test_socket_folder_and_socket_modes():
    tmp = tempfile.mkdtemp(prefix="ens-test-")
    d = None
    try:
        # A pre-existing folder with loose permissions is tightened.
        os.makedirs(os.path.join(tmp, "sock"), mode=0o755)
        os.chmod(os.path.join(tmp, "sock"), 0o755)
        d = Daemon(tmp=tmp)
        assert stat.S_IMODE(os.stat(d.socket_dir).st_mode) == 0o700, oct(os.stat(d.socket_dir).st_mode)
        c = d.client()
        c.ok("agents.register", {"name": "extern"})
        wait_until(lambda: os.path.exists(d.path("orchestrator-extern.sock")), what="orchestrator-extern.sock")
        # orchestrator-echo.sock may appear just after "ready" (see the report).
        wait_until(lambda: os.path.exists(d.path("orchestrator-echo.sock")), what="orchestrator-echo.sock")
        names = socket_files(d.socket_dir)
        expected = {"ensemble.sock", "admin.sock", "agents.sock", "messaging.sock", "state.sock", "completion.sock",
                    "orchestrator-echo.sock", "orchestrator-extern.sock"}
        assert set(names) >= expected, names
        for name in names:
            mode = stat.S_IMODE(os.stat(d.path(name)).st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"
        c.close()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_second_daemon_on_same_socket_folder():
    d = Daemon()
    other_state = tempfile.mkdtemp(prefix="ens-test-state-")
    try:
        wait_until(lambda: os.path.exists(d.path("orchestrator-echo.sock")), what="orchestrator-echo.sock")
        before = socket_files(d.socket_dir)
        cmd = [ENSEMBLED, "--socket-dir", d.socket_dir, "--state-dir", other_state, "--config", d.config,
               "--plugin-dir", PLUGIN_DIR, "--plugin-dir", GOOD_FIXTURES]
        p = subprocess.run(cmd, capture_output=True, timeout=10 * SCALE, stdin=subprocess.DEVNULL)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        assert p.returncode != 0, out
        assert "another running daemon" in out, out
        # The first daemon is untouched and still serves on every socket.
        assert d.proc.poll() is None, d.read_log()
        assert socket_files(d.socket_dir) == before
        c = d.client()
        assert c.ok("health")["status"] == "healthy"
        assert c.ok("echo", {"still": "here"}, agent="echo") == {"still": "here"}
        c.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.path("admin.sock"))
        s.close()
    finally:
        d.cleanup()
        shutil.rmtree(other_state, ignore_errors=True)


def test_stale_socket_file_is_replaced():
    tmp = tempfile.mkdtemp(prefix="ens-test-")
    d = None
    try:
        sock_dir = os.path.join(tmp, "sock")
        os.makedirs(sock_dir, mode=0o700)
        for name in ("ensemble.sock", "admin.sock"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(sock_dir, name))
            s.close()  # the file stays, nothing listens
            assert stat.S_ISSOCK(os.lstat(os.path.join(sock_dir, name)).st_mode)
        d = Daemon(tmp=tmp)
        c = d.client()
        assert c.ok("health")["status"] == "healthy"
        c.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.path("admin.sock"))
        s.close()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_kill9_keeps_acknowledged_state():
    d = Daemon()
    try:
        c = d.client()
        counts = [c.ok("count", {}, agent="echo")["n"] for _ in range(3)]
        assert counts == sorted(set(counts)), counts
        for i in range(200):
            r = c.ok("kv.set", {"agent": "durable", "key": f"k{i:03d}", "value": {"i": i, "s": "x" * (i % 7)}})
            assert r["stored"] is True, r
        d.kill9()  # right after the last acknowledgement
        c.close()

        d.log_path = os.path.join(d.tmp, "ensembled-restart.log")
        d.start()
        c = d.client()
        for i in range(200):
            r = c.ok("kv.get", {"agent": "durable", "key": f"k{i:03d}"})
            assert r["found"] is True and r["value"] == {"i": i, "s": "x" * (i % 7)}, (i, r)
        keys = c.ok("kv.list", {"agent": "durable"})["keys"]
        assert len(keys) == 200, len(keys)
        n = c.ok("count", {}, agent="echo")["n"]
        assert n > counts[-1], (counts, n)
        c.close()
    finally:
        d.cleanup()


def stop_removes_sockets(sig):
    d = Daemon()
    try:
        c = d.client()
        c.ok("agents.register", {"name": "leaver"})
        wait_until(lambda: os.path.exists(d.path("orchestrator-leaver.sock")), what="orchestrator-leaver.sock")
        wait_until(lambda: os.path.exists(d.path("orchestrator-echo.sock")), what="orchestrator-echo.sock")
        names = socket_files(d.socket_dir)
        assert len(names) >= 8, names
        rc = d.stop(sig)
        assert rc == 0, (rc, d.read_log())
        left = socket_files(d.socket_dir) if os.path.isdir(d.socket_dir) else []
        assert left == [], f"sockets left after {sig!r}: {left}"
        c.close()
    finally:
        d.cleanup()


def test_sigterm_exits_0_and_removes_sockets():
    stop_removes_sockets(signal.SIGTERM)


def test_sigint_exits_0_and_removes_sockets():
    stop_removes_sockets(signal.SIGINT)


def test_plugin_refusals_are_logged_and_survived():
    d = Daemon(plugin_dirs=[PLUGIN_DIR, BAD_FIXTURES])
    try:
        c = d.client()
        h = c.ok("health")
        # Health tells the truth: plugin files that do not run are named (but
        # a second file with a running plugin's id: nothing is missing).
        assert h["status"] == "degraded", h
        assert h["plugins_refused"] == len(BAD_REASONS), h
        failed = {os.path.basename(f["file"]) for f in h["failed_plugins"]}
        assert failed == set(BAD_REASONS) - {"bad-duplicate.so"}, h["failed_plugins"]
        c.close()
        log = d.read_log()
        lines = REFUSED.findall(log)
        by_file = {}
        for path, reason in lines:
            by_file.setdefault(os.path.basename(path), []).append(reason)
        assert set(by_file) == set(BAD_REASONS), (by_file, log)
        for name, word in BAD_REASONS.items():
            assert len(by_file[name]) == 1, (name, by_file[name])
            assert word in by_file[name][0], (name, by_file[name][0])
            assert os.path.join(BAD_FIXTURES, name) in log or name in log
        assert "bad-" not in " ".join(plugin_ids(d) - {"transport-unix"})
    finally:
        d.cleanup()


def test_writable_plugin_is_refused():
    plugins = tempfile.mkdtemp(prefix="ens-test-plugins-")
    d = None
    try:
        path = os.path.join(plugins, "agent-echo.so")
        shutil.copy(os.path.join(GOOD_FIXTURES, "agent-echo.so"), path)
        os.chmod(path, 0o775)  # group-writable
        d = Daemon(plugin_dirs=[PLUGIN_DIR, plugins])
        lines = REFUSED.findall(d.read_log())
        assert len(lines) == 1 and lines[0][0] == path and "writable" in lines[0][1], (lines, d.read_log())
        assert "agent-echo" not in plugin_ids(d)
        assert "echo" not in agent_names(d)
        d.cleanup()
        d = None

        os.chmod(path, 0o757)  # world-writable
        d = Daemon(plugin_dirs=[PLUGIN_DIR, plugins])
        lines = REFUSED.findall(d.read_log())
        assert len(lines) == 1 and lines[0][0] == path and "writable" in lines[0][1], (lines, d.read_log())
        assert "echo" not in agent_names(d)
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(plugins, ignore_errors=True)


def check_echo_disabled(d):
    assert "agent-echo" not in plugin_ids(d)
    assert "echo" not in agent_names(d)
    assert not os.path.exists(d.path("orchestrator-echo.sock"))
    c = d.client()
    assert c.ok("health")["plugins_refused"] == 0
    r = c.request("echo", {}, agent="echo")
    assert r["status"] == "error" and r["error"]["code"] == "AGENT_NOT_FOUND", r
    c.close()
    log = d.read_log()
    assert "plugin refused" not in log, log
    lines = [l for l in log.splitlines() if "agent-echo" in l]
    assert lines and all(("skipped" in l or "disabled" in l) for l in lines), lines


def test_disabled_plugins_setting():
    d = Daemon(settings={"disabled-plugins": "['agent-echo']"})
    try:
        check_echo_disabled(d)
    finally:
        d.cleanup()


def test_disable_plugin_flag():
    d = Daemon(args=["--disable-plugin", "agent-echo"])
    try:
        check_echo_disabled(d)
    finally:
        d.cleanup()


def test_no_transport_exits_1():
    # The bad fixtures, less bad-duplicate: that one is a transport whose init
    # succeeds (it is refused only when the real transport-unix came first).
    plugins = tempfile.mkdtemp(prefix="ens-test-plugins-")
    d = None
    try:
        for name in BAD_REASONS:
            if name != "bad-duplicate.so":
                shutil.copy(os.path.join(BAD_FIXTURES, name), os.path.join(plugins, name))
                os.chmod(os.path.join(plugins, name), 0o755)
        for dirs in ([plugins], [plugins, GOOD_FIXTURES], [os.path.join(plugins, "missing")]):
            d = Daemon(plugin_dirs=dirs, wait=False)
            try:
                rc = d.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"daemon without a transport kept running:\n{d.read_log()}")
            log = d.read_log()
            assert rc == 1, (dirs, rc, log)
            assert "no transport plugin started" in log, log
            assert not os.path.exists(d.path("ensemble.sock")), dirs
            d.cleanup()
            d = None
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(plugins, ignore_errors=True)


def test_version_and_help():
    p = subprocess.run([ENSEMBLED, "--version"], capture_output=True, timeout=10 * SCALE)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert re.search(r"ensembled \d+\.\d+\.\d+", out), out
    p = subprocess.run([ENSEMBLED, "--help"], capture_output=True, timeout=10 * SCALE)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    for flag in ("--socket-dir", "--state-dir", "--plugin-dir", "--config", "--disable-plugin", "--version"):
        assert flag in out, (flag, out)
    p = subprocess.run([ENSEMBLED, "--no-such-flag"], capture_output=True, timeout=10 * SCALE)
    assert p.returncode != 0, p


def test_flags_override_settings():
    tmp = tempfile.mkdtemp(prefix="ens-test-")
    d = None
    try:
        from_settings = os.path.join(tmp, "settings-sock")
        d = Daemon(tmp=tmp, settings={"socket-dir": repr(from_settings),
                                      "state-dir": repr(os.path.join(tmp, "settings-state")),
                                      "plugin-dirs": repr([os.path.join(tmp, "no-plugins-here")])})
        # Daemon passes --socket-dir <tmp>/sock and --plugin-dir flags.
        assert os.path.exists(d.path("ensemble.sock"))
        assert os.path.exists(d.path("admin.sock"))
        assert not os.path.exists(from_settings), os.listdir(tmp)
        assert not os.path.exists(os.path.join(tmp, "settings-state")), os.listdir(tmp)
        assert "echo" in agent_names(d)
        c = d.client()
        h = c.ok("health")
        assert os.path.realpath(h["socket_dir"]) == os.path.realpath(d.socket_dir), h
        assert os.path.realpath(h["state_dir"]) == os.path.realpath(d.state_dir), h
        c.close()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


run_tests(globals())
