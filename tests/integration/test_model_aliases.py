"""Model aliases (the model-aliases setting) through the real daemon: sonnet,
opus and haiku land on the backend that serves Claude models, in every
dialect (native complete and route, KSI COMPLETION, the OpenAI API, GET
/v1/models); a family fallback when the aliased model is not configured;
and a daemon whose only provider is the offline one answers whatever model
is asked, clearly labelled as local."""

import json
import os
import socket
import tempfile
import urllib.error
import urllib.request

from enslib import Daemon, SCALE, gv, ksi, run_tests
from fake_upstream import FakeUpstream


def backend(plugin, url, models=None, **extra):
    group = {
        "plugin": gv(plugin),
        "base-url": gv(url),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    if models is not None:
        group["models"] = gv(models)
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def key_file():
    fd, path = tempfile.mkstemp(prefix="ens-key-")
    os.write(fd, b"sk-test\n")
    os.close(fd)
    return path


def complete(c, **data):
    ack = c.ok("complete", data)
    while True:
        ev = c.next_event()
        if ev["event"] == "COMPLETION_RESULT" and ev["data"]["request_id"] == ack["request_id"]:
            return ack, ev["data"]


def http(url, body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20 * SCALE) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_aliases_reach_the_claude_backend_in_every_dialect():
    up = FakeUpstream()
    key = key_file()
    # claude: an Anthropic backend configured without models serves the
    # Claude models the aliases name; gpt: another backend, ranked higher.
    d = Daemon(settings={"providers": gv(["claude", "gpt"])},
               groups={"providers/claude": backend("provider-anthropic", up.base(), None, **{"api-key-file": key}),
                       "providers/gpt": backend("provider-openai", up.base(), ["gpt-x"], quality=0.95)})
    try:
        c = d.client()
        listed = c.ok("providers.list")
        claude = next(p for p in listed["providers"] if p["name"] == "claude")
        assert claude["models"] == ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"], claude
        assert listed["aliases"] == [
            {"alias": "haiku", "model": "claude-haiku-4-5", "provider": "claude"},
            {"alias": "opus", "model": "claude-opus-4-1", "provider": "claude"},
            {"alias": "sonnet", "model": "claude-sonnet-4-5", "provider": "claude"},
        ], listed["aliases"]

        # native: the upstream is asked for the aliased model, and says so
        ack, res = complete(c, prompt="hi", model="sonnet")
        assert ack["provider"] == "claude" and ack["model"] == "claude-sonnet-4-5", ack
        r = res["result"]
        assert r["provider"] == "claude" and r["model"] == "claude-sonnet-4-5", r
        assert r["response"] == "w0 w1 w2 ", r
        ack = c.ok("complete", {"prompt": "hi", "model": "opus", "stream": True})
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_CHUNK":
                assert ev["data"]["model"] == "claude-opus-4-1" and ev["data"]["provider"] == "claude", ev
            else:
                break
        assert ev["event"] == "COMPLETION_RESULT" and ev["data"]["result"]["model"] == "claude-opus-4-1", ev
        # no model: the router's pick (gpt), each backend with its own default
        _, res = complete(c, prompt="hi")
        assert res["result"]["provider"] == "gpt" and res["result"]["model"] == "gpt-x", res
        # a backend asked for by its name runs its default model, never its name
        _, res = complete(c, prompt="hi", model="claude")
        assert res["result"]["model"] == "claude-sonnet-4-5", res

        # route: the same resolution, and the model it resolved to
        r = c.ok("route", {"model": "haiku"})
        assert r["provider"] == "claude" and r["ranking"] == ["claude"] and r["model"] == "claude-haiku-4-5", r

        # KSI COMPLETION
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        s.connect(d.path("messaging.sock"))
        s.sendall(b'{"command":"AGENT_CONNECTION","version":"2.0","parameters":{"action":"connect","agent_id":"k1"}}\n')
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        buf = buf.split(b"\n", 1)[1]
        ack = ksi(d.path("completion.sock"), "COMPLETION", {"prompt": "hello", "client_id": "k1", "model": "haiku"})
        assert ack["status"] == "success", ack
        while True:
            while b"\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            if ev.get("type") == "COMPLETION_RESULT":
                break
        assert ev["result"]["model"] == "claude-haiku-4-5" and ev["result"]["provider"] == "claude", ev
        s.close()

        # the OpenAI API: /v1/models lists the aliases, chat resolves them
        url = d.http_url()
        status, models = http(url + "/v1/models")
        assert status == 200, models
        ids = {m["id"]: m for m in models["data"]}
        assert {"sonnet", "opus", "haiku", "claude-sonnet-4-5", "gpt-x", "auto"} <= set(ids), ids
        assert ids["sonnet"]["owned_by"] == "claude", ids["sonnet"]
        status, one = http(url + "/v1/models/opus")
        assert status == 200 and one["id"] == "opus", one
        status, body = http(url + "/v1/chat/completions",
                            {"model": "haiku", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and body["model"] == "claude-haiku-4-5", body
        assert body["choices"][0]["message"]["content"] == "w0 w1 w2 ", body
        req = urllib.request.Request(url + "/v1/chat/completions", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"model": "sonnet", "stream": True,
                                                      "messages": [{"role": "user", "content": "hi"}]}).encode())
        with urllib.request.urlopen(req, timeout=20 * SCALE) as r:
            events = [e[len("data: "):] for e in r.read().decode().split("\n\n") if e.startswith("data: ")]
        assert events[-1] == "[DONE]", events
        chunks = [json.loads(e) for e in events[:-1]]
        assert {ch["model"] for ch in chunks} == {"claude-sonnet-4-5"}, chunks
        assert "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks) == "w0 w1 w2 ", chunks
    finally:
        d.cleanup()
        up.close()
        os.unlink(key)


def test_alias_family_fallback_custom_aliases_and_unknown():
    up = FakeUpstream()
    key = key_file()
    d = Daemon(settings={"providers": gv(["claude", "gpt"]),
                         "model-aliases": gv({"sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-1",
                                              "fast": "gpt-mini", "ghost": "not-configured", "empty": ""})},
               groups={"providers/claude": backend("provider-anthropic", up.base(), ["claude-3-7-sonnet-latest"],
                                                   **{"api-key-file": key}),
                       "providers/gpt": backend("provider-openai", up.base(), ["gpt-mini", "sonnet-lookalike"])})
    try:
        c = d.client()
        # sonnet's model is not configured: the served model of that family
        # ("sonnet-lookalike" is on gpt, whose name sorts after claude)
        _, res = complete(c, prompt="hi", model="sonnet")
        assert res["result"]["model"] == "claude-3-7-sonnet-latest" and res["result"]["provider"] == "claude", res
        _, res = complete(c, prompt="hi", model="fast")
        assert res["result"]["model"] == "gpt-mini" and res["result"]["provider"] == "gpt", res
        # a model a backend serves under its own name is never an alias
        _, res = complete(c, prompt="hi", model="gpt-mini")
        assert res["result"]["model"] == "gpt-mini", res
        # an alias that resolves to nothing served: UNKNOWN_MODEL naming both
        for asked, why in (("opus", 'no provider serves the model "claude-opus-4-1" (alias of "opus")'),
                           ("ghost", 'no provider serves the model "not-configured" (alias of "ghost")'),
                           ("empty", 'no provider serves the model "empty"'),
                           ("nothing", 'no provider serves the model "nothing"')):
            rep = c.request("complete", {"prompt": "hi", "model": asked})
            assert rep["status"] == "error" and rep["error"]["code"] == "UNKNOWN_MODEL", rep
            assert rep["error"]["message"] == why and rep["error"]["details"]["field"] == "model", rep
            rep = c.request("route", {"model": asked})
            assert rep["status"] == "error" and rep["error"]["code"] == "UNKNOWN_MODEL", rep
        listed = c.ok("providers.list")["aliases"]
        assert listed == [{"alias": "fast", "model": "gpt-mini", "provider": "gpt"},
                          {"alias": "sonnet", "model": "claude-3-7-sonnet-latest", "provider": "claude"}], listed
        # wrong types are refused, the connection lives on
        for bad in ({"prompt": "hi", "model": 5}, {"prompt": "hi", "model": ["sonnet"]}):
            rep = c.request("complete", bad)
            assert rep["error"]["code"] == "INVALID_PARAMETERS" and rep["error"]["details"]["field"] == "model", rep
        # the OpenAI API: 404 model_not_found
        status, body = http(d.http_url() + "/v1/chat/completions",
                            {"model": "opus", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 404 and body["error"]["code"] == "model_not_found", body
        assert body["error"]["param"] == "model" and "alias of" in body["error"]["message"], body
        rep = c.request("route", {"model": {"x": 1}})
        assert rep["error"]["code"] == "INVALID_PARAMETERS" and rep["error"]["details"]["field"] == "model", rep
        assert c.ok("ping")["pong"] is True
    finally:
        d.cleanup()
        up.close()
        os.unlink(key)


def test_aliases_setting_of_the_wrong_type_is_reported():
    d = Daemon(settings={"model-aliases": "['sonnet']"})
    try:
        assert "setting model-aliases: invalid value" in d.read_log(), d.read_log()
        # the defaults stay in force: sonnet is an alias (answered locally here)
        _, res = complete(d.client(), prompt="hi", model="sonnet")
        assert res["result"]["provider"] == "local", res
    finally:
        d.cleanup()


def test_offline_provider_answers_any_model():
    d = Daemon()
    try:
        c = d.client()
        for model in ("gpt-4o", "sonnet", "claude-opus-4-1", "local", "auto"):
            _, res = complete(c, prompt="what model are you", model=model)
            r = res["result"]
            assert r["provider"] == "local" and r["local"] is True and r["model"] == "local", (model, r)
            assert r["response"].startswith("[ensemble local provider"), r
        _, res = complete(c, prompt="stream it", model="gpt-4o", stream=True)
        assert res["result"]["model"] == "local", res
        r = c.ok("route", {"model": "gpt-4o"})
        assert r["provider"] == "local", r
        # a provider (backend) asked for by a name that does not exist is still an error
        rep = c.request("complete", {"prompt": "hi", "provider": "nope"})
        assert rep["error"]["code"] == "UNKNOWN_MODEL" and rep["error"]["details"]["field"] == "provider", rep
        # nothing real is listed: no alias resolves
        assert c.ok("providers.list")["aliases"] == []
        status, body = http(d.http_url() + "/v1/chat/completions",
                            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and body["model"] == "local", body
        assert "local provider" in body["choices"][0]["message"]["content"], body
        status, models = http(d.http_url() + "/v1/models")
        assert {m["id"] for m in models["data"]} == {"auto", "local"}, models
    finally:
        d.cleanup()


run_tests(globals())
