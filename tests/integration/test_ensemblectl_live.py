"""ensemblectl for people and for scripts: numbers rounded for people and
whole under --json, --json complete --stream, and the live commands top,
chat and pipe against a running daemon, with their bad input."""

import json
import os
import subprocess
import threading
import time

from enslib import Daemon, ENSEMBLECTL, SCALE, gv, run_tests


def ctl(d, *args, stdin=None, timeout=30):
    env = dict(os.environ)
    env.pop("ENSEMBLE_SOCKET", None)
    return subprocess.run([ENSEMBLECTL, "--socket-dir", d.socket_dir] + list(args), capture_output=True, text=True,
                          timeout=timeout * SCALE, env=env, input=stdin if stdin is not None else "")


def ok(d, *args, **kw):
    p = ctl(d, *args, **kw)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def error(p, code, status=1):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert lines and lines[-1].startswith(f"ensemblectl: {code}: "), p.stderr
    return lines[-1]


def test_numbers_rounded_for_people_whole_under_json():
    d = Daemon(settings={"daily-budget": gv(7.123456789)})
    try:
        out = ok(d, "budget")
        line = next(l for l in out.splitlines() if l.startswith("daily_budget"))
        assert line.split()[1] == "7.12", out
        assert json.loads(ok(d, "--json", "budget"))["daily_budget"] == 7.123456789
        # A route's confidence and cost: three significant digits at most.
        out = ok(d, "route", '{"token_count":1234,"task_type":"coding"}')
        raw = json.loads(ok(d, "--json", "route", '{"token_count":1234,"task_type":"coding"}'))
        conf = next(l for l in out.splitlines() if l.startswith("confidence")).split()[1]
        assert abs(float(conf) - raw["confidence"]) < 0.01 and len(conf.split(".")[-1]) <= 3, (conf, raw)
        # A table: providers' observed latency after a completion.
        ok(d, "complete", "warm up")
        table = ok(d, "providers").splitlines()
        cols = table[0].split()
        row = dict(zip(cols, table[1].split()))
        full = json.loads(ok(d, "--json", "providers"))["providers"][0]
        assert abs(float(row["latency_ms"]) - full["latency_ms"]) <= max(0.01, full["latency_ms"] * 0.01), (row, full)
        assert len(row["latency_ms"].replace(".", "").lstrip("0")) <= 4, row
    finally:
        d.cleanup()


def test_json_stream_prints_one_object_per_chunk():
    d = Daemon()
    try:
        out = ok(d, "--json", "complete", "--stream", "stream these words one by one please")
        lines = out.splitlines()
        objs = [json.loads(l) for l in lines]
        assert all(isinstance(o, dict) for o in objs), lines
        chunks, result = objs[:-1], objs[-1]
        assert len(chunks) >= 2 and all("chunk" in c for c in chunks), objs
        assert "response" in result and "provider" in result, result
        assert "".join(c["chunk"] for c in chunks) == result["response"], (chunks, result)
        # Without --stream, one object: the result.
        out = ok(d, "--json", "complete", "one object")
        assert len(out.splitlines()) == 1 and "response" in json.loads(out), out
    finally:
        d.cleanup()


def test_top_once_and_json_views():
    d = Daemon()
    try:
        out = ok(d, "top", "--once", "--interval", "100")
        assert out.startswith("ensembled ") and "healthy" in out, out
        assert "Connections " in out and "Per second" in out and "Completions" in out, out
        assert "BACKEND" in out and "local" in out, out
        assert "\033[" not in out, "no screen control codes when stdout is not a terminal"

        # Traffic between two samples shows up as a rate.
        stop = threading.Event()

        def traffic():
            c = d.client()
            while not stop.is_set():
                c.ok("ping")
            c.close()

        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        try:
            out = ok(d, "--json", "top", "--iterations", "3", "--interval", "150")
        finally:
            stop.set()
            t.join(10 * SCALE)
        views = [json.loads(l) for l in out.splitlines()]
        assert len(views) == 3, out
        for v in views:
            assert v["status"] == "healthy" and 0.1 < v["interval_s"] < 5 * SCALE, v
            assert set(v["rates_per_s"]) >= {"requests", "events", "deliveries", "errors", "completions"}, v
            assert v["providers"] and v["providers"][0]["name"] == "local", v
        assert max(v["rates_per_s"]["requests"] for v in views) > 5, views
        assert views[0]["connections"] >= 2, views[0]  # top itself and the traffic
    finally:
        d.cleanup()


def test_top_bad_input():
    d = Daemon()
    try:
        for args in (["top", "--interval", "5"], ["top", "--interval", "soon"], ["top", "--iterations", "-1"],
                     ["top", "extra"], ["--once", "health"], ["--interval", "100", "ping"]):
            p = ctl(d, *args)
            error(p, "USAGE", status=2)
            assert p.stdout == "", (args, p.stdout)
        assert "only valid with top" in ctl(d, "--once", "health").stderr
        # No daemon: one error line.
        p = subprocess.run([ENSEMBLECTL, "--socket", d.path("nope.sock"), "top", "--once"], capture_output=True,
                           text=True, timeout=10 * SCALE)
        error(p, "NOT_RUNNING")
        # A daemon that goes away while top runs: an error, not a hang.
        proc = subprocess.Popen([ENSEMBLECTL, "--socket-dir", d.socket_dir, "top", "--interval", "100"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        d.stop()
        _, err = proc.communicate(timeout=10 * SCALE)
        assert proc.returncode == 1 and err.splitlines()[-1].startswith("ensemblectl: "), err
    finally:
        d.cleanup()


def test_chat_streams_answers_from_piped_stdin():
    d = Daemon()
    try:
        out = ok(d, "chat", stdin="first question\n\nsecond question\n")
        assert "first question" in out and "second question" in out, out
        assert "user turn 2" in out, f"the conversation is kept: {out}"
        assert out.index("first question") < out.index("second question"), out
        sessions = json.loads(ok(d, "--json", "sessions"))["sessions"]
        assert len(sessions) == 1 and sessions[0]["session_type"] == "chat", sessions
        sid = sessions[0]["session_id"]
        # Going on with the same session; --json: every event as a line.
        out = ok(d, "--json", "chat", sid, stdin="third question\n")
        events = [json.loads(l) for l in out.splitlines()]
        types = [e.get("type") for e in events]
        assert "stream_chunk" in types and types[-1] == "task_completed", types
        assert "user turn 3" in "".join(e.get("chunk", "") for e in events), events
        # Nothing to say: nothing sent, exit 0.
        assert ok(d, "chat", sid, stdin="") == ""
    finally:
        d.cleanup()


def test_chat_bad_input():
    d = Daemon()
    try:
        p = ctl(d, "chat", "no-such-session", stdin="hello\n")
        line = error(p, "SESSION_NOT_FOUND")
        assert "no-such-session" in line, line
        p = ctl(d, "chat", "a", "b")
        error(p, "USAGE", status=2)
        p = ctl(d, "--stream", "chat", stdin="x\n")
        error(p, "USAGE", status=2)
        # A model that no backend serves: that turn fails, the chat goes on.
        p = ctl(d, "chat", "--provider", "no-such-backend", stdin="hi\n")
        assert p.returncode == 1 and p.stderr.strip(), (p.stdout, p.stderr)
        assert json.loads(ok(d, "--json", "ping")) == {"pong": True}
    finally:
        d.cleanup()


def test_pipe_chains_agents_and_models():
    d = Daemon()
    try:
        # Text to an agent, its answer to a model (the offline one echoes it).
        out = ok(d, "pipe", "echo:echo", "@", stdin="hello pipeline\n")
        assert "hello pipeline" in out and "local provider" in out, out
        # A JSON object goes as itself; an object answer is printed as JSON.
        out = ok(d, "pipe", "naming:validate_name", stdin='{"name":"Bad Name"}\n')
        answer = json.loads(out)
        assert answer["valid"] is False and answer["name"] == "Bad Name", answer
        # Two agent stages: the first one's object answer is the second one's data.
        out = ok(d, "--json", "pipe", "echo:echo", "echo:echo", stdin="twice\n")
        assert json.loads(out) == {"text": "twice"}, out
        # An agent with one action needs no ACTION.
        c = d.client()
        c.ok("agents.register", {"name": "upper", "actions": ["shout"]})
        result = {}

        def serve():
            req = c.recv()
            result["req"] = req
            c.send({"reply_to": req["id"], "status": "success", "data": {"text": req["data"]["text"].upper()}})

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        out = ok(d, "pipe", "upper", stdin="quiet words\n")
        t.join(10 * SCALE)
        assert json.loads(out) == {"text": "QUIET WORDS"}, out
        assert result["req"]["action"] == "shout" and result["req"]["data"] == {"text": "quiet words"}, result
        c.close()
    finally:
        d.cleanup()


def test_pipe_bad_input():
    d = Daemon()
    try:
        for stages in (["echo:"], [":echo"], ["a:b:c"], [""]):
            p = ctl(d, "pipe", *stages, stdin="x\n")
            line = error(p, "USAGE", status=2)
            assert "invalid stage" in line, line
        error(ctl(d, "pipe", "echo:echo", stdin=""), "USAGE", status=2)
        error(ctl(d, "pipe"), "USAGE", status=2)
        line = error(ctl(d, "pipe", "echo:echo", "ghost:run", stdin="x\n"), "AGENT_NOT_FOUND")
        assert "stage 2 (ghost:run)" in line, line
        line = error(ctl(d, "pipe", "ghost", stdin="x\n"), "AGENT_NOT_FOUND")
        assert "stage 1 (ghost)" in line, line
        line = error(ctl(d, "pipe", "echo", stdin="x\n"), "USAGE", status=2)
        assert "several actions" in line and "echo:ACTION" in line, line
        line = error(ctl(d, "pipe", "echo:fail", stdin="x\n"), "ECHO_FAILED")  # the agent's own code
        assert "stage 1" in line, line
        assert json.loads(ok(d, "--json", "ping")) == {"pong": True}
    finally:
        d.cleanup()


run_tests(globals())
