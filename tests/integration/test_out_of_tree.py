"""Third-party plugins built out of tree with only pkg-config, as the plugin
ABI promises: tests/fixtures/good/agent-echo.c (an agent) and
tests/fixtures/transport/transport-line.c (a transport written from the
headers alone) compiled by hand, checked for their exported symbols, loaded
by the daemon and driven over their sockets."""
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time

from enslib import BUILD, GOOD_FIXTURES, PLUGIN_DIR, SCALE, SOURCE_ROOT, Client, Daemon, run_tests

SOURCE = os.path.join(SOURCE_ROOT, "tests", "fixtures", "good", "agent-echo.c")
LINE_SOURCE = os.path.join(SOURCE_ROOT, "tests", "fixtures", "transport", "transport-line.c")


def env_with_pkg_config():
    env = dict(os.environ)
    # meson test sets PKG_CONFIG_PATH; by hand we point at the uninstalled .pc.
    if not env.get("PKG_CONFIG_PATH"):
        env["PKG_CONFIG_PATH"] = os.path.join(os.path.abspath(BUILD), "meson-uninstalled")
    return env


def sh(cmd, env, cwd=None):
    p = subprocess.run(cmd, shell=True, capture_output=True, env=env, cwd=cwd, timeout=60 * SCALE)
    assert p.returncode == 0, f"`{cmd}` failed ({p.returncode}):\n{p.stdout.decode()}\n{p.stderr.decode()}"
    return p.stdout.decode()


def test_pkg_config_gives_the_plugin_headers():
    env = env_with_pkg_config()
    cflags = sh("pkg-config --cflags ensemble-1", env).split()
    includes = [f[2:] for f in cflags if f.startswith("-I")]
    assert any(os.path.isfile(os.path.join(i, "ensemble", "ensemble.h")) for i in includes), (
        f"`pkg-config --cflags ensemble-1` has no folder holding ensemble/ensemble.h: {cflags} "
        f"(PKG_CONFIG_PATH={env['PKG_CONFIG_PATH']})")
    sh("pkg-config --modversion ensemble-1", env)


def test_out_of_tree_plugin_builds_exports_and_loads():
    tmp = tempfile.mkdtemp(prefix="ens-oot-")
    d = None
    try:
        env = env_with_pkg_config()
        plugins = os.path.join(tmp, "plugins")
        os.makedirs(plugins)
        src = os.path.join(tmp, "agent-echo.c")
        shutil.copy(SOURCE, src)  # nothing from the source tree but this one file
        out = os.path.join(plugins, "agent-echo.so")
        cc = env.get("CC", "cc")
        sh(f"{cc} -shared -fPIC -fvisibility=hidden $(pkg-config --cflags ensemble-1) agent-echo.c "
           f"-o {shlex.quote(out)} $(pkg-config --libs glib-2.0 json-glib-1.0)", env, cwd=tmp)
        os.chmod(out, 0o755)  # whatever the umask: the daemon refuses writable plugins

        symbols = sh(f"nm -D --defined-only {shlex.quote(out)}", env)
        names = [line.split()[-1] for line in symbols.splitlines() if line.strip()]
        ens = sorted(n for n in names if n.startswith("ens_"))
        assert ens == ["ens_plugin_query"], ens

        d = Daemon(plugin_dirs=[PLUGIN_DIR, plugins])
        c = d.client()
        listed = {p["id"]: p for p in c.ok("plugins.list")["plugins"]}
        assert "agent-echo" in listed, (listed, d.read_log())
        assert os.path.realpath(listed["agent-echo"]["file"]) == os.path.realpath(out), listed["agent-echo"]
        assert c.ok("echo", {"from": "out of tree", "n": [1, 2, 3]}, agent="echo") == \
            {"from": "out of tree", "n": [1, 2, 3]}
        r = c.request("fail", {"code": "OOT", "message": "built by hand"}, agent="echo")
        assert r["status"] == "error" and r["error"]["code"] == "OOT", r
        c.close()
        assert "plugin refused" not in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def build_by_hand(src_path, tmp, env):
    """Compiles one source file into tmp/plugins with pkg-config ensemble-1
    alone; returns the .so path after checking its only export."""
    plugins = os.path.join(tmp, "plugins")
    os.makedirs(plugins, exist_ok=True)
    name = os.path.basename(src_path)
    shutil.copy(src_path, os.path.join(tmp, name))  # nothing from the source tree but this one file
    out = os.path.join(plugins, name.replace(".c", ".so"))
    cc = env.get("CC", "cc")
    sh(f"{cc} -shared -fPIC -fvisibility=hidden {name} -o {shlex.quote(out)} "
       f"$(pkg-config --cflags --libs ensemble-1)", env, cwd=tmp)
    os.chmod(out, 0o755)
    symbols = sh(f"nm -D --defined-only {shlex.quote(out)}", env)
    names = [line.split()[-1] for line in symbols.splitlines() if line.strip()]
    assert sorted(n for n in names if n.startswith("ens_")) == ["ens_plugin_query"], names
    return out


class Line:
    """A raw client of transport-line: lines out, lines back, EOF seen."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10 * SCALE)
        self.sock.connect(path)
        self.buf = b""

    def send(self, *objs):
        self.sock.sendall(b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs))

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed with {self.buf!r} unread")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def recv_until_eof(self):
        out = []
        while True:
            try:
                out.append(self.recv())
            except EOFError:
                assert self.buf == b"", self.buf
                return out

    def close(self):
        self.sock.close()


def test_out_of_tree_transport_from_the_headers_alone():
    tmp = tempfile.mkdtemp(prefix="ens-oot-")
    d = None
    try:
        env = env_with_pkg_config()
        out = build_by_hand(LINE_SOURCE, tmp, env)
        d = Daemon(plugin_dirs=[PLUGIN_DIR, GOOD_FIXTURES, os.path.dirname(out)])
        log = d.read_log()
        assert "plugin refused" not in log, log
        c = d.client()
        listed = {p["id"]: p for p in c.ok("plugins.list")["plugins"]}
        assert listed["transport-line"]["kind"] == "transport", listed.get("transport-line")
        assert os.path.realpath(listed["transport-line"]["file"]) == os.path.realpath(out)
        path = d.path("line.sock")
        assert os.path.exists(path), log

        # One answer per request and per bounce, in one pipelined write; after
        # a half-close every answer due still comes, then the transport closes.
        a = Line(path)
        a.send({"id": 1, "action": "ping"}, b"{not json", {"id": "no-action"},
               {"id": "e1", "agent": "echo", "action": "sleep", "data": {"ms": 50}},
               {"id": "e2", "agent": "echo", "action": "echo", "data": {"x": [1, 2]}})
        a.sock.shutdown(socket.SHUT_WR)
        answers = a.recv_until_eof()
        assert len(answers) == 5, answers
        by_id = {str(r.get("id")): r for r in answers}
        assert by_id["1"]["status"] == "success" and by_id["1"]["data"] == {"pong": True}, answers
        bad = [r for r in answers if r.get("id") is None]
        assert len(bad) == 1 and bad[0]["error"]["code"] == "INVALID_JSON", answers
        assert by_id["no-action"]["error"]["code"] == "INVALID_REQUEST", answers
        assert by_id["e1"]["data"] == {"slept_ms": 50}, answers
        assert by_id["e2"]["data"] == {"x": [1, 2]}, answers
        a.close()

        # An agent served over the line transport: its answer gets no answer;
        # an answer to nothing gets UNKNOWN_REQUEST; events arrive.
        agent = Line(path)
        agent.send({"id": "r", "action": "agents.register", "data": {"name": "liner", "actions": ["hi"]}},
                   {"id": "s", "action": "subscribe", "data": {"topics": ["line.*"]}})
        assert agent.recv()["data"]["registered"] is True
        assert agent.recv()["data"]["subscribed"] == ["line.*"]
        c.send({"id": "ask", "agent": "liner", "action": "hi", "data": {"n": 7}})
        fwd = agent.recv()
        assert fwd["action"] == "hi" and fwd["data"] == {"n": 7}, fwd
        agent.send({"reply_to": fwd["id"], "data": {"n": 8}})
        assert c.wait_reply("ask")["data"] == {"n": 8}
        agent.send({"reply_to": "q-none", "data": {}})
        r = agent.recv()
        assert r["status"] == "error" and r["error"]["code"] == "UNKNOWN_REQUEST", r
        assert c.ok("publish", {"topic": "line.news", "data": {"v": 1}})["delivered"] == 1
        ev = agent.recv()
        assert ev["event"] == "line.news" and ev["data"] == {"v": 1}, ev
        # Nothing is due: a half-close ends the connection at once, and its
        # agent goes with it.
        agent.sock.shutdown(socket.SHUT_WR)
        assert agent.recv_until_eof() == []
        agent.close()
        deadline = time.time() + 10 * SCALE
        while "liner" in {x["name"] for x in c.ok("agents.list")["agents"]}:
            assert time.time() < deadline, "the agent outlived its connection"
            time.sleep(0.02)
        c.close()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


run_tests(globals())
