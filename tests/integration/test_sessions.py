"""Sessions through the native protocol: session ids a caller chooses
(sessions.spawn {session_id}, sessions.ensure), a busy session that queues
tasks (bounded by session-queue-length, SESSION_BUSY past it) and tells
watchers when each starts, the record's current task, ended_at and counters,
the daemon's session counters in health, session_status_update events that
carry the record, and the bad input of each.

Tasks that must overlap run on a command provider gated by a FIFO: a task's
process blocks until the test writes one word for it ("fail" makes it fail),
so every ordering here is a condition, never a delay."""

from enslib import Daemon, gv, run_tests
from fake_gate import Gate


def events_until(watcher, pred, limit=200):
    """The session events (their data) up to and including the first that pred accepts."""
    seen = []
    for _ in range(limit):
        ev = watcher.next_event()["data"]
        seen.append(ev)
        if pred(ev):
            return seen
    raise AssertionError(f"no such event in {seen}")


def invalid(c, action, data, field):
    rep = c.request(action, data)
    assert rep["status"] == "error" and rep["error"]["code"] == "INVALID_PARAMETERS", (action, data, rep)
    assert rep["error"]["details"]["field"] == field, (action, data, rep)


def test_caller_chosen_ids_and_ensure():
    d = Daemon()
    try:
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        a = c.ok("sessions.spawn", {"session_id": "team-a", "orchestrator_id": "o", "session_type": "chat"})
        assert a["session_id"] == "team-a" and a["id"] == "team-a" and a["status"] == "idle", a
        ev = watcher.next_event()["data"]
        assert ev["type"] == "session_spawned" and ev["session"]["session_id"] == "team-a", ev
        assert "history" not in ev["session"] and ev["session"]["orchestrator_id"] == "o", ev
        rep = c.request("sessions.spawn", {"session_id": "team-a"})
        assert rep["error"]["code"] == "SESSION_EXISTS" and rep["error"]["details"]["session_id"] == "team-a", rep

        b = c.ok("sessions.ensure", {"session_id": "team-b", "session_type": "chat", "system": "You are B."})
        assert b["created"] is True and b["session_id"] == "team-b", b
        assert b["history"] == [{"role": "system", "content": "You are B."}], b
        again = c.ok("sessions.ensure", {"session_id": "team-b", "session_type": "other", "system": "ignored"})
        assert again["created"] is False and again["session_type"] == "chat" and len(again["history"]) == 1, again
        assert c.ok("sessions.ensure", {"session_id": "team-a"})["created"] is False
        ev = watcher.next_event()["data"]  # one spawn event for team-b, none for the second ensure
        assert ev["type"] == "session_spawned" and ev["sessionId"] == "team-b", ev
        # a task given to ensure is not run
        c.ok("sessions.ensure", {"session_id": "team-c", "task": "not run"})
        assert c.ok("sessions.status", {"session_id": "team-c"})["tasks_total"] == 0

        for bad in ("", "a b", "x*", "s.*", "[x]", ".hidden", "x" * 65, "a/b", 5, {}, ["x"]):
            invalid(c, "sessions.spawn", {"session_id": bad}, "session_id")
            invalid(c, "sessions.ensure", {"session_id": bad}, "session_id")
        invalid(c, "sessions.ensure", {}, "session_id")
        invalid(c, "sessions.ensure", {"session_id": "ok-id", "model": 3}, "model")
        c.ok("sessions.spawn", {"session_id": "x" * 64})

        ids = [s["session_id"] for s in c.ok("sessions.list")["sessions"]]
        assert ids == ["team-a", "team-b", "team-c", "x" * 64], ids
        d.restart()
        c = d.client()
        assert c.ok("sessions.status", {"session_id": "team-b"})["history"][0]["content"] == "You are B."
        assert c.ok("sessions.ensure", {"session_id": "team-b"})["created"] is False
        assert c.request("sessions.spawn", {"session_id": "team-a"})["error"]["code"] == "SESSION_EXISTS"
    finally:
        d.cleanup()


def test_busy_session_queues_tasks():
    gate = Gate()
    d = Daemon(settings={"providers": gv(["gated"]), "session-queue-length": gv(2)}, groups=gate.groups())
    try:
        c, watcher = d.client(), d.client()
        sid = c.ok("sessions.spawn", {"session_id": "q", "model": "gated"})["session_id"]
        watcher.ok("subscribe", {"topics": [f"session.{sid}.*"]})
        one = c.ok("sessions.execute", {"session_id": sid, "task": "first"})
        assert one["status"] == "executing" and one["request_id"], one
        two = c.ok("sessions.execute", {"session_id": sid, "task": "second", "task_meta": {"type": "code"}})
        three = c.ok("sessions.execute", {"session_id": sid, "task": "third"})
        assert two["status"] == "queued" and two["queue_position"] == 1 and "request_id" not in two, two
        assert three["status"] == "queued" and three["queue_position"] == 2, three
        assert len({one["task_id"], two["task_id"], three["task_id"]}) == 3
        # past session-queue-length: SESSION_BUSY, with what waits
        rep = c.request("sessions.execute", {"session_id": sid, "task": "fourth"})
        assert rep["error"]["code"] == "SESSION_BUSY", rep
        assert rep["error"]["details"] == {"task_id": one["task_id"], "queued": 2, "session_queue_length": 2}, rep
        # a bad parameter is refused now, not when the task's turn comes
        invalid(c, "sessions.execute", {"session_id": sid, "task": "x", "temperature": 9}, "temperature")
        invalid(c, "sessions.execute", {"session_id": sid, "task": "x", "priority": "urgent"}, "priority")
        invalid(c, "sessions.execute", {"session_id": sid, "task": "x", "task_meta": 5}, "task_meta")
        invalid(c, "sessions.execute", {"session_id": sid, "task": "x", "task_meta": {"priority": 3}},
                "task_meta.priority")
        invalid(c, "sessions.execute", {"session_id": sid, "task": "x", "task_meta": {"metadata": []}},
                "task_meta.metadata")
        st = c.ok("sessions.status", {"session_id": sid})
        assert st["status"] == "running" and st["queued_tasks"] == 2 and st["task_id"] == one["task_id"], st
        assert st["task"]["id"] == one["task_id"] and st["task"]["status"] == "running", st
        assert st["task"]["description"] == "first" and "ended_at" not in st, st

        # each task starts when the one before ends, in order
        order = []
        for task, word in ((one, "a"), (two, "b"), (three, "c")):
            gate.release(word)
            evs = events_until(watcher, lambda e, t=task: e["type"] in ("task_completed", "task_failed")
                               and e["taskId"] == t["task_id"])
            order.append(evs[-1]["taskId"])
            assert evs[-1]["type"] == "task_completed" and evs[-1]["result"]["response"].strip() == f"answer {word}"
            if task is not three:
                nxt = events_until(watcher, lambda e: e["type"] == "task_executing")
                upd = [e for e in nxt if e["type"] == "session_status_update"]
                assert upd and upd[-1]["session"]["task"]["status"] == "running", nxt
        assert order == [one["task_id"], two["task_id"], three["task_id"]], order
        last = events_until(watcher, lambda e: e["type"] == "session_status_update")[-1]
        rec = last["session"]
        assert last["status"] == "idle" and rec["status"] == "idle" and rec["ended_at"] and rec["queued_tasks"] == 0
        assert rec["task"]["id"] == three["task_id"] and rec["task"]["status"] == "completed", rec
        assert rec["metrics"]["tasks_completed"] == 3 and rec["metrics"]["tasks_failed"] == 0, rec
        assert rec["metrics"]["tokens_used"] > 0 and rec["metrics"]["duration_ms"] >= rec["metrics"]["avg_response_ms"]
        assert [t["status"] for t in rec["recent_tasks"]] == ["completed"] * 3, rec
        assert [t["description"] for t in rec["recent_tasks"]] == ["first", "second", "third"], rec
        hist = c.ok("sessions.status", {"session_id": sid})["history"]
        assert [m["content"].strip() for m in hist] == ["first", "answer a", "second", "answer b", "third", "answer c"]

        # a failure, then a stop with one task running and one waiting
        failing = c.ok("sessions.execute", {"session_id": sid, "task": "will fail"})
        gate.release("fail")
        ev = events_until(watcher, lambda e: e["type"] == "task_failed")[-1]
        assert ev["taskId"] == failing["task_id"], ev
        upd = events_until(watcher, lambda e: e["type"] == "session_status_update")[-1]
        assert upd["status"] == "failed" and upd["session"]["metrics"]["tasks_failed"] == 1, upd
        assert upd["session"]["task"]["status"] == "failed", upd
        running = c.ok("sessions.execute", {"session_id": sid, "task": "long"})
        waiting = c.ok("sessions.execute", {"session_id": sid, "task": "never"})
        assert waiting["status"] == "queued", waiting
        stopped = c.ok("sessions.stop", {"session_id": sid})
        assert stopped["status"] == "stopped" and stopped["ended_at"] and stopped["queued_tasks"] == 0, stopped
        assert stopped["task"]["id"] == running["task_id"] and stopped["task"]["status"] == "cancelled", stopped
        failed = {}
        while len(failed) < 2:
            ev = watcher.next_event()["data"]
            if ev["type"] == "task_failed":
                failed[ev["taskId"]] = ev["code"]
        assert failed == {running["task_id"]: "CANCELLED", waiting["task_id"]: "CANCELLED"}, failed
        rec = c.ok("sessions.status", {"session_id": sid})
        assert rec["metrics"]["tasks_failed"] == 1 and rec["metrics"]["tasks_completed"] == 3, rec  # cancelled: not failed
        assert rec["recent_tasks"][-1]["status"] == "cancelled", rec
        rep = c.request("sessions.execute", {"session_id": sid, "task": "x"})
        assert rep["error"]["code"] == "SESSION_STOPPED", rep
    finally:
        d.cleanup()
        gate.cleanup()


def test_queue_off_refuses_at_once():
    gate = Gate()
    d = Daemon(settings={"providers": gv(["gated"]), "session-queue-length": gv(0)}, groups=gate.groups())
    try:
        c = d.client()
        sid = c.ok("sessions.spawn", {"model": "gated", "task": "hold"})["session_id"]
        rep = c.request("sessions.execute", {"session_id": sid, "task": "x"})
        assert rep["error"]["code"] == "SESSION_BUSY" and rep["error"]["details"]["queued"] == 0, rep
        gate.release()
    finally:
        d.cleanup()
        gate.cleanup()


def test_task_record_counters_and_health():
    d = Daemon()
    try:
        c, watcher = d.client(), d.client()
        watcher.ok("subscribe", {"topics": ["session.*"]})
        before = c.ok("health")
        assert before["session_stats"] == {"spawned": 0, "tasks_completed": 0, "tasks_failed": 0, "tasks_queued": 0,
                                           "tokens_used": 0, "ended": 0, "avg_session_ms": 0}, before
        meta = {"type": "code", "priority": "critical", "metadata": {"k": 1}, "assigned_to": "bob"}
        spawned = c.ok("sessions.spawn", {"orchestrator_id": "o", "task": "count my words", "task_meta": meta})
        sid = spawned["session_id"]
        rec = spawned["session"]
        assert spawned["status"] == "executing" and rec["status"] == "running", spawned
        task = rec["task"]
        assert {k: task[k] for k in ("id", "description", "type", "priority", "status", "metadata", "assigned_to")} == {
            "id": spawned["task_id"], "description": "count my words", "type": "code", "priority": "critical",
            "status": "running", "metadata": {"k": 1}, "assigned_to": "bob"}, task
        assert task["created_at"] and task["updated_at"], task
        evs = events_until(watcher, lambda e: e["type"] == "task_completed")
        types = [e["type"] for e in evs]
        assert types.index("session_spawned") < types.index("session_status_update") < types.index("task_executing")
        executing = evs[types.index("task_executing")]
        assert executing["taskId"] == spawned["task_id"] and executing["task_record"]["type"] == "code", executing
        usage = evs[-1]["result"]["usage"]
        upd = events_until(watcher, lambda e: e["type"] == "session_status_update")[-1]
        rec = upd["session"]
        assert rec["status"] == "idle" and rec["ended_at"] and rec["task"]["status"] == "completed", rec
        assert rec["metrics"]["tokens_used"] == usage["input_tokens"] + usage["output_tokens"], (rec, usage)
        assert rec["metrics"]["tasks_completed"] == 1 and rec["recent_tasks"][0]["response"], rec
        # a plain spawn has no task yet
        plain = c.ok("sessions.spawn", {})
        assert "task" not in plain and "ended_at" not in plain and plain["metrics"]["tasks_completed"] == 0, plain
        # the daemon's counters
        h = c.ok("health")
        stats = h["session_stats"]
        assert stats["spawned"] == 2 and stats["tasks_completed"] == 1 and stats["tasks_failed"] == 0, stats
        assert stats["tokens_used"] == rec["metrics"]["tokens_used"] and stats["ended"] == 1, stats
        assert stats["avg_session_ms"] >= 0 and stats["tasks_queued"] == 0, stats
        assert h["completions"]["input_tokens"] >= usage["input_tokens"], h["completions"]
        assert h["completions"]["output_tokens"] >= usage["output_tokens"], h["completions"]
        # a task whose completion is refused at once is not counted
        bad = c.ok("sessions.spawn", {"provider": "no-such-backend"})["session_id"]
        rep = c.request("sessions.execute", {"session_id": bad, "task": "x"})
        assert rep["error"]["code"] == "UNKNOWN_MODEL", rep
        assert c.ok("sessions.status", {"session_id": bad})["tasks_total"] == 0
        assert c.ok("health")["session_stats"]["tasks_failed"] == 0
        # bad input to spawn
        invalid(c, "sessions.spawn", {"task_meta": "code"}, "task_meta")
        invalid(c, "sessions.spawn", {"task": "x", "task_meta": {"type": ""}}, "task_meta.type")
        invalid(c, "sessions.spawn", {"task": "x", "temperature": "warm"}, "temperature")
        assert c.ok("health")["session_stats"]["spawned"] == 3  # refused spawns made nothing
        # kept over a restart; what ran reads interrupted
        d.restart()
        c = d.client()
        rec = c.ok("sessions.status", {"session_id": sid})
        assert rec["task"]["status"] == "completed" and rec["metrics"]["tasks_completed"] == 1, rec
        assert rec["ended_at"] and rec["recent_tasks"][0]["status"] == "completed", rec
    finally:
        d.cleanup()


run_tests(globals())
