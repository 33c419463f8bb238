"""KSI conformance: the real daemon driven exactly as durapensa/ksi's
multi-socket ksi_client drives a KSI daemon (ksi_client/async_client.py and
utils.py of its multi-socket days, and the tests written for them).

KsiClient below is our own code written from that client's behaviour, not a
copy: the same bytes (json.dumps with its default separators, one line), the
same awaits in the same order (a one-shot command: connect, write, drain,
readline, close, wait_closed; initialize writes AGENT_CONNECTION and
SUBSCRIBE on messaging.sock without reading their replies), the same reads
(result fields, a listener that ignores lines without "type"), and the same
timing: create_completion records its pending request only after its
completion.sock connection has closed, and drops a COMPLETION_RESULT that
comes before that."""

import asyncio
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time

from enslib import SCALE, Daemon, gv, run_tests
from fake_openai import FakeOpenAI

HERE = os.path.dirname(os.path.abspath(__file__))
SPAWNED_AGENT = os.path.join(HERE, "ksi_spawned_agent.py")
SOCKETS = ["admin", "agents", "messaging", "state", "completion"]
TIMEOUT = 5.0 * SCALE  # ksi_client's socket_timeout
KSI_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
MODEL = "local"  # the offline provider's; ksi_client asks for "sonnet" (model aliases)


class KsiClient:
    """MultiSocketAsyncClient's behaviour.  @targeted picks the SUBSCRIBE
    form: COMPLETION_RESULT:<id> (its stored revision) or COMPLETION_RESULT
    (the one after)."""

    def __init__(self, d, client_id, targeted=True):
        self.d = d
        self.client_id = client_id
        self.targeted = targeted
        self.pending = {}          # request_id -> future
        self.lost = []             # COMPLETION_RESULTs for a request not (yet) pending: dropped
        self.results = []          # every COMPLETION_RESULT line seen (raw bytes, parsed)
        self.events = []           # other typed events, as handlers would get them
        self.event_seen = None     # asyncio.Event set on each typed event
        self.reader = self.writer = None
        self.listener = None

    def path(self, name):
        return self.d.path(name + ".sock")

    async def once(self, name, command, parameters=None):
        """ConnectionManager.send_command_once."""
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.path(name)), TIMEOUT)
        writer.write((json.dumps({"command": command, "version": "2.0", "parameters": parameters or {}}) + "\n")
                     .encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        writer.close()
        await writer.wait_closed()
        return json.loads(line.decode().strip())

    async def send_messaging(self, command, parameters):
        self.writer.write((json.dumps({"command": command, "version": "2.0", "parameters": parameters}) + "\n")
                          .encode())
        await self.writer.drain()

    async def initialize(self):
        self.event_seen = asyncio.Event()
        self.reader, self.writer = await asyncio.open_unix_connection(self.path("messaging"))
        await self.send_messaging("AGENT_CONNECTION", {"action": "connect", "agent_id": self.client_id})
        topic = f"COMPLETION_RESULT:{self.client_id}" if self.targeted else "COMPLETION_RESULT"
        await self.send_messaging("SUBSCRIBE", {"agent_id": self.client_id, "event_types": [topic]})
        self.listener = asyncio.create_task(self.listen())

    async def listen(self):
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            try:
                event = json.loads(raw.decode().strip())
            except ValueError:
                continue
            kind = event.get("type")
            if kind == "COMPLETION_RESULT":
                self.results.append((raw, event))
                target = event.get("client_id") or event.get("to")
                if target and target != self.client_id:
                    continue
                future = self.pending.pop(event.get("request_id"), None)
                if future is None:
                    self.lost.append(event)  # "unknown request": dropped
                elif not future.done():
                    future.set_result(event.get("result", {}))
            elif kind:
                self.events.append(event)
            if kind:
                self.event_seen.set()

    async def close(self):
        self.listener.cancel()
        try:
            await self.listener
        except asyncio.CancelledError:
            pass
        await self.send_messaging("AGENT_CONNECTION", {"action": "disconnect", "agent_id": self.client_id})
        self.writer.close()
        await self.writer.wait_closed()

    async def create_completion(self, prompt, model=MODEL, timeout=300):
        response = await self.once("completion", "COMPLETION", {"prompt": prompt, "model": model,
                                                                "client_id": self.client_id, "timeout": timeout})
        if response.get("status") != "success":
            raise ValueError("Completion request failed: " + response.get("error", {}).get("message", ""))
        request_id = response["result"].get("request_id")
        if not request_id:
            raise ValueError("No request_id in completion acknowledgment")
        # Only now, with the completion connection closed, is it pending.
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            result = await asyncio.wait_for(future, TIMEOUT)
        finally:
            self.pending.pop(request_id, None)
        if "error" in result:
            raise ValueError(f"Completion failed: {result['error']}")
        return result.get("response", "")

    async def wait_event(self, pred, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if pred(event):
                    self.events.remove(event)
                    return event
            self.event_seen.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: no {what}; events: {self.events}")
            try:
                await asyncio.wait_for(self.event_seen.wait(), left)
            except asyncio.TimeoutError:
                pass

    # the other methods, reading what ksi_client reads
    async def result_or(self, name, command, parameters, fallback):
        r = await self.once(name, command, parameters)
        return r["result"] if r.get("status") == "success" else fallback

    async def health_check(self):
        return await self.result_or("admin", "HEALTH_CHECK", None, {})

    async def get_processes(self):
        return (await self.result_or("admin", "GET_PROCESSES", None, {})).get("processes", [])

    async def get_message_bus_stats(self):
        return await self.result_or("admin", "MESSAGE_BUS_STATS", None, {})

    async def register_agent(self, agent_id, role, capabilities=None):
        r = await self.once("agents", "REGISTER_AGENT", {"agent_id": agent_id, "role": role,
                                                         "capabilities": capabilities or []})
        return r.get("status") == "success"

    async def get_agents(self):
        return (await self.result_or("agents", "GET_AGENTS", None, {})).get("agents", {})

    async def spawn_agent(self, agent_type, config):
        r = await self.once("agents", "SPAWN_AGENT", {"agent_type": agent_type, "config": config})
        if r.get("status") == "success":
            return r["result"].get("process_id", "")
        raise ValueError("Failed to spawn agent: " + r.get("error", {}).get("message", ""))

    async def set_agent_kv(self, agent_id, key, value):
        r = await self.once("state", "SET_AGENT_KV", {"agent_id": agent_id, "key": key, "value": value})
        return r.get("status") == "success"

    async def get_agent_kv(self, agent_id, key):
        return (await self.result_or("state", "GET_AGENT_KV", {"agent_id": agent_id, "key": key}, {})).get("value")

    async def send_message(self, to_agent, content, metadata=None):
        await self.send_messaging("SEND_MESSAGE", {"from_agent": self.client_id, "to_agent": to_agent,
                                                   "content": content, "metadata": metadata or {}})


def run(coro):
    return asyncio.run(coro)


async def until(cond, what):
    """Waits for an async condition, polling the daemon (never a bare sleep)."""
    deadline = time.monotonic() + 10 * SCALE
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.02)


def check_error(reply, command, code, field=None):
    assert reply["status"] == "error" and reply["command"] == command, reply
    assert reply["error"]["code"] == code and reply["error"]["message"], reply
    if field:
        assert reply["error"]["details"]["field"] == field, reply
    return reply["error"]


# ------------------------------------------------------------------ tests

def test_one_shot_bytes_on_every_socket():
    d = Daemon()
    try:
        async def main():
            k = KsiClient(d, "bytes")
            for name in SOCKETS:
                r = await k.once(name, "HEALTH_CHECK")
                assert r["status"] == "success" and r["command"] == "HEALTH_CHECK", r
                assert "type" not in r, r  # the listener would take a reply for an event
                assert KSI_TIMESTAMP.match(r["metadata"]["timestamp"]), r
                assert r["result"]["status"] == "healthy", r
        run(main())
    finally:
        d.cleanup()


def test_initialize_then_commands_then_close():
    d = Daemon()
    try:
        async def main():
            k = KsiClient(d, "test_client_001")
            await k.initialize()
            health = await k.health_check()
            assert health["status"] == "healthy" and "managers" in health, health
            assert await k.get_processes() == []
            agents = await k.get_agents()
            assert isinstance(agents, dict) and agents["test_client_001"]["status"] == "active", agents
            assert await k.register_agent("helper", "reviewing", ["review"]) is True
            assert (await k.get_agents())["helper"]["capabilities"] == ["review"]
            stats = await k.get_message_bus_stats()
            assert "test_client_001" in stats["connected_agents"], stats
            assert stats["subscriptions"]["COMPLETION_RESULT:test_client_001"] == ["test_client_001"], stats
            assert stats["offline_queues"] == {} and isinstance(stats["history_size"], int), stats
            # What the listener ignored: the two replies, which carry no "type".
            await k.close()
            await until(lambda: _gone(k, "test_client_001"), "the client's agent gone after close")
            stats = await k.get_message_bus_stats()
            assert "test_client_001" not in stats["connected_agents"], stats
        run(main())
    finally:
        d.cleanup()


async def _gone(k, name):
    return name not in await k.get_agents()


def test_kv_round_trip():
    d = Daemon()
    try:
        async def main():
            k = KsiClient(d, "kv_client")
            value = {"data": "test_data", "number": 42, "list": [1, 2, 3]}
            assert await k.set_agent_kv("test_agent_kv", "test_key", value) is True
            assert await k.get_agent_kv("test_agent_kv", "test_key") == value
            assert await k.get_agent_kv("test_agent_kv", "nonexistent_key") is None
            # Keyed by the key alone: any agent_id, or none, reads it (KSI's server).
            r = await k.once("state", "GET_AGENT_KV", {"key": "test_key"})
            assert r["result"] == {"key": "test_key", "value": value, "found": True}, r
            assert await k.get_agent_kv("someone_else", "test_key") == value
            # The owner is metadata.
            r = await k.once("state", "SET_AGENT_KV", {"key": "owned", "value": "v", "owner_agent_id": "x"})
            assert r["status"] == "success" and r["result"] == {"key": "owned", "status": "set"}, r
            assert (await k.once("state", "GET_AGENT_KV", {"key": "owned"}))["result"]["value"] == "v"
            # A stored null reads as not found.
            assert await k.set_agent_kv("a", "nothing", None) is True
            r = await k.once("state", "GET_AGENT_KV", {"key": "nothing"})
            assert r["result"] == {"key": "nothing", "value": None, "found": False}, r
            # Bad input: a clear error naming the field, and the daemon serves on.
            check_error(await k.once("state", "SET_AGENT_KV", {"key": 5, "value": 1}), "SET_AGENT_KV",
                        "INVALID_PARAMETERS", "key")
            check_error(await k.once("state", "SET_AGENT_KV", {"agent_id": "a", "key": "k"}), "SET_AGENT_KV",
                        "INVALID_PARAMETERS", "value")
            check_error(await k.once("state", "GET_AGENT_KV", {"agent_id": "a", "key": ""}), "GET_AGENT_KV",
                        "INVALID_PARAMETERS", "key")
            assert await k.get_agent_kv("x", "test_key") == value
        run(main())
    finally:
        d.cleanup()


LATE_REGISTRATION_RUNS = 100


def test_completion_late_registration_never_loses_a_result():
    """ksi_client records its request after closing the completion
    connection; a result the daemon writes before that is dropped.  Each run
    is a fresh client on the offline provider, alternating both SUBSCRIBE
    forms; none may lose its COMPLETION_RESULT or get two."""
    d = Daemon()
    try:
        async def main():
            clients = []
            for i in range(LATE_REGISTRATION_RUNS):
                k = KsiClient(d, f"late_{i}", targeted=i % 2 == 0)
                await k.initialize()
                response = await k.create_completion(f"prompt number {i}")
                assert isinstance(response, str) and response, response
                clients.append(k)
            lost = [ev for k in clients for ev in k.lost]
            assert lost == [], f"{len(lost)} of {LATE_REGISTRATION_RUNS} results came before registration"
            # Exactly one result each, with "to" once, after a marker sent
            # later on the same connection (events to one connection keep
            # their order).
            for k in clients:
                r = await k.once("messaging", "PUBLISH", {"from_agent": "marker", "event_type": "MARK",
                                                          "payload": {"to": k.client_id}})
                assert r["result"]["delivery"]["to_status"] == "delivered", r
                await k.wait_event(lambda ev: ev["type"] == "MARK", "the marker")
                assert len(k.results) == 1, (k.client_id, k.results)
                raw, event = k.results[0]
                assert raw.count(b'"to":') == 1, raw
                assert event["client_id"] == k.client_id and event["to"] == k.client_id, event
                assert event["request_id"].startswith("req_"), event
                assert event["from"] and KSI_TIMESTAMP.match(event["timestamp"]), event
                assert isinstance(event["result"]["response"], str) and event["result"]["response"], event
                await k.close()
        run(main())
    finally:
        d.cleanup()


def test_completion_hold_waits_for_the_close_and_is_bounded():
    d = Daemon()
    try:
        async def main():
            k = KsiClient(d, "holder")
            await k.initialize()
            await until(lambda: _connected(k), "holder connected")

            # A client that reads its ack and keeps the connection open: the
            # result waits for it to close.
            reader, writer = await asyncio.open_unix_connection(k.path("completion"))
            writer.write((json.dumps({"command": "COMPLETION", "version": "2.0", "parameters": {
                "prompt": "held", "model": MODEL, "client_id": "holder"}}) + "\n").encode())
            ack = json.loads(await asyncio.wait_for(reader.readline(), TIMEOUT))
            assert ack["status"] == "success", ack
            assert await asyncio.wait_for(reader.read(1), TIMEOUT) == b"", "the peer sees EOF after the reply"
            # The offline provider has answered by the time the daemon
            # answers again; the result still waits.
            for _ in range(3):
                assert (await k.health_check())["status"] == "healthy"
            assert k.lost == [] and k.results == [], k.results
            writer.close()
            await writer.wait_closed()
            await until(lambda: _has_results(k, 1), "the held result after the close")
            assert k.results[0][1]["request_id"] == ack["result"]["request_id"]
            await k.close()
        run(main())
    finally:
        d.cleanup()

    # A client that never closes: the hold ends after ksi-result-hold-ms and
    # the daemon closes the connection.
    d = Daemon(settings={"ksi-result-hold-ms": "300"})
    try:
        async def bounded():
            k = KsiClient(d, "stubborn")
            await k.initialize()
            await until(lambda: _connected(k), "stubborn connected")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect(k.path("completion"))
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(s, (json.dumps({"command": "COMPLETION", "version": "2.0", "parameters": {
                "prompt": "held", "model": MODEL, "client_id": "stubborn"}}) + "\n").encode())
            await until(lambda: _has_results(k, 1), "the result after ksi-result-hold-ms")
            buf = b""
            while True:  # the ack, then the daemon's close
                chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), TIMEOUT)
                if not chunk:
                    break
                buf += chunk
            assert json.loads(buf)["status"] == "success", buf
            s.close()
            await k.close()
        run(bounded())
    finally:
        d.cleanup()


async def _connected(k):
    return (await k.get_agents()).get(k.client_id, {}).get("status") == "active"


async def _has_results(k, n):
    return len(k.results) >= n


def test_completion_on_the_persistent_connection():
    """COMPLETION sent on the connection AGENT_CONNECTION kept open: its reply
    comes first, then the event; nothing is held."""
    d = Daemon()
    try:
        async def main():
            reader, writer = await asyncio.open_unix_connection(d.path("messaging.sock"))
            for command, params in (("AGENT_CONNECTION", {"action": "connect", "agent_id": "inline"}),
                                    ("COMPLETION", {"prompt": "inline", "model": MODEL, "client_id": "inline"})):
                writer.write((json.dumps({"command": command, "version": "2.0", "parameters": params}) + "\n")
                             .encode())
            await writer.drain()
            lines = [json.loads(await asyncio.wait_for(reader.readline(), TIMEOUT)) for _ in range(3)]
            assert lines[0]["command"] == "AGENT_CONNECTION" and lines[0]["status"] == "success", lines
            assert lines[1]["command"] == "COMPLETION" and lines[1]["status"] == "success", lines
            assert lines[2]["type"] == "COMPLETION_RESULT", lines
            assert lines[2]["request_id"] == lines[1]["result"]["request_id"], lines
            writer.close()
            await writer.wait_closed()
        run(main())
    finally:
        d.cleanup()


def test_completion_failure_looks_failed():
    fake = FakeOpenAI()
    group = {"plugin": gv("provider-openai"), "base-url": gv(fake.url), "models": gv([MODEL]),
             "model-map": gv({MODEL: "fail-500"}), "max-retries": gv(0), "timeout-ms": gv(10000)}
    d = Daemon(settings={"providers": gv(["broken"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/broken": group})
    try:
        async def main():
            k = KsiClient(d, "failing_client")
            await k.initialize()
            try:
                await k.create_completion("this one fails")
                raise AssertionError("a failed completion read as a success")
            except ValueError as e:
                assert "Completion failed" in str(e), e
            raw, event = k.results[0]
            assert raw.count(b'"to":') == 1, raw
            result = event["result"]
            assert isinstance(result["error"], str) and result["error"], event
            assert result["code"] == "COMPLETION_FAILED" and isinstance(result["details"], str), event
            assert "error" not in event and "reason" not in event, event  # only inside result
            await k.close()
        run(main())
    finally:
        d.cleanup()
        fake.close()


def test_concurrent_clients_get_only_their_own():
    d = Daemon()
    try:
        async def one(i):
            k = KsiClient(d, f"concurrent_client_{i}", targeted=i != 1)
            await k.initialize()
            answers = await asyncio.gather(*(k.create_completion(f"client {i} prompt {j}") for j in range(3)))
            assert all(f"client {i} prompt" in a for a in answers), answers
            return k

        async def main():
            clients = await asyncio.gather(*(one(i) for i in range(3)))
            for k in clients:
                assert k.lost == [], k.lost
                assert all(ev["client_id"] == k.client_id for _, ev in k.results), k.results
                assert len(k.results) == 3, k.results
                await k.close()
        run(main())
    finally:
        d.cleanup()


def test_reconnect_with_the_same_id_last_connection_wins():
    d = Daemon()
    try:
        async def main():
            a = KsiClient(d, "x")
            await a.initialize()
            await until(lambda: _connected(a), "x on A")
            b = KsiClient(d, "x")
            await b.initialize()  # the same id again, A still open
            probe = KsiClient(d, "probe")

            async def dm(text):
                r = await probe.once("messaging", "PUBLISH", {"from_agent": "probe", "event_type": "DIRECT_MESSAGE",
                                                              "payload": {"to": "x", "text": text}})
                assert r["result"]["delivery"]["to_status"] == "delivered", r

            await until(lambda: _served_by_b(d, b), "x served by B")
            await dm("one")
            ev = await b.wait_event(lambda ev: ev["type"] == "DIRECT_MESSAGE", "the message on B")
            assert ev["text"] == "one" and ev["to"] == "x", ev
            await dm("barrier")
            await b.wait_event(lambda ev: ev.get("text") == "barrier", "the barrier on B")
            assert [ev for ev in a.events if ev["type"] == "DIRECT_MESSAGE"] == [], a.events
            # A goes: B keeps the name.
            a.listener.cancel()
            a.writer.close()
            await a.writer.wait_closed()
            await dm("two")
            ev = await b.wait_event(lambda ev: ev["type"] == "DIRECT_MESSAGE", "the message on B after A left")
            assert ev["text"] == "two", ev
            assert (await probe.get_agents())["x"]["status"] == "active"
            await b.close()
        run(main())
    finally:
        d.cleanup()


async def _served_by_b(d, b):
    """B's replies went to its listener, which ignores them: ask the bus.
    Two connections subscribe COMPLETION_RESULT:x once B's SUBSCRIBE (for
    agent x) landed on B, and only the one serving x is named x."""
    subs = (await b.get_message_bus_stats())["subscriptions"].get("COMPLETION_RESULT:x", [])
    return len(subs) == 2 and subs.count("x") == 1


def test_send_message_and_message_bus_stats():
    d = Daemon()
    try:
        async def main():
            alice, bob = KsiClient(d, "alice"), KsiClient(d, "bob")
            await alice.initialize()
            await bob.initialize()
            await until(lambda: _connected(bob), "bob connected")
            await alice.send_message("bob", "hello bob", {"priority": "high", "thread": 7})
            ev = await bob.wait_event(lambda ev: ev["type"] == "MESSAGE", "alice's message")
            assert ev["from"] == "alice" and ev["to"] == "bob", ev
            assert ev["content"] == "hello bob" and ev["priority"] == "high" and ev["thread"] == 7, ev
            assert KSI_TIMESTAMP.match(ev["timestamp"]), ev
            # The reply, which ksi_client does not read, on a one-shot socket.
            r = await alice.once("messaging", "SEND_MESSAGE", {"from_agent": "alice", "to_agent": "nobody",
                                                               "content": "x"})
            assert r["result"]["delivery"] == "direct" and r["result"]["status"] == "not_connected", r
            r = await alice.once("messaging", "SEND_MESSAGE", {"from_agent": "alice", "content": {"n": 1},
                                                               "message_type": "NOTE"})
            assert r["result"]["delivery"] == "broadcast" and r["result"]["type"] == "NOTE", r
            # Bad input.
            check_error(await alice.once("messaging", "SEND_MESSAGE", {"from_agent": "alice", "to_agent": "bob"}),
                        "SEND_MESSAGE", "INVALID_PARAMETERS", "content")
            check_error(await alice.once("messaging", "SEND_MESSAGE", {"content": "x"}), "SEND_MESSAGE",
                        "INVALID_PARAMETERS", "from_agent")
            check_error(await alice.once("messaging", "SEND_MESSAGE", {"from_agent": "a", "content": "x",
                                                                       "metadata": "m"}),
                        "SEND_MESSAGE", "INVALID_PARAMETERS", "metadata")
            stats = await alice.get_message_bus_stats()
            assert stats["connected_agents"] == ["alice", "bob"], stats
            assert stats["subscriptions"]["COMPLETION_RESULT:alice"] == ["alice"], stats
            await alice.close()
            await bob.close()
        run(main())
    finally:
        d.cleanup()


def test_spawn_agent_as_ksi_client_sends_it():
    d = Daemon(settings={"spawn-command": gv([sys.executable, SPAWNED_AGENT, "{agent_id}", "{task}"])})
    try:
        async def main():
            k = KsiClient(d, "spawner")
            process_id = await k.spawn_agent("test", {"role": "tester", "capabilities": ["test"]})
            assert isinstance(process_id, str) and process_id, process_id
            procs = await k.get_processes()
            assert [p["process_id"] for p in procs] == [process_id], procs
            assert procs[0]["task"] == "test" and procs[0]["role"] == "tester", procs
            r = await k.once("agents", "SPAWN_AGENT", {"agent_type": "test", "config": "not an object"})
            check_error(r, "SPAWN_AGENT", "INVALID_PARAMETERS", "config")
        run(main())
    finally:
        d.cleanup()

    d = Daemon()
    try:
        async def unconfigured():
            k = KsiClient(d, "spawner")
            try:
                await k.spawn_agent("test", {"role": "tester"})
                raise AssertionError("spawned with no spawn-command")
            except ValueError as e:
                assert "spawn-command" in str(e), e
            r = await k.once("agents", "SPAWN_AGENT", {"agent_type": "test", "config": {}})
            check_error(r, "SPAWN_AGENT", "SPAWN_FAILED")
        run(unconfigured())
    finally:
        d.cleanup()


run_tests(globals())
