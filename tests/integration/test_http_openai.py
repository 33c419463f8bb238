"""The OpenAI-compatible API of transport-http through the real daemon: the
official `openai` npm client unchanged (tests/js/openai-client.mjs), raw SSE
and error bodies with curl, the bearer token, provider failures as OpenAI
errors, tool calls, and the daemon's own provider-openai talking to a
second ensembled's /v1."""

import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from enslib import Daemon, SCALE, gv, run_tests
from fake_openai import FakeOpenAI

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
CLIENT = "openai-client.mjs"


def http_url(d):
    m = re.search(r"transport-http: listening on (http://127\.0\.0\.1:\d+)", d.read_log())
    assert m, d.read_log()
    return m.group(1)


def node_client(base_v1, key="unused", scenario="all"):
    """Runs the npm-client script; returns its JSON results."""
    env = dict(os.environ)
    env.setdefault("NODE_PATH", os.path.join(JS_DIR, "node_modules"))
    r = subprocess.run(["node", CLIENT, base_v1, key, scenario], cwd=JS_DIR, capture_output=True, text=True,
                       timeout=60 * SCALE, env=env)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def curl(url, body=None, method=None, headers=None, raw=None):
    """(status, headers {lower name: value}, body text) of one request."""
    cmd = ["curl", "-s", "-S", "-N", "-i", "--max-time", str(int(30 * SCALE))]
    if method:
        cmd += ["-X", method]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if body is not None or raw is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", raw if raw is not None else json.dumps(body)]
    r = subprocess.run(cmd + [url], capture_output=True, timeout=40 * SCALE)
    assert r.returncode == 0, r
    text = r.stdout.decode()
    while True:
        head, _, rest = text.partition("\r\n\r\n")
        status = int(head.split(" ", 2)[1])
        if status >= 200:
            break
        text = rest  # 100 Continue
    hdrs = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


def oa_error(status, body, want_status, want_type, param="", code=""):
    assert status == want_status, (status, body)
    err = json.loads(body)["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert err["type"] == want_type, err
    assert isinstance(err["message"], str) and err["message"], err
    if param != "":
        assert err["param"] == param, err
    if code != "":
        assert err["code"] == code, err
    return err


def sse_data(body, done=True):
    """The data of each event of a raw OpenAI stream; asserts the framing
    (and, with @done, that it ends with [DONE])."""
    assert "event:" not in body, body  # OpenAI's stream has only data lines
    events = [e for e in body.split("\n\n") if e.strip()]
    out = []
    for e in events:
        lines = e.split("\n")
        assert len(lines) == 1 and lines[0].startswith("data: "), e
        out.append(lines[0][len("data: "):])
    if done:
        assert out and out[-1] == "[DONE]", out[-3:]
        assert body.endswith("data: [DONE]\n\n"), body[-80:]
    return out


def openai_backend(url, name_model, upstream_model=None, quality=0.8, cost=0.0, **extra):
    group = {
        "plugin": gv("provider-openai"),
        "base-url": gv(url),
        "models": gv([name_model]),
        "quality": gv(float(quality)),
        "cost-input-per-1k": gv(float(cost)),
        "cost-output-per-1k": gv(float(cost)),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(10000),
    }
    if upstream_model:
        group["model-map"] = gv({name_model: upstream_model})
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def chat(url, **body):
    body.setdefault("messages", [{"role": "user", "content": "hello there"}])
    return curl(url + "/v1/chat/completions", body)


# ------------------------------------------------------------------ the npm client


def test_official_openai_client():
    d = Daemon(settings={"http-port": gv(0)})
    try:
        r = node_client(http_url(d) + "/v1")
        p = r["plain"]
        assert p["ok"], p
        p = p["value"]
        assert p["object"] == "chat.completion" and p["id"].startswith("chatcmpl-req_"), p
        assert p["model"] == "local" and p["system_fingerprint"] == "ensemble-local", p
        assert p["choices"] == 1 and p["role"] == "assistant" and p["finish_reason"] == "stop", p
        assert "Say hello to the OpenAI client" in p["content"] and "local provider" in p["content"], p
        u = p["usage"]
        assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0, u
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
        assert isinstance(p["created"], int) and p["created"] > 1_600_000_000, p
        # "auto": the router decides (only local here)
        assert r["plain_auto"]["ok"] and r["plain_auto"]["value"]["content"] == p["content"], r["plain_auto"]

        s = r["stream"]
        assert s["ok"], s
        s = s["value"]
        assert s["chunks"] > 3 and s["objects"] == ["chat.completion.chunk"] and len(s["ids"]) == 1, s
        assert s["roles"] == ["assistant"] and s["finish_reasons"] == ["stop"], s
        assert "Stream a reply back to me please" in s["content"], s
        assert s["usage"] is None and s["empty_choice_chunks"] == 0, s
        su = r["stream_usage"]
        assert su["ok"], su
        su = su["value"]
        assert su["content"] == s["content"] and su["empty_choice_chunks"] == 1, su
        assert su["usage"]["completion_tokens"] > 0 and su["usage"]["prompt_tokens"] > 0, su

        models = r["models"]
        assert models["ok"], models
        ids = {m["id"]: m for m in models["value"]}
        assert {"auto", "local"} <= set(ids), ids
        assert ids["local"] == {"id": "local", "object": "model", "owned_by": "local", "created": 0}, ids

        mp = r["multipart"]
        assert mp["ok"] and "first part\nsecond part" in mp["value"], mp

        # only the offline provider: any model is answered, labelled as local
        e = r["unknown_model"]
        assert e["ok"] and e["value"]["model"] == "local" and "local provider" in e["value"]["content"], e
        e = r["unknown_model_stream"]
        assert e["ok"] and e["value"] == ["local"], e
        for name, param in (("empty_messages", "messages"), ("bad_temperature", "temperature"), ("two_choices", "n")):
            e = r[name]
            assert not e["ok"] and e["error"]["apiError"], (name, e)
            assert e["error"]["status"] == 400 and e["error"]["className"] == "BadRequestError", (name, e)
            assert e["error"]["type"] == "invalid_request_error" and e["error"]["param"] == param, (name, e)
    finally:
        d.cleanup()


# ------------------------------------------------------------------ curl


def test_raw_stream_and_bad_input_with_curl():
    d = Daemon(settings={"http-port": gv(0)})
    try:
        url = http_url(d)
        status, hdrs, body = chat(url, model="local", stream=True, stream_options={"include_usage": True})
        assert status == 200 and hdrs["content-type"].startswith("text/event-stream"), (status, hdrs)
        data = sse_data(body)
        chunks = [json.loads(x) for x in data[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, chunks[0]
        assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks), chunks
        final, usage = chunks[-2], chunks[-1]
        assert final["choices"][0]["finish_reason"] == "stop" and final["choices"][0]["delta"] == {}, final
        assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0, usage
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert "hello there" in text, text
        # the same request plain gives the same text
        status, _, body = chat(url, model="local")
        assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == text, body
        # without include_usage: no usage chunk
        status, _, body = chat(url, stream=True)
        chunks = [json.loads(x) for x in sse_data(body)[:-1]]
        assert all(c["choices"] for c in chunks) and "usage" not in chunks[-1], chunks[-1]

        v1 = url + "/v1/chat/completions"
        oa_error(*curl(v1, raw="{not json")[::2], 400, "invalid_request_error", param=None)
        oa_error(*curl(v1, raw="[1, 2]")[::2], 400, "invalid_request_error")
        oa_error(*curl(v1, raw="")[::2], 400, "invalid_request_error")
        oa_error(*curl(v1, {"model": "local"})[::2], 400, "invalid_request_error", param="messages")
        oa_error(*curl(v1, {"messages": "hi"})[::2], 400, "invalid_request_error", param="messages")
        oa_error(*chat(url, messages=[{"role": "wizard", "content": "x"}])[::2], 400, "invalid_request_error",
                 param="messages")
        oa_error(*chat(url, messages=[{"role": "user", "content": 5}])[::2], 400, "invalid_request_error",
                 param="messages")
        oa_error(*chat(url, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])[::2],
                 400, "invalid_request_error", param="messages")
        oa_error(*chat(url, temperature="hot")[::2], 400, "invalid_request_error", param="temperature")
        oa_error(*chat(url, temperature=2.5)[::2], 400, "invalid_request_error", param="temperature")
        oa_error(*chat(url, n=3)[::2], 400, "invalid_request_error", param="n")
        oa_error(*chat(url, stream="yes")[::2], 400, "invalid_request_error", param="stream")
        oa_error(*chat(url, stream_options={"include_usage": True})[::2], 400, "invalid_request_error",
                 param="stream_options")
        oa_error(*chat(url, max_tokens=0)[::2], 400, "invalid_request_error", param="max_tokens")
        oa_error(*chat(url, max_completion_tokens="x")[::2], 400, "invalid_request_error",
                 param="max_completion_tokens")
        oa_error(*chat(url, model=7)[::2], 400, "invalid_request_error", param="model")
        # only the offline provider: it answers whatever model is asked, as itself
        status, _, body = chat(url, model="gpt-nothing")
        assert status == 200 and json.loads(body)["model"] == "local", body
        # accepted: n=1, max_completion_tokens, user, a developer message, an assistant tool-call turn
        status, _, body = chat(url, n=1, max_completion_tokens=50, user="u1", messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "second"}])
        assert status == 200, body
        assert "second" in json.loads(body)["choices"][0]["message"]["content"], body

        status, _, body = curl(url + "/v1/models")
        assert status == 200, body
        listing = json.loads(body)
        assert listing["object"] == "list" and any(m["id"] == "local" for m in listing["data"]), listing
        status, _, body = curl(url + "/v1/models/local")
        assert status == 200 and json.loads(body)["owned_by"] == "local", body
        oa_error(*curl(url + "/v1/models/nope")[::2], 404, "invalid_request_error", code="model_not_found")
        # the routes are in the OpenAPI document under their tag
        status, _, body = curl(url + "/openapi.json")
        paths = json.loads(body)["paths"]
        assert "/v1/chat/completions" in paths and "/v1/models" in paths, list(paths)
        assert paths["/v1/chat/completions"]["post"]["tags"] == ["openai"], paths["/v1/chat/completions"]
    finally:
        d.cleanup()


# ------------------------------------------------------------------ token


def test_bearer_token():
    tmp = tempfile.mkdtemp(prefix="ens-oa-tok-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("s3cret-oa-token\n")
    d = Daemon(settings={"http-port": gv(0), "http-token-file": gv(token_file)})
    try:
        url = http_url(d)
        r = node_client(url + "/v1", "s3cret-oa-token", "auth")
        assert r["plain"]["ok"] and r["plain"]["value"]["model"] == "local", r
        assert r["models"]["ok"] and any(m["id"] == "local" for m in r["models"]["value"]), r
        r = node_client(url + "/v1", "wrong-key", "auth")
        for name in ("plain", "models"):
            e = r[name]
            assert not e["ok"] and e["error"]["status"] == 401, (name, e)
            assert e["error"]["className"] == "AuthenticationError", (name, e)
        status, hdrs, _ = curl(url + "/v1/models")
        assert status == 401 and "bearer" in hdrs.get("www-authenticate", "").lower(), (status, hdrs)
        status, _, _ = curl(url + "/v1/models", headers={"Authorization": "Bearer s3cret-oa-token"})
        assert status == 200
    finally:
        d.cleanup()
        os.unlink(token_file)
        os.rmdir(tmp)


# ------------------------------------------------------------------ provider outcomes


def test_provider_failures_as_openai_errors():
    fake = FakeOpenAI()
    # an upstream that fails: 502 before streaming, plain or stream
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["flop"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/flop": openai_backend(fake.url, "flop-model", "fail-500")})
    try:
        url = http_url(d)
        oa_error(*chat(url, model="flop-model")[::2], 502, "server_error", code="upstream_error")
        status, hdrs, body = chat(url, model="flop-model", stream=True)
        assert hdrs["content-type"].startswith("application/json"), hdrs
        oa_error(status, body, 502, "server_error", code="upstream_error")
    finally:
        d.cleanup()
    # no provider at all: 503
    d = Daemon(settings={"http-port": gv(0), "disabled-plugins": gv(["provider-local"])})
    try:
        url = http_url(d)
        oa_error(*chat(url)[::2], 503, "server_error")
        oa_error(*chat(url, model="auto", stream=True)[::2], 503, "server_error")
        status, _, body = curl(url + "/v1/models")
        assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["auto"], body
    finally:
        d.cleanup()
    # over the daily budget: 429 insufficient_quota
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["paid"]), "disabled-plugins": gv(["provider-local"]),
                         "daily-budget": gv(0.001)},
               groups={"providers/paid": openai_backend(fake.url, "paid-model", "ok-paid", cost=10.0)})
    try:
        url = http_url(d)
        err = oa_error(*chat(url, model="paid-model", max_tokens=1000)[::2], 429, "insufficient_quota",
                       code="insufficient_quota")
        assert "budget" in err["message"].lower(), err
    finally:
        d.cleanup()
        fake.close()


def test_tool_calls_and_model_routing():
    fake = FakeOpenAI()
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["gpt"])},
               groups={"providers/gpt": openai_backend(fake.url, "gpt-tools", "tools", quality=0.5)})
    try:
        url = http_url(d)
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        status, _, body = chat(url, model="gpt-tools", tools=tools)
        assert status == 200, body
        r = json.loads(body)
        choice = r["choices"][0]
        assert choice["finish_reason"] == "tool_calls", r
        assert choice["message"]["content"] is None, r
        assert choice["message"]["tool_calls"] == [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}], r
        assert r["system_fingerprint"] == "ensemble-gpt" and r["usage"]["prompt_tokens"] == 11, r
        # the model name picks the backend; "local" and "auto" still work
        status, _, body = chat(url, model="local")
        assert status == 200 and json.loads(body)["system_fingerprint"] == "ensemble-local", body
        status, _, body = curl(url + "/v1/models")
        owners = {m["id"]: m["owned_by"] for m in json.loads(body)["data"]}
        assert owners.get("gpt-tools") == "gpt" and owners.get("gpt") == "gpt" and owners.get("local") == "local", owners
        assert fake.models_called() == ["tools"], fake.models_called()
    finally:
        d.cleanup()
        fake.close()


class ScriptedUpstream:
    """An OpenAI upstream that streams the given deltas, then ends with a
    finish_reason and [DONE] -- or, with broken=True, just hangs up."""

    def __init__(self, deltas, finish="stop", broken=False):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for delta in deltas + ([] if broken else [{}]):
                    chunk = {"id": "x", "object": "chat.completion.chunk", "model": "m",
                             "choices": [{"index": 0, "delta": delta,
                                          "finish_reason": None if delta else finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                if not broken:
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_streamed_tool_calls():
    up = ScriptedUpstream([
        {"role": "assistant", "content": None,
         "tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]},
    ], finish="tool_calls")
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["gpt"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/gpt": openai_backend(up.url, "gpt-tools")})
    try:
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        status, _, body = chat(http_url(d), model="gpt-tools", tools=tools, stream=True)
        assert status == 200, body
        chunks = [json.loads(x) for x in sse_data(body)[:-1]]
        calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
        assert len(calls) == 1 and len(calls[0]) == 1, chunks
        call = calls[0][0]
        assert call["index"] == 0 and call["id"] == "call_9" and call["type"] == "function", call
        assert call["function"]["name"] == "lookup" and json.loads(call["function"]["arguments"]) == {"q": "x"}, call
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls", chunks[-1]
        # the model the upstream says answered ("m"), in every chunk
        assert {c["model"] for c in chunks} == {"m"}, chunks
    finally:
        d.cleanup()
        up.close()


def test_failure_after_the_stream_started():
    up = ScriptedUpstream([{"content": "half "}, {"content": "an answer "}], broken=True)
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["broken"]), "disabled-plugins": gv(["provider-local"])},
               groups={"providers/broken": openai_backend(up.url, "broken-model")})
    try:
        status, _, body = chat(http_url(d), model="broken-model", stream=True)
        assert status == 200, body
        # the error is the stream's last word: no [DONE] that would pass for success
        assert "[DONE]" not in body, body
        data = sse_data(body, done=False)
        chunks = [json.loads(x) for x in data]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if "choices" in c)
        assert text == "half an answer ", chunks
        err = chunks[-1]["error"]
        assert err["type"] == "server_error" and err["code"] == "upstream_error" and err["message"], err
        assert not any(c.get("choices") and c["choices"][0]["finish_reason"] for c in chunks[:-1]), chunks
    finally:
        d.cleanup()
        up.close()


def test_client_gone_mid_stream():
    fake = FakeOpenAI()
    d = Daemon(settings={"http-port": gv(0), "providers": gv(["dripper"])},
               groups={"providers/dripper": openai_backend(fake.url, "drip-model", "drip", quality=0.9)})
    try:
        url = http_url(d)
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"model": "drip-model", "stream": True,
                           "messages": [{"role": "user", "content": "go"}]}).encode()
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while got.count(b"data: ") < 3:
            got += s.recv(65536)
        assert b"200 OK" in got and b"event:" not in got, got
        s.close()  # gone after a few chunks: the completion is cancelled
        deadline = time.time() + 10 * SCALE
        while fake.disconnects == 0 and time.time() < deadline:
            time.sleep(0.05)
        assert fake.disconnects == 1, "the upstream stream was not cancelled"
        status, _, body = chat(url, model="local")
        assert status == 200, body
        assert d.proc.poll() is None
    finally:
        d.cleanup()
        fake.close()


# ------------------------------------------------------------------ two daemons


def test_openai_provider_against_a_second_ensembled():
    a = Daemon(settings={"http-port": gv(0)})
    b = None
    try:
        a_v1 = http_url(a) + "/v1"
        b = Daemon(settings={"http-port": gv(0), "providers": gv(["upstream"]),
                             "disabled-plugins": gv(["provider-local"])},
                   groups={"providers/upstream": openai_backend(a_v1, "local", quality=0.9)})
        # B's native complete: B's provider-openai -> A's /v1 -> A's local provider
        c = b.client()
        ack = c.ok("complete", {"prompt": "Relay this through two daemons", "model": "local"})
        assert ack["provider"] == "upstream", ack
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_RESULT":
                break
        r = ev["data"]["result"]
        assert r["provider"] == "upstream" and r["provider_plugin"] == "provider-openai", r
        assert "local provider" in r["response"] and "Relay this through two daemons" in r["response"], r
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0, r
        # streamed through both (B asks A for SSE with include_usage)
        ack = c.ok("complete", {"prompt": "Stream through both", "model": "local", "stream": True})
        chunks = []
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_CHUNK":
                chunks.append(ev["data"]["chunk"])
            elif ev["event"] == "COMPLETION_RESULT":
                break
        assert len(chunks) > 1 and "".join(chunks) == ev["data"]["result"]["response"], (chunks, ev)
        assert "Stream through both" in ev["data"]["result"]["response"], ev
        # and the npm client against B's /v1, answered by A
        res = node_client(http_url(b) + "/v1", "unused", "model=local")["plain"]
        assert res["ok"], res
        assert res["value"]["system_fingerprint"] == "ensemble-upstream", res
        assert "Relay this through two daemons" in res["value"]["content"], res
        c.close()
    finally:
        if b:
            b.cleanup()
        a.cleanup()


run_tests(globals())
