"""agent-manager through the real daemon: a registry of small Python agents
(manager_fixtures/agent.py) started in dependency order, restarted when
killed, given up on after max_restarts, stopped at shutdown; every action
over the native protocol, Centerfire orchestrator-manager.sock and HTTP."""
import json
import os
import signal
import socket
import tempfile
import shutil
import time
import urllib.error
import urllib.request

from enslib import SCALE, Daemon, gv, run_tests

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manager_fixtures", "agent.py")
# agent.py's "crash" mode, without Python's start-up time
CRASH = ('echo "$(date +%s.%N) $ENSEMBLE_AGENT_NAME start $$ $ENSEMBLE_SOCKET" >> "$MGR_TMP/order.log"; '
         'echo "hello from $ENSEMBLE_AGENT_NAME"; echo "$ENSEMBLE_AGENT_NAME says this on stderr" >&2; exit 1')


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout * SCALE
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def entry(name, mode="sleep", tmp=None, **kw):
    e = {"name": name, "command": ["python3", AGENT, mode], "env": {"MGR_TMP": tmp}, "backoff_base_ms": 50}
    e.update(kw)
    return e


def registry(tmp, extra=(), crasher_autostart=False):
    """db (healthy once db.ready exists) <- api <- worker; crasher exits 1 at once."""
    agents = [
        # listed out of order on purpose: the manager orders them
        entry("worker", tmp=tmp, depends_on=["api"]),
        entry("api", tmp=tmp, depends_on=["db"]),
        entry("db", "db", tmp=tmp, health_check=["test", "-f", os.path.join(tmp, "db.ready")],
              health_interval_ms=200, restart="always"),
        # sh, not Python: it must crash within its start grace even on a loaded machine
        dict(entry("crasher", tmp=tmp, restart="on-failure", max_restarts=3, autostart=crasher_autostart,
                   start_grace_ms=2000), command=["sh", "-c", CRASH]),
    ]
    agents += list(extra)
    return {"agents": agents}


class Setup:
    """A temporary folder with a registry and a daemon supervising it."""

    def __init__(self, extra=None, wait_running=("db", "api", "worker")):
        """extra: a function of the folder returning more registry entries."""
        self.tmp = tempfile.mkdtemp(prefix="ens-mgr-")
        self.reg_path = os.path.join(self.tmp, "registry.json")
        with open(self.reg_path, "w") as f:
            json.dump(registry(self.tmp, extra(self.tmp) if extra else ()), f)
        self.d = Daemon(settings={"manager-registry-file": gv(self.reg_path)})
        self.c = self.d.client()
        for name in wait_running:
            self.wait_status(name, "running")

    def ok(self, action, data=None):
        return self.c.ok(action, data, agent="manager", timeout_ms=int(20000 * SCALE))

    def err(self, action, data=None, code=None):
        r = self.c.request(action, data, agent="manager", timeout_ms=int(20000 * SCALE))
        assert r["status"] == "error", r
        if code:
            assert r["error"]["code"] == code, r
        return r["error"]

    def agents(self):
        return {a["name"]: a for a in self.ok("list")["agents"]}

    def wait_status(self, name, status, timeout=10):
        return wait_until(lambda: (lambda a: a if a["status"] == status else None)(self.agents()[name]),
                          timeout, f"{name} {status}")

    def order(self):
        """[(time, name, event, pid)] from order.log."""
        try:
            with open(os.path.join(self.tmp, "order.log")) as f:
                return [(float(p[0]), p[1], p[2], int(p[3])) for p in (l.split() for l in f) if len(p) >= 4]
        except FileNotFoundError:
            return []

    def first(self, name, event="start", after=0.0):
        """When @name first logged @event at or after @after (waiting for it)."""
        return wait_until(lambda: min((t for t, n, e, _ in self.order() if n == name and e == event and t >= after),
                                      default=None), what=f"{name} {event}")

    def log_mark(self):
        return len(self.d.read_log())

    def started(self, mark=0):
        """Agents in the order the manager spawned them, after @mark."""
        return [l.split("agent-manager: ", 1)[1].split(": ", 1)[0] for l in self.d.read_log()[mark:].splitlines()
                if "agent-manager: " in l and ": started (pid " in l]

    def cleanup(self):
        try:
            self.c.close()
        except OSError:
            pass
        self.d.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)


def centerfire(d, action, data, rid="cf"):
    """One request on orchestrator-manager.sock (a fresh connection, half-closed)."""
    path = d.path("orchestrator-manager.sock")

    def accepting():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    wait_until(accepting, what="orchestrator-manager.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20 * SCALE)
    try:
        s.connect(path)
        s.sendall(json.dumps({"id": rid, "interface": "test", "agent": "manager", "action": action,
                              "data": data}).encode())
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    reply = json.loads(buf.decode().splitlines()[0])
    assert reply["id"] == rid, reply
    return reply


def http_request(d, action, data):
    body = json.dumps({"id": "h1", "interface": "http", "agent": "manager", "action": action, "data": data}).encode()
    req = urllib.request.Request(d.http_url() + "/api/request", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20 * SCALE) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): gone as far as running goes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ------------------------------------------------------------------ tests


def test_dependency_order_output_and_list():
    s = Setup()
    try:
        # db is started first, api only once db's health check passed, worker after api
        assert s.first("db") < s.first("db", "ready") <= s.first("api"), s.order()
        assert s.started() == ["db", "api", "worker"], s.d.read_log()
        agents = s.agents()
        assert set(agents) == {"db", "api", "worker", "crasher"}, agents
        assert agents["api"]["depends_on"] == ["db"] and agents["worker"]["depends_on"] == ["api"], agents
        assert agents["db"]["healthy"] is True and "healthy" not in agents["api"], agents
        assert agents["crasher"]["status"] == "stopped" and "pid" not in agents["crasher"], agents
        for name in ("db", "api", "worker"):
            assert agents[name]["restarts"] == 0 and isinstance(agents[name]["pid"], int), agents
        # environment: ENSEMBLE_SOCKET is the native socket, ENSEMBLE_AGENT_NAME its name
        starts = [l for l in open(os.path.join(s.tmp, "order.log")).read().splitlines() if " start " in l]
        assert all(l.split()[4] == s.d.path("ensemble.sock") for l in starts), starts
        # output, stdout and stderr, line by line in the daemon log with the agent's name
        wait_until(lambda: "agent-manager: worker: worker says this on stderr" in s.d.read_log(), what="stderr line")
        log = s.d.read_log()
        for name in ("db", "api", "worker"):
            assert f"agent-manager: {name}: hello from {name}\n" in log, log
        # status details
        st = s.ok("status", {"agent_name": "db"})
        assert st["name"] == "db" and st["status"] == "running" and st["pid"] == agents["db"]["pid"], st
        assert st["started_at"].endswith("Z") and st["last_exit"] is None, st
        assert st["health"]["ok"] is True and st["health"]["checked_at"].endswith("Z"), st
        assert st["dependents"] == ["api"] and st["restart"] == "always", st
    finally:
        s.cleanup()


def test_killed_agent_is_restarted():
    s = Setup()
    try:
        old = s.agents()["api"]["pid"]
        worker_pid = s.agents()["worker"]["pid"]
        os.kill(old, signal.SIGKILL)
        a = wait_until(lambda: (lambda x: x if x["status"] == "running" and x.get("pid") not in (None, old)
                                else None)(s.agents()["api"]), what="api restarted")
        assert a["restarts"] == 1, a
        st = s.ok("status", {"agent_name": "api"})
        assert st["last_exit"]["signal"] == signal.SIGKILL and st["consecutive_failures"] == 1, st
        assert pid_gone(old)
        # its dependent was left alone
        assert s.agents()["worker"]["pid"] == worker_pid
        assert f"agent-manager: api: killed by signal {int(signal.SIGKILL)}" in s.d.read_log()
    finally:
        s.cleanup()


def test_crasher_gives_up_with_event():
    s = Setup(wait_running=())
    try:
        sub = s.d.client()
        sub.ok("subscribe", {"topics": ["ensemble.manager.*"]})
        t0 = time.time()
        # start answers once the agent is running or has failed: here, failed
        err = s.err("start", {"agent_name": "crasher"}, "START_FAILED")
        assert err["details"]["agent_name"] == "crasher" and err["details"]["status"] == "failed", err
        assert "gave up after 3 restarts" in err["message"], err
        ev = sub.next_event()
        assert ev["event"] == "ensemble.manager.gave_up", ev
        assert ev["data"]["name"] == "crasher" and ev["data"]["restarts"] == 3, ev
        assert ev["data"]["last_exit"]["code"] == 1, ev
        a = s.agents()["crasher"]
        assert a["status"] == "failed" and a["restarts"] == 3, a
        runs = [p for t, n, e, p in s.order() if n == "crasher" and e == "start" and t >= t0 - 0.01]
        assert len(runs) == 4, runs  # the first run and 3 restarts
        # backoff 50, 100, 200 ms between them
        times = sorted(t for t, n, e, _ in s.order() if n == "crasher" and e == "start")
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195, gaps
        assert "agent-manager: crasher: gave up after 3 restarts" in s.d.read_log()
        sub.close()
    finally:
        s.cleanup()


def test_stop_start_restart_across_dialects():
    s = Setup()
    try:
        pids = {n: a["pid"] for n, a in s.agents().items() if "pid" in a}
        # Centerfire: stop is refused while dependents run, naming them
        r = centerfire(s.d, "stop", {"agent_name": "db"}, "cf-1")
        assert r["status"] == "error" and r["error"]["code"] == "DEPENDENTS_RUNNING", r
        assert sorted(r["error"]["details"]["dependents"]) == ["api", "worker"], r
        assert s.agents()["db"]["pid"] == pids["db"]
        # native: force stops the dependents first, then db
        t = time.time()
        st = s.ok("stop", {"agent_name": "db", "force": True})
        assert st["status"] == "stopped" and st["stopped"] == ["worker", "api", "db"], st
        assert time.time() - t < 2 * SCALE, "SIGTERM was enough"
        agents = s.agents()
        assert all(agents[n]["status"] == "stopped" and "pid" not in agents[n] for n in ("db", "api", "worker"))
        assert all(pid_gone(pids[n]) for n in ("db", "api", "worker")), pids
        # HTTP /api/request: start worker starts db, then api, then worker
        t, mark = time.time(), s.log_mark()
        r = http_request(s.d, "start", {"agent_name": "worker"})
        assert r["status"] == "success" and r["data"]["status"] == "running", r
        assert s.first("db", "ready", t) <= s.first("api", "start", t), s.order()
        assert s.started(mark) == ["db", "api", "worker"], s.d.read_log()[mark:]
        assert all(a["status"] == "running" for n, a in s.agents().items() if n != "crasher")
        # Centerfire: start of a running agent answers at once; plain stop of a leaf
        r = centerfire(s.d, "start", {"agent_name": "api"}, "cf-2")
        assert r["status"] == "success" and r["data"]["status"] == "running", r
        r = centerfire(s.d, "stop", {"agent_name": "worker"}, "cf-3")
        assert r["status"] == "success" and r["data"]["stopped"] == ["worker"], r
        # restart: a new process, dependents untouched
        api = s.agents()["api"]["pid"]
        r = centerfire(s.d, "restart", {"agent_name": "api"}, "cf-4")
        assert r["status"] == "success" and r["data"]["status"] == "running" and r["data"]["pid"] != api, r
        assert pid_gone(api)
        assert r["data"]["restarts"] == 0, r  # restarts count automatic ones only
        st = s.ok("restart", {"agent_name": "worker"})  # restart of a stopped agent starts it
        assert st["status"] == "running", st
        # list and status through Centerfire
        r = centerfire(s.d, "list", {}, "cf-5")
        assert {a["name"] for a in r["data"]["agents"]} == {"db", "api", "worker", "crasher"}, r
        r = centerfire(s.d, "status", {"agent_name": "nope"}, "cf-6")
        assert r["status"] == "error" and r["error"]["code"] == "NOT_FOUND", r
    finally:
        s.cleanup()


def test_dependencies_health_and_restart_with_dependencies():
    def extra(tmp):
        return [entry("cache_user", tmp=tmp, depends_on=["db"], autostart=False, max_restarts=1,
                      services=[{"name": "cache", "check": ["test", "-f", os.path.join(tmp, "cache.up")]}])]

    s = Setup(extra)
    try:
        # check_dependencies: an agent and a failing service (native), then the service comes up (Centerfire)
        r = s.ok("check_dependencies", {"agent_name": "cache_user"})
        assert r["agent_name"] == "cache_user" and r["satisfied"] is False, r
        deps = {d["name"]: d for d in r["dependencies"]}
        assert deps["db"]["kind"] == "agent" and deps["db"]["ok"] is True and deps["db"]["status"] == "running", r
        assert deps["cache"]["kind"] == "service" and deps["cache"]["ok"] is False, r
        assert deps["cache"]["status"] == "unhealthy", r
        # starting it while the service is down fails (its policy restarts it, then gives up)
        err = s.err("start", {"agent_name": "cache_user"}, "START_FAILED")
        assert "service \"cache\"" in err["message"], err
        open(os.path.join(s.tmp, "cache.up"), "w").close()
        r = centerfire(s.d, "check_dependencies", {"agent_name": "cache_user"}, "cd-2")
        assert r["status"] == "success" and r["data"]["satisfied"] is True, r
        assert all(d["ok"] for d in r["data"]["dependencies"]), r
        r = s.ok("check_dependencies", {"agent_name": "db"})
        assert r == {"agent_name": "db", "satisfied": True, "dependencies": []}, r

        # validate_service_health: db is healthy; what depends on it, transitively
        r = s.ok("validate_service_health", {"agent_name": "db"})
        assert r["agent_name"] == "db" and r["healthy"] is True, r
        assert r["affected"] == ["api", "cache_user", "worker"], r  # in dependency order
        os.unlink(os.path.join(s.tmp, "db.ready"))
        r = centerfire(s.d, "validate_service_health", {"agent_name": "db"}, "vh-1")
        assert r["status"] == "success" and r["data"]["healthy"] is False, r
        assert r["data"]["health"]["ok"] is False, r
        assert s.agents()["db"]["healthy"] is False
        r = s.ok("validate_service_health", {"agent_name": "worker"})
        assert r["healthy"] is True and r["affected"] == [], r

        # restart_with_dependencies with dependency_check: api's dependency (db) is unhealthy
        err = s.err("restart_with_dependencies", {"agent_name": "api"}, "DEPENDENCY_FAILED")
        assert err["details"]["dependencies"][0]["name"] == "db", err
        assert "db" in err["message"], err
        open(os.path.join(s.tmp, "db.ready"), "w").close()
        s.ok("validate_service_health", {"agent_name": "db"})  # refresh db's health now
        # not forced: only those not running/healthy (worker, stopped by hand first)
        s.ok("stop", {"agent_name": "worker"})
        pids = {n: a.get("pid") for n, a in s.agents().items()}
        r = s.ok("restart_with_dependencies", {"agent_name": "api"})
        assert r["agent_name"] == "api" and r["restarted"] == ["worker"] and r["skipped"] == ["api"], r
        agents = s.agents()
        assert agents["api"]["pid"] == pids["api"] and agents["worker"]["status"] == "running", agents
        # forced, through HTTP: db and everything depending on it, dependents after it
        t, mark = time.time(), s.log_mark()
        r = http_request(s.d, "restart_with_dependencies", {"agent_name": "db", "force_restart": True})
        assert r["status"] == "success", r
        # (cache_user had given up: not healthy, so restarted as well, its service being up now)
        assert r["data"]["restarted"] == ["db", "api", "cache_user", "worker"], r
        assert r["data"]["skipped"] == [], r
        agents = s.agents()
        for n in ("db", "api", "worker"):
            assert agents[n]["status"] == "running" and agents[n]["pid"] != pids[n], (n, agents)
        assert s.first("db", "ready", t) <= s.first("api", "start", t), s.order()
        assert s.started(mark) == ["db", "api", "cache_user", "worker"], s.d.read_log()[mark:]
        # dependency_check false skips the check
        r = s.ok("restart_with_dependencies", {"agent_name": "worker", "dependency_check": False,
                                                "force_restart": True})
        assert r["restarted"] == ["worker"], r
    finally:
        s.cleanup()


def test_dependency_failed():
    s = Setup(lambda tmp: [entry("needs_crasher", tmp=tmp, depends_on=["crasher"], autostart=False)],
              wait_running=())
    try:
        err = s.err("start", {"agent_name": "needs_crasher"}, "DEPENDENCY_FAILED")
        assert err["details"]["dependency"] == "crasher" and err["details"]["agent_name"] == "needs_crasher", err
        assert "crasher" in err["message"], err
        agents = s.agents()
        assert agents["crasher"]["status"] == "failed" and agents["needs_crasher"]["status"] == "failed", agents
        assert not any(n == "needs_crasher" for _, n, _, _ in s.order()), "never started"
        r = s.ok("check_dependencies", {"agent_name": "needs_crasher"})
        assert r["satisfied"] is False and r["dependencies"][0]["status"] == "failed", r
    finally:
        s.cleanup()


def test_bad_parameters():
    s = Setup(wait_running=())
    try:
        for action in ("status", "start", "stop", "restart", "check_dependencies", "validate_service_health",
                       "restart_with_dependencies"):
            e = s.err(action, {}, "INVALID_PARAMETERS")
            assert e["details"]["field"] == "agent_name" and e["details"]["expected"], e
            e = s.err(action, {"agent_name": 7}, "INVALID_PARAMETERS")
            assert e["details"]["field"] == "agent_name", e
            e = s.err(action, {"agent_name": "ghost"}, "NOT_FOUND")
            assert e["details"]["agent_name"] == "ghost" and "db" in e["details"]["known"], e
        e = s.err("stop", {"agent_name": "db", "force": "yes"}, "INVALID_PARAMETERS")
        assert e["details"]["field"] == "force", e
        e = s.err("restart_with_dependencies", {"agent_name": "db", "dependency_check": 1}, "INVALID_PARAMETERS")
        assert e["details"]["field"] == "dependency_check", e
        e = s.err("restart_with_dependencies", {"agent_name": "db", "force_restart": "x"}, "INVALID_PARAMETERS")
        assert e["details"]["field"] == "force_restart", e
        e = s.err("list", [1, 2], "INVALID_PARAMETERS")
        assert e["details"]["field"] == "data", e
        s.err("explode", {}, "UNKNOWN_ACTION")
        # and through Centerfire
        r = centerfire(s.d, "start", {"agent": "db"}, "bp-1")
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "agent_name", r
    finally:
        s.cleanup()


def test_shutdown_stops_every_process():
    s = Setup(lambda tmp: [entry("family", "family", tmp=tmp)], wait_running=("db", "api", "worker", "family"))
    try:
        pids = [a["pid"] for a in s.agents().values() if "pid" in a]
        assert len(pids) == 4, pids
        # what an agent started itself is in its process group: stopped too
        child = wait_until(lambda: [int(l.split()[4]) for l in open(os.path.join(s.tmp, "order.log"))
                                    if " family child " in l], what="family's child")[0]
        pids.append(child)
        t = time.time()
        assert s.d.stop() == 0
        assert time.time() - t < 5 * SCALE
        wait_until(lambda: all(pid_gone(p) for p in pids), 3, "agents gone")
        assert "agent-manager: worker: stopping" in s.d.read_log()
    finally:
        s.cleanup()


def test_sigterm_ignored_then_sigkill():
    s = Setup(lambda tmp: [entry("stubborn", "stubborn", tmp=tmp, start_grace_ms=0)], wait_running=("stubborn",))
    try:
        wait_until(lambda: any(n == "stubborn" for _, n, _, _ in s.order()), what="stubborn running its code")
        pid = s.agents()["stubborn"]["pid"]
        t = time.time()
        st = s.ok("stop", {"agent_name": "stubborn"})  # answered once it is gone
        took = time.time() - t
        assert st["status"] == "stopped" and 1.9 < took < 4 * SCALE, (st, took)
        assert st["last_exit"]["signal"] == signal.SIGKILL, st
        assert pid_gone(pid)
        assert "agent-manager: stubborn: still running 2000 ms after SIGTERM, killing it" in s.d.read_log()
        # at shutdown too: SIGTERM to all, about 2 s, then SIGKILL
        s.ok("start", {"agent_name": "stubborn"})
        wait_until(lambda: len([1 for _, n, e, _ in s.order() if n == "stubborn" and e == "start"]) >= 2,
                   what="stubborn started again (its SIGTERM handler set)")
        pids = [a["pid"] for a in s.agents().values() if "pid" in a]
        t = time.time()
        assert s.d.stop() == 0
        assert 1.9 < time.time() - t < 5 * SCALE, time.time() - t
        wait_until(lambda: all(pid_gone(p) for p in pids), 3, "agents gone")
        assert "agent-manager: stubborn: still running after 2000 ms, killing it" in s.d.read_log()
    finally:
        s.cleanup()


def test_invalid_registry_is_refused_and_daemon_serves():
    tmp = tempfile.mkdtemp(prefix="ens-mgr-")
    try:
        cases = [
            ({"agents": [{"name": "a", "command": ["true"], "depends_on": ["b"]},
                         {"name": "b", "command": ["true"], "depends_on": ["a"]}]},
             'agents[0] ("a"): "depends_on": dependency cycle "a" -> "b" -> "a"'),
            ({"agents": [{"name": "a", "command": ["true"], "depends_on": ["nobody"]}]},
             'agents[0] ("a"): "depends_on": unknown agent "nobody"'),
            ({"agents": [{"name": "a", "command": ["true"]}, {"name": "b", "command": "true"}]},
             'agents[1] ("b"): "command" must be an array of strings'),
            ({"agents": [{"name": "a", "command": ["true"], "max_restarts": "5"}]},
             'agents[0] ("a"): "max_restarts" must be an integer'),
            ({"agents": [{"name": "a", "command": ["true"], "restart": "sometimes"}]},
             'agents[0] ("a"): "restart" must be'),
            ("{not json", "not JSON"),
        ]
        for i, (content, message) in enumerate(cases):
            path = os.path.join(tmp, f"reg{i}.json")
            with open(path, "w") as f:
                f.write(content if isinstance(content, str) else json.dumps(content))
            d = Daemon(settings={"manager-registry-file": gv(path)})
            try:
                log = d.read_log()
                line = next((l for l in log.splitlines() if "plugin refused" in l and "agent-manager" in l), None)
                assert line and "init failed: registry " + path in line and message in line, (message, log)
                c = d.client()
                assert c.ok("ping")["pong"] is True
                r = c.request("list", agent="manager")
                assert r["status"] == "error" and r["error"]["code"] == "AGENT_NOT_FOUND", r
                assert c.ok("echo", {"still": "serving"}, agent="echo") == {"still": "serving"}
                c.close()
            finally:
                d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_no_registry_supervises_nothing():
    d = Daemon()
    try:
        c = d.client()
        assert c.ok("list", agent="manager") == {"agents": []}
        r = c.request("status", {"agent_name": "x"}, agent="manager")
        assert r["error"]["code"] == "NOT_FOUND", r
    finally:
        d.cleanup()


run_tests(globals())
