"""Sessions run the tool loop: a task names its tools (bus agents' actions),
the model's tool calls go to the agents as requests, all of a turn at once,
their answers go back to the model until it answers without a tool call;
every step reaches the session's watchers (tool_call_start, tool_call_result
with arguments, answer and timing, turn_start).  A tool that fails, times
out or does not exist is an error message to the model; a model that never
stops calling tools is stopped by max_steps; bad parameters are refused.

The offline provider calls tools deterministically ("call TOOL {args}" and
"loop TOOL {args}" lines of the task); OpenAI-compatible and Anthropic
backends are fake upstreams on loopback that call the first tool they are
given, then answer with what the tool said."""
import json
import os
import threading

from enslib import Daemon, gv, run_tests
from fake_anthropic import FakeAnthropic
from fake_openai import FakeOpenAI


# say's declaration: what the model is told of helper.say when the task names
# the tool only by "AGENT.ACTION".
SAY = {"name": "say", "description": "Says the text back",
       "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}}


class Helper:
    """An external agent "helper" on its own connection, served by a thread:
    say answers {said: text} once boom was asked too (so the two must be
    asked at once), boom fails, slow never answers."""

    def __init__(self, d, name="helper"):
        self.c = d.client()
        self.c.ok("agents.register", {"name": name, "actions": [SAY, "boom", "slow"]})
        self.asked = []
        self.held = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            while True:
                q = self.c.recv()
                if "action" not in q or "status" in q or "event" in q:
                    continue
                self.asked.append((q["action"], q.get("data")))
                if q["action"] == "say":
                    self.held.append(q)
                elif q["action"] == "boom":
                    self.c.send({"reply_to": q["id"], "status": "error",
                                 "error": {"code": "BOOM", "message": "the helper blew up"}})
                if self.held and ("boom" in [a for a, _ in self.asked] or len(self.held) > 1 or
                                  self.only_say):
                    for h in self.held:
                        self.c.send({"reply_to": h["id"], "status": "success",
                                     "data": {"said": (h.get("data") or {}).get("text")}})
                    self.held = []
        except (EOFError, OSError, ValueError):
            pass

    only_say = False


def session_events(watcher, until_types, limit=400):
    seen = []
    for _ in range(limit):
        ev = watcher.next_event()["data"]
        seen.append(ev)
        if ev["type"] in until_types:
            return seen
    raise AssertionError(f"no {until_types} in {seen}")


def test_offline_parallel_calls_errors_and_the_answer():
    d = Daemon()
    try:
        helper = Helper(d)
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.s1.*"]})
        c.ok("sessions.spawn", {"session_id": "s1"})
        task = "\n".join([
            "Use the tools.",
            'call helper.say {"text": "hi"}',
            "call helper.boom {}",
            "call helper.slow",
            "call nothere.tool {}",
            "call helper.say not json",
        ])
        ack = c.ok("sessions.execute", {"session_id": "s1", "task": task,
                                        "tools": ["helper.say", "helper.boom", {"agent": "helper", "action": "slow"}],
                                        "tool_timeout_ms": 400})
        assert ack["status"] == "executing", ack
        evs = session_events(watcher, ("task_completed", "task_failed"))
        kinds = [e["type"] for e in evs]
        assert kinds[-1] == "task_completed", evs
        starts = [e["data"] for e in evs if e["type"] == "tool_call_start"]
        results = [e["data"] for e in evs if e["type"] == "tool_call_result"]
        assert [s["id"] for s in starts] == [f"call_1_{i}" for i in range(5)], starts
        assert starts[0]["tool"] == "helper.say" and starts[0]["name"] == "helper_say", starts[0]
        assert starts[0]["arguments"] == {"text": "hi"} and starts[0]["step"] == 1, starts[0]
        # every start comes before the first result: the calls ran at once
        assert max(kinds.index("tool_call_start", i) for i in range(len(kinds)) if kinds[i] == "tool_call_start") < \
            kinds.index("tool_call_result"), kinds
        by_id = {r["id"]: r for r in results}
        assert by_id["call_1_0"]["result"] == {"said": "hi"} and by_id["call_1_0"]["is_error"] is False, by_id
        assert isinstance(by_id["call_1_0"]["duration_ms"], int), by_id["call_1_0"]
        assert by_id["call_1_1"]["error"]["code"] == "BOOM" and by_id["call_1_1"]["is_error"] is True, by_id
        assert by_id["call_1_2"]["error"]["code"] == "TIMEOUT", by_id["call_1_2"]
        assert by_id["call_1_3"]["error"]["code"] == "UNKNOWN_TOOL" and by_id["call_1_3"]["tool"] is None, by_id
        assert by_id["call_1_4"]["error"]["code"] == "INVALID_PARAMETERS", by_id["call_1_4"]
        assert by_id["call_1_4"]["arguments"] == "not json", by_id["call_1_4"]
        assert sorted(a for a, _ in helper.asked) == ["boom", "say", "slow"], helper.asked  # the bad ones never left
        turn = [e["data"] for e in evs if e["type"] == "turn_start"]
        assert turn == [{"step": 1, "tool_calls": 5}], turn
        done = evs[-1]["result"]
        assert done["steps"] == 1 and done["tool_calls"] == 5, done
        text = done["response"]
        assert text.startswith("Tool results: helper_say: {\"said\":\"hi\"}; helper_boom: {\"error\":"), text
        assert "nothere_tool: {\"error\":{\"code\":\"UNKNOWN_TOOL\"" in text, text
        # the session is whole: its history has the task and the answer
        st = c.ok("sessions.status", {"session_id": "s1"})
        assert st["status"] == "idle" and st["history"][-1]["content"] == text, st
    finally:
        d.cleanup()


def test_never_ending_loop_stops_at_its_step_limit():
    d = Daemon()
    try:
        helper = Helper(d)
        helper.only_say = True
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        c.ok("sessions.spawn", {"session_id": "forever"})
        c.ok("sessions.spawn", {"session_id": "other"})
        c.ok("sessions.execute", {"session_id": "forever", "task": 'loop helper.say {"text": "again"}',
                                  "tools": ["helper.say"], "max_steps": 3})
        evs = session_events(watcher, ("task_completed", "task_failed"))
        assert evs[-1]["type"] == "task_failed" and evs[-1]["code"] == "TOOL_STEP_LIMIT", evs[-1]
        assert "step limit" in evs[-1]["error"], evs[-1]
        steps = [e["data"]["step"] for e in evs if e["type"] == "tool_call_result"]
        assert steps == [1, 2, 3], steps
        assert [a for a, _ in helper.asked] == ["say"] * 3, helper.asked
        # the daemon and other sessions carry on
        c.ok("sessions.execute", {"session_id": "other", "task": "plain question"})
        evs = session_events(watcher, ("task_completed", "task_failed"))
        assert evs[-1]["type"] == "task_completed" and evs[-1]["sessionId"] == "other", evs[-1]
        assert c.ok("sessions.status", {"session_id": "forever"})["status"] == "failed"
    finally:
        d.cleanup()


def test_stopping_a_session_while_its_tools_run():
    d = Daemon()
    try:
        Helper(d)
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        c.ok("sessions.spawn", {"session_id": "halt"})
        c.ok("sessions.execute", {"session_id": "halt", "task": "call helper.slow {}", "tools": ["helper.slow"]})
        session_events(watcher, ("tool_call_start",))
        c.ok("sessions.stop", {"session_id": "halt"})
        evs = session_events(watcher, ("task_failed", "task_completed"))
        assert evs[-1]["type"] == "task_failed" and evs[-1]["code"] == "CANCELLED", evs[-1]
        assert c.ok("ping") is not None
    finally:
        d.cleanup()


def test_bad_tool_parameters():
    d = Daemon()
    try:
        c = d.client()
        c.ok("sessions.spawn", {"session_id": "b"})
        for data, field in (({"tools": "helper.say"}, "tools"), ({"tools": []}, "tools"),
                            ({"tools": ["nodot"]}, "tools[0]"), ({"tools": ["a.b", 5]}, "tools[1]"),
                            ({"tools": [{"agent": "a"}]}, "tools[0]"),
                            ({"tools": [{"agent": "a b", "action": "x"}]}, "tools[0]"),
                            ({"tools": [{"agent": "a", "action": "x", "input_schema": "no"}]}, "tools[0]"),
                            ({"tools": ["a.b"], "max_steps": 0}, "max_steps"),
                            ({"tools": ["a.b"], "max_steps": 101}, "max_steps"),
                            ({"tools": ["a.b"], "max_steps": 2.5}, "max_steps"),
                            ({"tools": ["a.b"], "tool_timeout_ms": 0}, "tool_timeout_ms")):
            rep = c.request("sessions.execute", dict(session_id="b", task="t", **data))
            assert rep["status"] == "error" and rep["error"]["code"] == "INVALID_PARAMETERS", (data, rep)
            assert rep["error"]["details"]["field"] == field, (data, rep)
        assert c.ok("sessions.status", {"session_id": "b"})["tasks_total"] == 0
    finally:
        d.cleanup()


KEY_ENV = "ENS_TEST_TOOL_LOOP_KEY"


def backend_group(plugin, url, **extra):
    group = {"plugin": gv(plugin), "base-url": gv(url), "models": gv(["agent-tools"]),
             "quality": gv(0.9), "latency-ms": gv(200), "max-retries": gv(0), "timeout-ms": gv(10000),
             "api-key-env": gv(KEY_ENV)}
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def upstream_loop(d, backend, watcher, c):
    helper = Helper(d)
    helper.only_say = True
    c.ok("sessions.spawn", {"session_id": backend, "provider": backend, "model": "agent-tools"})
    c.ok("sessions.execute", {"session_id": backend, "task": "say something", "tools": ["helper.say"]})
    evs = session_events(watcher, ("task_completed", "task_failed"))
    assert evs[-1]["type"] == "task_completed", evs[-1]
    results = [e["data"] for e in evs if e["type"] == "tool_call_result"]
    assert len(results) == 1 and results[0]["result"] == {"said": "from the model"}, results
    assert results[0]["tool"] == "helper.say", results
    assert evs[-1]["result"]["steps"] == 1 and evs[-1]["result"]["tool_calls"] == 1, evs[-1]
    assert "said" in evs[-1]["result"]["response"], evs[-1]
    return helper


def test_openai_backend_runs_the_loop():
    fake = FakeOpenAI()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["oa"])}, groups={"providers/oa": backend_group("provider-openai", fake.url)})
    try:
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        upstream_loop(d, "oa", watcher, c)
        second = fake.requests[-1]["body"]
        tools = second["tools"]
        assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "helper_say", tools
        assert tools[0]["function"]["description"] == SAY["description"], tools
        assert tools[0]["function"]["parameters"] == SAY["input_schema"], tools
        asked, answered = second["messages"][-2], second["messages"][-1]
        assert asked["role"] == "assistant" and asked["tool_calls"][0]["function"]["name"] == "helper_say", asked
        assert json.loads(asked["tool_calls"][0]["function"]["arguments"]) == {"text": "from the model"}, asked
        assert answered == {"role": "tool", "tool_call_id": asked["tool_calls"][0]["id"],
                            "content": "{\"said\":\"from the model\"}"}, answered
    finally:
        d.cleanup()
        fake.close()


def test_anthropic_backend_runs_the_loop():
    fake = FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    d = Daemon(settings={"providers": gv(["an"])},
               groups={"providers/an": backend_group("provider-anthropic", fake.url_without_v1)})
    try:
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        upstream_loop(d, "an", watcher, c)
        second = fake.requests[-1]["body"]
        assert second["tools"][0]["name"] == "helper_say", second
        assert second["tools"][0]["input_schema"] == SAY["input_schema"], second
        asked, answered = second["messages"][-2], second["messages"][-1]
        assert asked["role"] == "assistant" and asked["content"][-1]["type"] == "tool_use", asked
        assert asked["content"][-1]["input"] == {"text": "from the model"}, asked
        assert answered["role"] == "user" and answered["content"] == [
            {"type": "tool_result", "tool_use_id": asked["content"][-1]["id"],
             "content": "{\"said\":\"from the model\"}"}], answered
    finally:
        d.cleanup()
        fake.close()


if __name__ == "__main__":
    run_tests(globals())
