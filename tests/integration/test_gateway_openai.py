"""The OpenAI-compatible gateway as its users meet it: the official `openai`
npm client (tests/js/openai-gateway.mjs), unchanged, against the real daemon
in front of fake upstreams on loopback: chat, stream with usage, tools (the
tool call sent back with content null), embeddings (the client's default
base64 and float), and 401, 404, 422, 400, 429, 5xx and a stream broken
after its first chunk, each as the error class a caller catches.  Then
/v1/embeddings and the embed verb on their own: routing among the backends
that embed, fallback, the offline provider's embeddings, and bad input."""

import base64
import json
import math
import os
import re
import struct
import subprocess
import tempfile

from enslib import Daemon, SCALE, gv, run_tests
from fake_openai import FakeOpenAI
from fake_upstream import FakeUpstream

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
TOKEN = "gw-s3cret"


def http_url(d):
    return re.search(r"transport-http: listening on (http://127\.0\.0\.1:\d+)", d.read_log()).group(1)


def backend(url, models=(), **extra):
    group = {"plugin": gv("provider-openai"), "base-url": gv(url), "models": gv(list(models)),
             "max-retries": gv(0), "timeout-ms": gv(10000)}
    group.update({k: gv(v) for k, v in extra.items()})
    return group


def post(url, path, body, token=None, raw=None):
    cmd = ["curl", "-s", "-S", "-i", "--max-time", str(int(30 * SCALE)), "-H", "Content-Type: application/json",
           "--data-binary", raw if raw is not None else json.dumps(body)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    r = subprocess.run(cmd + [url + path], capture_output=True, timeout=40 * SCALE)
    assert r.returncode == 0, r
    head, _, rest = r.stdout.decode().partition("\r\n\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in head.split("\r\n")[1:])}
    return int(head.split(" ", 2)[1]), headers, json.loads(rest)


def test_official_client_against_the_gateway():
    up, oa = FakeUpstream(), FakeOpenAI()
    tmp = tempfile.mkdtemp(prefix="ens-gw-tok-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    groups = {
        "providers/gw-chat": backend(up.base("chunks=3"), ["gw-chat"]),
        "providers/gw-tools": backend(oa.url, ["gw-tools"], **{"model-map": {"gw-tools": "tools"}}),
        "providers/gw-embed": backend(up.base("dims=8"), [], **{"embedding-models": ["gw-embed"]}),
        "providers/gw-cut": backend(up.base("chunks=4,cut=2"), ["gw-cut"]),
        "providers/gw-limited": backend(up.base("status=429"), ["gw-limited"]),
        "providers/gw-broken": backend(up.base("status=500"), ["gw-broken"]),
    }
    d = Daemon(settings={"http-port": gv(0), "http-token-file": gv(token_file),
                         "providers": gv([g.split("/")[1] for g in groups])}, groups=groups)
    try:
        env = dict(os.environ)
        env.setdefault("NODE_PATH", os.path.join(JS_DIR, "node_modules"))
        r = subprocess.run(["node", "openai-gateway.mjs", http_url(d) + "/v1", TOKEN], cwd=JS_DIR,
                           capture_output=True, text=True, timeout=90 * SCALE, env=env)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])

        chat = res["chat"]["value"]
        assert chat["model"] == "gw-chat" and chat["content"] == "w0 w1 w2 " and chat["finish_reason"] == "stop", chat
        assert re.fullmatch(r"req_[0-9a-f]{16}", chat["requestID"]), chat
        s = res["stream"]["value"]
        assert s["content"] == "w0 w1 w2 " and s["models"] == ["gw-chat"] and s["finish_reasons"] == ["stop"], s
        assert s["usage"]["total_tokens"] == s["usage"]["prompt_tokens"] + s["usage"]["completion_tokens"] > 0, s
        t = res["tools"]["value"]
        assert t["content"] is None and t["finish_reason"] == "tool_calls", t
        assert t["tool_calls"][0]["function"]["name"] == "lookup", t
        sent = oa.requests[-1]["body"]["messages"]
        assert sent[1]["role"] == "assistant" and sent[1]["content"] is None, sent
        assert sent[1]["tool_calls"][0]["id"] == t["tool_calls"][0]["id"], sent

        e64, ef = res["embeddings_default"]["value"], res["embeddings_float"]["value"]
        for e in (e64, ef):
            assert e["object"] == "list" and [x["index"] for x in e["data"]] == [0, 1], e
            assert all(len(x["embedding"]) == 8 for x in e["data"]), e
            assert e["usage"]["prompt_tokens"] > 0, e
        # the client asked for base64 (its default) and decoded float32s
        assert all(struct.unpack("<f", struct.pack("<f", p))[0] == p for x in e64["data"] for p in x["embedding"]), e64
        for a, b in zip(e64["data"], ef["data"]):
            assert all(math.isclose(p, q, rel_tol=1e-6, abs_tol=1e-7) for p, q in zip(a["embedding"], b["embedding"]))
        assert e64["data"][0]["embedding"] != e64["data"][1]["embedding"]

        def error(name, cls, status, code=None, param=None):
            e = res[name]
            assert not e["ok"], (name, e)
            err = e["error"]
            assert err["apiError"] and err["className"] == cls and err["status"] == status, (name, err)
            assert err["message"], (name, err)
            if code:
                assert err["code"] == code, (name, err)
            if param:
                assert err["param"] == param, (name, err)
            if status:
                assert re.fullmatch(r"req_[0-9a-f]{16}", err["requestID"] or ""), (name, err)
            return err

        error("error_401", "AuthenticationError", 401, "invalid_api_key")
        error("error_404", "NotFoundError", 404, "model_not_found", "model")
        error("error_404_embeddings", "NotFoundError", 404, "model_not_found", "model")
        error("error_422", "UnprocessableEntityError", 422, "model_not_supported", "model")
        error("error_400", "BadRequestError", 400, None, "input")
        error("error_429", "RateLimitError", 429, "rate_limit_exceeded")
        error("error_5xx", "InternalServerError", 502, "upstream_error")
        b = res["broken_stream"]["value"]
        assert b["threw"] and b["content"] == "w0 w1 ", b
        assert b["error"]["apiError"] and "ended before the answer was complete" in b["error"]["message"], b
    finally:
        d.cleanup()
        up.close()
        oa.close()
        os.unlink(token_file)
        os.rmdir(tmp)


def floats(b64):
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_embeddings_routing_fallback_and_bad_input():
    up = FakeUpstream()
    groups = {
        # best ranked, but its upstream fails: the next backend that embeds answers
        "providers/emb-bad": backend(up.base("status=500"), [], quality=0.99,
                                     **{"embedding-models": ["text-embedding-3-small"]}),
        "providers/emb-good": backend(up.base("dims=16"), [], quality=0.5,
                                      **{"embedding-models": ["text-embedding-3-small", "other-embedding"]}),
        # a better chat backend is never asked for embeddings
        "providers/chat": backend(up.base(), ["gpt-x"], quality=1.0),
    }
    d = Daemon(settings={"http-port": gv(0), "providers": gv(list(g.split("/")[1] for g in groups))}, groups=groups)
    try:
        c = d.client()
        url = http_url(d)
        ack = c.ok("embed", {"input": ["one", "two", "three"]})
        assert ack["provider"] == "emb-bad" and ack["model"] == "text-embedding-3-small", ack
        while True:
            ev = c.next_event()
            if ev["event"] == "COMPLETION_RESULT":
                break
        res = ev["data"]["result"]
        assert res["provider"] == "emb-good" and res["attempts"] == 2, res
        assert len(res["embeddings"]) == 3 and all(len(v) == 16 for v in res["embeddings"]), res
        assert res["dims"] == 16 and res["usage"]["input_tokens"] > 0 and "response" not in res, res
        chat = [p for p in c.ok("providers.list")["providers"] if p["name"] == "chat"][0]
        assert chat["calls"] == 0, chat
        bad = [p for p in c.ok("providers.list")["providers"] if p["name"] == "emb-bad"][0]
        assert bad["failures"] == 1, bad
        assert c.ok("health")["completions"]["fallbacks"] == 1

        # by model and by backend; float and base64 agree
        status, headers, body = post(url, "/v1/embeddings", {"model": "other-embedding", "input": "hello"})
        assert status == 200 and len(body["data"]) == 1 and len(body["data"][0]["embedding"]) == 16, body
        assert headers["x-request-id"], headers
        status, _, b64 = post(url, "/v1/embeddings", {"model": "other-embedding", "input": "hello",
                                                      "encoding_format": "base64"})
        assert status == 200 and isinstance(b64["data"][0]["embedding"], str), b64
        got = floats(b64["data"][0]["embedding"])
        assert all(math.isclose(p, q, rel_tol=1e-6, abs_tol=1e-7) for p, q in zip(got, body["data"][0]["embedding"]))
        status, _, body = post(url, "/v1/embeddings", {"model": "emb-good", "input": ["a", "b"]})
        assert status == 200 and [x["index"] for x in body["data"]] == [0, 1], body

        # bad input: status, OpenAI error body, the parameter named; nothing else disturbed
        cases = [
            ({}, 400, "input"),
            ({"input": None}, 400, "input"),
            ({"input": ""}, 400, "input"),
            ({"input": []}, 400, "input"),
            ({"input": ["ok", 3]}, 400, "input"),
            ({"input": ["ok", ""]}, 400, "input"),
            ({"input": ["x"] * 2049}, 400, "input"),
            ({"input": {"text": "x"}}, 400, "input"),
            ({"input": [[1, 2]]}, 400, "input"),
            ({"input": [1, 2, 3]}, 422, "input"),
            ({"input": "x", "model": 5}, 400, "model"),
            ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
            ({"input": "x", "dimensions": 0}, 400, "dimensions"),
            ({"input": "x", "dimensions": 1.5}, 400, "dimensions"),
            ({"input": "x", "dimensions": "8"}, 400, "dimensions"),
            ({"input": "x", "model": "gpt-x"}, 422, "model"),
            ({"input": "x", "model": "nope"}, 404, "model"),
        ]
        for req, want, param in cases:
            status, headers, body = post(url, "/v1/embeddings", req)
            assert status == want, (req, status, body)
            err = body["error"]
            assert err["param"] == param and err["message"] and err["type"] == "invalid_request_error", (req, err)
            assert headers["x-request-id"], headers
        status, _, body = post(url, "/v1/embeddings", None, raw="{not json")
        assert status == 400 and body["error"]["type"] == "invalid_request_error", body
        # the native verb names its fields too
        for req, field in (({}, "input"), ({"input": "x", "dimensions": -1}, "dimensions"),
                           ({"input": "x", "client_id": 5}, "client_id")):
            err = c.request("embed", req)["error"]
            assert err["code"] == "INVALID_PARAMETERS" and err["details"]["field"] == field, (req, err)
        err = c.request("complete", {"prompt": "x", "kind": "embeddings"})["error"]
        assert err["code"] == "INVALID_PARAMETERS" and err["details"]["field"] == "kind", err
        err = c.request("complete", {"prompt": "x", "model": "other-embedding"})["error"]
        assert err["code"] == "UNSUPPORTED_MODEL" and err["details"]["field"] == "model", err
        # the daemon still serves
        status, _, body = post(url, "/v1/embeddings", {"input": "still here"})
        assert status == 200, body
    finally:
        d.cleanup()
        up.close()


def test_offline_embeddings():
    """With no LLM configured, the offline provider makes embeddings: texts
    that share words are closer than texts that do not."""
    d = Daemon(settings={"http-port": gv(0)})
    try:
        url = http_url(d)
        status, _, body = post(url, "/v1/embeddings", {"model": "text-embedding-3-small",
                                                       "input": ["the cat sat on the mat", "a cat sat on a mat",
                                                                 "quarterly tax law changes"]})
        assert status == 200 and body["model"] == "local-embedding", body
        v = [x["embedding"] for x in body["data"]]
        assert all(len(x) == 256 for x in v), [len(x) for x in v]
        assert all(math.isclose(sum(p * p for p in x), 1.0, rel_tol=1e-3) for x in v)

        def cos(a, b):
            return sum(p * q for p, q in zip(a, b))

        assert cos(v[0], v[1]) > 0.5 > cos(v[0], v[2]), (cos(v[0], v[1]), cos(v[0], v[2]))
        status, _, again = post(url, "/v1/embeddings", {"input": "the cat sat on the mat", "dimensions": 64})
        assert status == 200 and len(again["data"][0]["embedding"]) == 64, again
        status, _, body = post(url, "/v1/embeddings", {"input": "x", "dimensions": 5000})
        assert status == 400 and "4096" in body["error"]["message"], body
    finally:
        d.cleanup()


run_tests(globals())
