"""ensemblectl, the command-line client, against a running daemon."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from enslib import Daemon, ENSEMBLECTL, SCALE, run_tests


def ctl(d, *args, socket_dir=None, env=None, timeout=15):
    argv = [ENSEMBLECTL]
    if socket_dir is not False:
        argv += ["--socket-dir", socket_dir or d.socket_dir]
    full_env = dict(os.environ)
    full_env.pop("ENSEMBLE_SOCKET", None)
    full_env.update(env or {})
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout * SCALE,
                          env=full_env, stdin=subprocess.DEVNULL)


def ok(d, *args, **kw):
    p = ctl(d, *args, **kw)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def one_error_line(p, code, status=1):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"ensemblectl: {code}: "), p.stderr
    assert len(lines[0]) > len(f"ensemblectl: {code}: "), p.stderr


def test_health_plugins_agents_ping():
    d = Daemon()
    try:
        out = ok(d, "health")
        assert "healthy" in out, out
        assert "transport-unix" in out and "agent-echo" in out, out
        h = json.loads(ok(d, "--json", "health"))
        assert h["status"] == "healthy"
        assert h["socket_dir"] == d.socket_dir
        assert {p["id"] for p in h["plugins"]} >= {"transport-unix", "agent-echo"}

        out = ok(d, "plugins")
        assert "transport-unix" in out and "agent-echo" in out, out
        plugins = json.loads(ok(d, "--json", "plugins"))
        assert {p["id"] for p in plugins["plugins"]} >= {"transport-unix", "agent-echo"}, plugins

        out = ok(d, "agents")
        assert "echo" in out, out
        agents = json.loads(ok(d, "--json", "agents"))
        assert "echo" in {a["name"] for a in agents["agents"]}, agents

        out = ok(d, "ping")
        assert "pong" in out.lower(), out
        assert json.loads(ok(d, "--json", "ping")) == {"pong": True}

        # --socket PATH and $ENSEMBLE_SOCKET reach the same daemon.
        assert json.loads(ok(d, "--socket", d.path("ensemble.sock"), "--json", "ping", socket_dir=False)) == \
            {"pong": True}
        assert json.loads(ok(d, "--json", "ping", socket_dir=False,
                             env={"ENSEMBLE_SOCKET": d.path("ensemble.sock")})) == {"pong": True}

        assert ok(d, "--version", socket_dir=False).strip()
        assert "Usage" in ok(d, "--help", socket_dir=False)
    finally:
        d.cleanup()


def test_publish():
    d = Daemon()
    try:
        sub = d.client()
        # Exact topics: a pattern such as cli.* would also match the key of a
        # targeted event (cli.private:<client>).
        sub.ok("subscribe", {"topics": ["cli.one", "cli.two", "cli.three", "cli.private", "cli.marker",
                                        "cli.marker2", "cli.bad"]})
        out = ok(d, "publish", "cli.one", '{"x": [1, 2]}')
        assert "cli.one" in out, out
        ev = sub.next_event()
        assert ev["event"] == "cli.one" and ev["data"] == {"x": [1, 2]}, ev

        r = json.loads(ok(d, "--json", "publish", "cli.two", '"text"'))
        assert r["delivered"] == 1 and isinstance(r["seq"], int), r
        ev = sub.next_event()
        assert ev["event"] == "cli.two" and ev["data"] == "text", ev

        # Data defaults to null.
        ok(d, "publish", "cli.three")
        ev = sub.next_event()
        assert ev["event"] == "cli.three" and ev.get("data") is None, ev

        # --to: targeted to one client.
        target = d.client()
        target.ok("subscribe", {"topics": ["whoami.t"]})
        target.ok("publish", {"topic": "whoami.t"})
        target_id = target.next_event()["from"]
        r = json.loads(ok(d, "--json", "publish", "cli.private", '{"p":1}', "--to", target_id))
        assert r["delivered"] == 1, r
        ev = target.next_event()
        assert ev["event"] == "cli.private" and ev["to"] == target_id, ev
        ok(d, "publish", "cli.marker")
        assert sub.next_event()["event"] == "cli.marker"  # sub did not get cli.private

        # Plain text is published as a string, as `kv set` stores it; so is
        # text that only looks like JSON.
        ok(d, "publish", "cli.bad", "hello world")
        ev = sub.next_event()
        assert ev["event"] == "cli.bad" and ev["data"] == "hello world", ev
        ok(d, "publish", "cli.bad", "{bad")
        ev = sub.next_event()
        assert ev["event"] == "cli.bad" and ev["data"] == "{bad", ev
        ok(d, "publish", "cli.marker2")
        assert sub.next_event()["event"] == "cli.marker2"
        sub.close()
        target.close()
    finally:
        d.cleanup()


def test_kv_commands():
    d = Daemon()
    try:
        out = ok(d, "kv", "set", "cliagent", "cfg", '{"v": [1, "two"], "b": true}')
        c = d.client()
        assert c.ok("kv.get", {"agent": "cliagent", "key": "cfg"})["value"] == {"v": [1, "two"], "b": True}
        assert json.loads(ok(d, "kv", "get", "cliagent", "cfg")) == {"v": [1, "two"], "b": True}
        r = json.loads(ok(d, "--json", "kv", "get", "cliagent", "cfg"))
        assert r["value"] == {"v": [1, "two"], "b": True} and r["found"] is True, r

        # Anything that is not JSON is stored as a string; JSON scalars stay typed.
        ok(d, "kv", "set", "cliagent", "greeting", "hello world")
        assert c.ok("kv.get", {"agent": "cliagent", "key": "greeting"})["value"] == "hello world"
        ok(d, "kv", "set", "cliagent", "num", "42")
        assert c.ok("kv.get", {"agent": "cliagent", "key": "num"})["value"] == 42
        assert json.loads(ok(d, "kv", "get", "cliagent", "num")) == 42

        keys = ok(d, "kv", "list", "cliagent").split()
        assert sorted(keys) == ["cfg", "greeting", "num"], keys
        assert ok(d, "kv", "list", "cliagent", "gr").split() == ["greeting"]
        r = json.loads(ok(d, "--json", "kv", "list", "cliagent"))
        assert sorted(r["keys"]) == ["cfg", "greeting", "num"], r
        assert ok(d, "kv", "list", "nobody").strip() == ""

        ok(d, "kv", "del", "cliagent", "cfg")
        assert c.ok("kv.get", {"agent": "cliagent", "key": "cfg"})["found"] is False
        p = ctl(d, "kv", "get", "cliagent", "cfg")
        one_error_line(p, "NOT_FOUND")
        assert p.stdout == ""
        # Deleting a missing key is not an error.
        ok(d, "kv", "del", "cliagent", "cfg")

        # Usage errors.
        one_error_line(ctl(d, "kv"), "USAGE", status=2)
        one_error_line(ctl(d, "kv", "get", "cliagent"), "USAGE", status=2)
        one_error_line(ctl(d, "kv", "frobnicate", "a", "b"), "USAGE", status=2)
        c.close()
    finally:
        d.cleanup()


def test_request():
    d = Daemon()
    try:
        assert json.loads(ok(d, "request", "echo", "echo", '{"a":1}')) == {"a": 1}
        assert json.loads(ok(d, "--json", "request", "echo", "echo", '{"a":1}')) == {"a": 1}
        # Data defaults to {}.
        assert json.loads(ok(d, "--json", "request", "echo", "echo")) == {}

        p = ctl(d, "request", "missing-agent", "echo", "{}")
        one_error_line(p, "AGENT_NOT_FOUND")
        assert p.stdout == ""

        # An agent error: its code on stderr, exit 1.
        p = ctl(d, "request", "echo", "fail", '{"code":"CUSTOM_FAIL","message":"asked to"}')
        one_error_line(p, "CUSTOM_FAIL")

        # --timeout is the agent deadline.
        start = time.time()
        p = ctl(d, "--timeout", "200", "request", "echo", "sleep", '{"ms": 3000}')
        one_error_line(p, "TIMEOUT")
        assert time.time() - start < 2.5 * SCALE

        # Bad JSON argument: usage error (exit 2), nothing sent.
        p = ctl(d, "request", "echo", "echo", "{bad")
        one_error_line(p, "USAGE", status=2)
        one_error_line(ctl(d, "request", "echo"), "USAGE", status=2)
        one_error_line(ctl(d, "no-such-command"), "USAGE", status=2)

        # An external agent answers through ensemblectl.
        a = d.client()
        a.ok("agents.register", {"name": "cli-ext"})
        proc = subprocess.Popen([ENSEMBLECTL, "--socket-dir", d.socket_dir, "--json", "request", "cli-ext", "hi",
                                 '{"q": 1}'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            q = a.recv()
            assert q["action"] == "hi" and q["data"] == {"q": 1}, q
            a.send({"reply_to": q["id"], "status": "success", "data": {"answer": "yes"}})
            out, err = proc.communicate(timeout=10 * SCALE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, (out, err)
        assert json.loads(out) == {"answer": "yes"}
        a.close()
    finally:
        d.cleanup()


def read_json_lines(proc, n, timeout):
    """Reads n JSON lines from proc.stdout (binary pipe) within timeout seconds."""
    out = []
    buf = b""
    deadline = time.time() + timeout
    fd = proc.stdout.fileno()
    while len(out) < n:
        left = deadline - time.time()
        assert left > 0, f"only {len(out)} of {n} lines from ensemblectl subscribe: {out} {buf!r}"
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 65536)
        assert chunk, f"ensemblectl subscribe exited early (status {proc.poll()}): {out}"
        buf += chunk
        while b"\n" in buf and len(out) < n:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
    return out


def test_subscribe_streams_events():
    d = Daemon()
    proc = None
    try:
        proc = subprocess.Popen([ENSEMBLECTL, "--socket-dir", d.socket_dir, "--json", "subscribe", "st.*", "exact"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        pub = d.client()
        # Wait until the subscription exists (health counts subscriptions).
        deadline = time.time() + 10 * SCALE
        while pub.ok("health")["subscriptions"] < 2:
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "ensemblectl subscribe never subscribed"
            time.sleep(0.02)
        pub.ok("publish", {"topic": "st.a", "data": {"n": 1}})
        pub.ok("publish", {"topic": "other", "data": "ignored"})
        pub.ok("publish", {"topic": "exact", "data": [1, 2]})
        pub.ok("publish", {"topic": "st.b.c", "data": "s"})
        events = read_json_lines(proc, 3, 10 * SCALE)
        assert [e["event"] for e in events] == ["st.a", "exact", "st.b.c"], events
        assert events[0]["data"] == {"n": 1} and events[1]["data"] == [1, 2] and events[2]["data"] == "s", events
        assert all(isinstance(e["seq"], int) for e in events), events
        assert events[0]["seq"] < events[1]["seq"] < events[2]["seq"], events

        proc.send_signal(signal.SIGINT)
        rc = proc.wait(10 * SCALE)
        assert rc == 0, (rc, proc.stderr.read())
        # Its subscription is gone with it.
        deadline = time.time() + 5 * SCALE
        while pub.ok("health")["subscriptions"] > 0 and time.time() < deadline:
            time.sleep(0.02)
        assert pub.ok("health")["subscriptions"] == 0
        pub.close()

        # Without arguments: usage error.
        one_error_line(ctl(d, "subscribe"), "USAGE", status=2)
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        d.cleanup()


def test_subscribe_ends_when_daemon_stops():
    d = Daemon()
    proc = None
    try:
        proc = subprocess.Popen([ENSEMBLECTL, "--socket-dir", d.socket_dir, "--json", "subscribe", "x"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        c = d.client()
        deadline = time.time() + 10 * SCALE
        while c.ok("health")["subscriptions"] < 1:
            assert time.time() < deadline
            time.sleep(0.02)
        c.close()
        assert d.stop() == 0
        rc = proc.wait(10 * SCALE)
        assert rc == 1, rc  # the connection was lost: an error, not a clean interrupt
        err = proc.stderr.read().decode()
        assert err.startswith("ensemblectl: ") and len(err.splitlines()) == 1, err
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        d.cleanup()


def test_not_running():
    d = Daemon()
    try:
        assert d.stop() == 0
        p = ctl(d, "ping")
        one_error_line(p, "NOT_RUNNING")
        p = ctl(d, "health", socket_dir=os.path.join(d.tmp, "no-such-dir"))
        one_error_line(p, "NOT_RUNNING")
        # A stale socket file with nobody listening.
        import socket as socketmod
        stale = os.path.join(d.tmp, "stale")
        os.makedirs(stale, exist_ok=True)
        s = socketmod.socket(socketmod.AF_UNIX, socketmod.SOCK_STREAM)
        s.bind(os.path.join(stale, "ensemble.sock"))
        s.close()
        p = ctl(d, "ping", socket_dir=stale)
        one_error_line(p, "NOT_RUNNING")
    finally:
        d.cleanup()


def test_shutdown():
    d = Daemon()
    try:
        p = ctl(d, "shutdown")
        assert p.returncode == 0, (p.stdout, p.stderr)
        rc = d.proc.wait(10 * SCALE)
        assert rc == 0, (rc, d.read_log())
        assert not os.path.exists(d.path("ensemble.sock"))
        one_error_line(ctl(d, "ping"), "NOT_RUNNING")
    finally:
        d.cleanup()


def test_help_comes_from_the_command_table():
    # needs no daemon: the socket folder does not exist
    nowhere = os.path.join(tempfile.gettempdir(), "ens-no-such-dir")
    full = ok(None, "--help", socket_dir=nowhere)
    assert ok(None, "help", socket_dir=nowhere) == full
    # every command line of the help: "  WORDS [OPERANDS]   one-line help"
    listed = re.findall(r"^  ([a-z]+(?: [a-z]+)?)(?: [A-Z\[].*?)?  +\S", full, re.M)
    assert {"health", "publish", "subscribe", "request", "kv get", "kv del", "complete", "session exec",
            "sessions", "help"} <= set(listed), listed
    for words in listed:
        # COMMAND --help: its own usage line, exit 0
        out = ok(None, *words.split(), "--help", socket_dir=nowhere)
        assert out.startswith(f"Usage: ensemblectl [OPTION...] {words}"), (words, out)
        assert ok(None, "help", *words.split(), socket_dir=nowhere) == out, words
    # only the options a command takes
    out = ok(None, "complete", "--help", socket_dir=nowhere)
    assert "--stream" in out and "--model M" in out and "--to CLIENT" not in out, out
    out = ok(None, "publish", "--help", socket_dir=nowhere)
    assert "--to CLIENT" in out and "--stream" not in out, out
    # a command with subcommands lists them; options after it are still seen
    out = ok(None, "--json", "kv", "--timeout", "5", "--help", socket_dir=nowhere)
    assert out.startswith("Usage: ensemblectl [OPTION...] kv SUBCOMMAND"), out
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("  kv ")] == \
        [["kv", "get"], ["kv", "set"], ["kv", "del"], ["kv", "list"]], out
    # --help before the command word, and -h
    assert ok(None, "-h", "request", socket_dir=nowhere).startswith("Usage: ensemblectl [OPTION...] request AGENT")
    # an unknown command: a usage error, not the general help
    one_error_line(ctl(None, "frobnicate", "--help", socket_dir=nowhere), "USAGE", status=2)
    one_error_line(ctl(None, "help", "frobnicate", socket_dir=nowhere), "USAGE", status=2)


def test_usage_errors_come_from_the_command_table():
    d = Daemon()
    try:
        for args in (["session"], ["session", "bogus"], ["kv", "bogus", "a"], ["health", "extra"],
                     ["publish"], ["publish", "t", "{}", "extra"], ["route", "{bad"], ["session", "status"],
                     ["help", "kv", "get", "extra"]):
            p = ctl(d, *args)
            one_error_line(p, "USAGE", status=2)
            assert p.stdout == "", (args, p.stdout)
        p = ctl(d, "session")
        assert "spawn, exec, status or stop" in p.stderr, p.stderr
        p = ctl(d, "kv", "bogus", "a")
        assert "get, set, del or list" in p.stderr, p.stderr
        # options only the commands that take them accept
        for args in (["--stream", "health"], ["--to", "someone", "kv", "list", "a"],
                     ["--model", "m", "session", "spawn"], ["--provider", "p", "ping"]):
            p = ctl(d, *args)
            one_error_line(p, "USAGE", status=2)
        assert "only valid with publish" in ctl(d, "--to", "x", "ping").stderr
        assert "only valid with complete" in ctl(d, "--stream", "ping").stderr
        # "kv delete" is another name for "kv del"
        ok(d, "kv", "set", "aliasagent", "k", "1")
        assert "Deleted" in ok(d, "kv", "delete", "aliasagent", "k")
        one_error_line(ctl(d, "kv", "get", "aliasagent", "k"), "NOT_FOUND")
        # nothing above disturbed the daemon
        assert json.loads(ok(d, "--json", "ping")) == {"pong": True}
    finally:
        d.cleanup()


class ScriptedPeer:
    """A Unix socket at DIR/ensemble.sock that answers each request line with a
    success reply carrying `data` (ensemblectl sends one request per
    connection).  It stands in for a daemon in a state this suite cannot put a
    real one in."""

    def __init__(self, data):
        self.data = data
        self.dir = tempfile.mkdtemp(prefix="ens-peer-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(os.path.join(self.dir, "ensemble.sock"))
        self.sock.listen(8)
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while b"\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                if b"\n" not in buf:
                    continue
                req = json.loads(buf.split(b"\n", 1)[0])
                self.requests.append(req)
                reply = {"id": req.get("id"), "status": "success", "data": self.data}
                conn.sendall((json.dumps(reply) + "\n").encode())

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5 * SCALE)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_health_exit_status_follows_the_reported_status():
    # The real daemon is healthy (exit 0, as test_health_plugins_agents_ping
    # checks); a peer answers with every other status the daemon may report.
    for status in ("degraded", "stopping", "something-new", None):
        data = {"version": "0.1.0", "node_id": "n1", "uptime_s": 1.5, "plugins": [], "counters": {}}
        if status is not None:
            data["status"] = status
        peer = ScriptedPeer(data)
        try:
            p = ctl(None, "health", socket_dir=peer.dir)
            one_error_line(p, "UNHEALTHY")
            assert (f"'{status}'" if status else "(none)") in p.stderr, p.stderr
            # what the daemon said is still printed, in either mode
            assert re.search(rf"^Status:\s+{status or '-'}$", p.stdout, re.M), p.stdout
            p = ctl(None, "--json", "health", socket_dir=peer.dir)
            one_error_line(p, "UNHEALTHY")
            assert json.loads(p.stdout) == data, p.stdout
            assert [r["action"] for r in peer.requests] == ["health", "health"], peer.requests
        finally:
            peer.close()
    peer = ScriptedPeer({"status": "healthy", "plugins": []})
    try:
        p = ctl(None, "health", socket_dir=peer.dir)
        assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    finally:
        peer.close()


def test_health_degraded_when_a_transport_cannot_bind():
    """A transport that cannot bind its port: the daemon runs on, reports
    "degraded" naming it, and ensemblectl health exits 1."""
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    d = Daemon(settings={"http-port": str(blocker.getsockname()[1])})
    try:
        p = ctl(d, "--json", "health")
        one_error_line(p, "UNHEALTHY")
        h = json.loads(p.stdout)
        assert h["status"] == "degraded", h
        assert "transport-http" in p.stdout, h
        p = ctl(d, "health")
        one_error_line(p, "UNHEALTHY")
        assert re.search(r"^Status:\s+degraded$", p.stdout, re.M), p.stdout
        # the rest of the daemon works
        assert json.loads(ok(d, "--json", "ping")) == {"pong": True}
    finally:
        d.cleanup()
        blocker.close()


run_tests(globals())
