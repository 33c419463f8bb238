"""Ensemble as an MCP client: the servers of mcp-servers are mounted as bus
agents, their tools as actions with their schemas, reachable from every
transport (native, HTTP, and Ensemble's own MCP server).  Tested against
the reference servers from npm (server-everything, server-filesystem on a
temporary folder) and a fixture server built with the official SDK that
grows its tool list, fails, answers big and crashes mid-call: a crashed
server is restarted with backoff, its agent unavailable meanwhile, and the
daemon and the other servers carry on."""
import json
import os
import shutil
import tempfile
import time
import urllib.request

from enslib import SCALE, Daemon, run_tests

JS_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js"))
MODULES = os.path.join(JS_DIR, "node_modules", "@modelcontextprotocol")
NODE = shutil.which("node")
FIXTURE = f"{NODE} {JS_DIR}/mcp-fixture-server.mjs"
EVERYTHING = f"{NODE} {MODULES}/server-everything/dist/index.js stdio"
FILESYSTEM = f"{NODE} {MODULES}/server-filesystem/dist/index.js"


def gv_dict(d):
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in d.items()) + "}"


def wait_ready(c, names, timeout=60):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        servers = {s["name"]: s for s in c.ok("servers", agent="mcp")["servers"]}
        if all(servers.get(n, {}).get("state") == "ready" for n in names):
            return servers
        time.sleep(0.05)
    raise AssertionError(f"MCP servers not ready: {servers}")


def call(c, agent, action, data=None, **kw):
    return c.request(action, data or {}, agent=agent, **kw)


def test_reference_servers_and_fixture_mounted_as_agents():
    folder = tempfile.mkdtemp(prefix="ens-mcp-fs-")
    with open(os.path.join(folder, "hello.txt"), "w") as f:
        f.write("hello from the folder\n")
    servers = {"fix": FIXTURE, "everything": EVERYTHING, "fs": f"{FILESYSTEM} {folder}"}
    d = Daemon(settings={"mcp-servers": gv_dict(servers), "mcp-restart-backoff-ms": "3000",
                         "mcp-max-result-bytes": "65536"})
    try:
        c = d.client()
        wait_ready(c, servers)
        agents = {a["name"]: a for a in c.ok("agents.list")["agents"]}
        fix_tools = {t["name"]: t for t in agents["fix"]["tools"]}
        assert {"add", "big", "fail", "grow", "crash", "pid"} <= set(fix_tools), fix_tools
        assert fix_tools["add"]["description"] == "Adds a and b"
        assert fix_tools["add"]["input_schema"]["required"] == ["a", "b"], fix_tools["add"]
        assert agents["fix"]["mcp"]["state"] == "ready", agents["fix"]
        assert "echo" in {t["name"] for t in agents["everything"]["tools"]}
        assert "read_text_file" in {t["name"] for t in agents["fs"]["tools"]}

        # Calls: the result's text, content and structured content.
        r = call(c, "fix", "add", {"a": 2, "b": 3})
        assert r["status"] == "success", r
        assert r["data"]["text"] == "5" and r["data"]["structuredContent"] == {"sum": 5}, r
        r = call(c, "everything", "echo", {"message": "hi there"})
        assert r["status"] == "success" and "hi there" in r["data"]["text"], r
        r = call(c, "fs", "read_text_file", {"path": os.path.join(folder, "hello.txt")})
        assert r["status"] == "success" and r["data"]["text"] == "hello from the folder\n", r
        r = call(c, "fs", "write_file", {"path": os.path.join(folder, "new.txt"), "content": "written by ensemble"})
        assert r["status"] == "success", r
        with open(os.path.join(folder, "new.txt")) as f:
            assert f.read() == "written by ensemble"
        r = call(c, "fs", "read_text_file", {"path": "/etc/hostname"})
        assert r["status"] == "error" and r["error"]["code"] == "TOOL_ERROR", r
        assert "outside allowed directories" in r["error"]["message"] or "denied" in r["error"]["message"], r

        # The server's schema is checked before the call: the field is named.
        r = call(c, "fix", "add", {"a": "two", "b": 3})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "a", r
        r = call(c, "fix", "add", {"a": 1})
        assert r["error"]["details"]["field"] == "b", r
        # A tool that fails; one that does not exist.
        r = call(c, "fix", "fail")
        assert r["status"] == "error" and r["error"]["code"] == "TOOL_ERROR", r
        assert r["error"]["message"] == "the fixture fails on purpose", r
        r = call(c, "fix", "nonesuch")
        assert r["status"] == "error", r
        # A result over mcp-max-result-bytes is cut, saying so.
        r = call(c, "fix", "big", {"bytes": 200000})
        assert r["status"] == "success" and r["data"]["truncated"] is True, str(r)[:300]
        assert len(r["data"]["text"]) < 70000 and "[truncated: the result is" in r["data"]["text"]
        r = call(c, "fix", "big", {"bytes": 1000})
        assert r["data"]["text"] == "y" * 1000, str(r)[:300]

        # Reachable from HTTP and through Ensemble's own MCP server.
        url = d.http_url()
        req = urllib.request.Request(url + "/api/request", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"id": "h1", "agent": "fix", "action": "add",
                                                      "data": {"a": 40, "b": 2}}).encode())
        with urllib.request.urlopen(req, timeout=10 * SCALE) as resp:
            body = json.loads(resp.read())
        assert body["data"]["structuredContent"] == {"sum": 42}, body

        # list_changed: the fixture grows a tool; the agent lists it, and
        # ensemble.agent.updated tells watchers (Ensemble's own MCP clients
        # hear tools/list_changed from it).
        watcher = d.client()
        watcher.ok("subscribe", {"topics": ["ensemble.agent.updated"]})
        r = call(c, "fix", "grow")
        assert r["status"] == "success", r
        deadline = time.time() + 10 * SCALE
        while time.time() < deadline:
            tools = {t["name"] for a in c.ok("agents.list")["agents"] if a["name"] == "fix" for t in a["tools"]}
            if "grown" in tools:
                break
            time.sleep(0.05)
        assert "grown" in tools, tools
        ev = watcher.next_event()
        assert ev["event"] == "ensemble.agent.updated" and ev["data"]["name"] == "fix", ev
        assert "grown" in ev["data"]["actions"], ev
        watcher.close()
        assert call(c, "fix", "grown")["data"]["text"] == "grown"

        # A server that dies mid-call: the call fails at once, the agent is
        # unavailable, the others carry on, and it comes back.
        old_pid = call(c, "fix", "pid")["data"]["text"]
        r = call(c, "fix", "crash")
        assert r["status"] == "error" and r["error"]["code"] == "MCP_SERVER_EXITED", r
        assert "exited with status 3" in r["error"]["message"], r
        r = call(c, "fix", "add", {"a": 1, "b": 1})
        assert r["status"] == "error" and r["error"]["code"] == "NOT_AVAILABLE", r
        listed = {a["name"]: a for a in c.ok("agents.list")["agents"]}["fix"]
        assert listed["mcp"]["state"] == "unavailable" and listed["mcp"]["restarts"] == 1, listed
        assert "hi" in call(c, "everything", "echo", {"message": "hi"})["data"]["text"]
        servers_now = wait_ready(c, ["fix"])
        assert servers_now["fix"]["restarts"] == 1, servers_now
        assert call(c, "fix", "pid")["data"]["text"] != old_pid
        assert call(c, "fix", "add", {"a": 1, "b": 1})["data"]["text"] == "2"
        assert d.proc.poll() is None
    finally:
        d.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_server_that_cannot_start_and_one_over_http():
    # Daemon a serves its agents over MCP at /mcp; daemon b mounts it by URL.
    a = Daemon()
    try:
        target = a.http_url() + "/mcp"
        servers = {"remote": target, "broken": "/nonexistent/mcp-server --stdio"}
        b = Daemon(settings={"mcp-servers": gv_dict(servers), "mcp-restart-backoff-ms": "200"})
        try:
            c = b.client()
            wait_ready(c, ["remote"])
            agents = {x["name"]: x for x in c.ok("agents.list")["agents"]}
            tools = {t["name"]: t for t in agents["remote"]["tools"]}
            assert tools["echo.sleep"]["input_schema"]["required"] == ["ms"], tools.get("echo.sleep")
            assert agents["remote"]["mcp"]["transport"] == "streamable-http"
            r = call(c, "remote", "echo.echo", {"x": 1})
            assert r["status"] == "success" and r["data"]["structuredContent"] == {"x": 1}, r
            r = call(c, "remote", "echo.sleep", {"ms": "soon"})
            assert r["status"] == "error" and r["error"]["details"]["field"] == "ms", r
            r = call(c, "remote", "echo.fail", {"code": "NOPE", "message": "no"})
            assert r["status"] == "error" and r["error"]["code"] == "TOOL_ERROR", r
            assert r["error"]["message"] == "NOPE: no", r
            # The broken one: listed, unavailable, saying why; retried with backoff.
            r = call(c, "broken", "anything")
            assert r["status"] == "error" and r["error"]["code"] == "NOT_AVAILABLE", r
            assert "No such file" in r["error"]["message"], r
            deadline = time.time() + 10 * SCALE
            while time.time() < deadline:
                s = {x["name"]: x for x in c.ok("servers", agent="mcp")["servers"]}["broken"]
                if s["restarts"] >= 3:
                    break
                time.sleep(0.05)
            assert s["restarts"] >= 3 and s["state"] == "unavailable", s
            # The remote daemon goes away: the agent becomes unavailable.
            a.stop()
            deadline = time.time() + 10 * SCALE
            while time.time() < deadline:
                r = call(c, "remote", "echo.echo", {"x": 2})
                if r["status"] == "error":
                    break
                time.sleep(0.05)
            assert r["error"]["code"] in ("NOT_AVAILABLE", "MCP_SERVER_EXITED"), r
            assert b.proc.poll() is None
        finally:
            b.cleanup()
    finally:
        a.cleanup()


def test_session_tool_loop_calls_two_agents_and_an_mcp_tool():
    """The README's demo: one session whose model (the offline provider,
    deterministic) calls two bus agents and a tool of a mounted MCP server,
    run and watched with ensemblectl."""
    import subprocess
    folder = tempfile.mkdtemp(prefix="ens-mcp-demo-")
    with open(os.path.join(folder, "todo.txt"), "w") as f:
        f.write("buy milk\n")
    d = Daemon(settings={"mcp-servers": gv_dict({"fs": f"{FILESYSTEM} {folder}"})})
    try:
        wait_ready(d.client(), ["fs"])
        ctl = [os.environ["ENSEMBLECTL"], "--socket-dir", d.socket_dir]
        r = subprocess.run(ctl + ["session", "spawn", '{"session_id":"demo"}'], capture_output=True, text=True,
                           timeout=30 * SCALE)
        assert r.returncode == 0, r
        task = "\n".join(['call naming.validate_name {"name":"Bad Name"}',
                          'call semantic.store_concept {"text":"the cat sat on the mat"}',
                          'call fs.read_text_file {"path":"%s"}' % os.path.join(folder, "todo.txt")])
        r = subprocess.run(ctl + ["session", "exec", "demo", "--tools",
                                  "naming.validate_name,semantic.store_concept,fs.read_text_file", task],
                           capture_output=True, text=True, timeout=60 * SCALE)
        assert r.returncode == 0, r
        lines = r.stdout.splitlines()
        for tool in ("naming.validate_name", "semantic.store_concept", "fs.read_text_file"):
            assert any(x.startswith(f"-> {tool} ") for x in lines), r.stdout
            assert any(x.startswith(f"<- {tool} ") for x in lines), r.stdout
        assert '"valid":false' in r.stdout and "buy milk" in r.stdout, r.stdout
        assert lines[-1].startswith("Tool results: "), r.stdout
        # The transcript, as MCP clients and the console read it.
        status = json.loads(subprocess.run(ctl + ["--json", "session", "status", "demo"], capture_output=True,
                                           text=True, timeout=30 * SCALE).stdout)
        assert status["tasks_total"] == 1 and status["metrics"]["tasks_completed"] == 1, status
        # A tool not in the list is an error told to the model, not a hang.
        r = subprocess.run(ctl + ["session", "exec", "demo", "--tools", "fs.read_text_file",
                                  'call fs.no_such_tool {}'], capture_output=True, text=True, timeout=60 * SCALE)
        assert r.returncode == 0 and "<- fs_no_such_tool ERROR" in r.stdout and "UNKNOWN_TOOL" in r.stdout, r
    finally:
        d.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
