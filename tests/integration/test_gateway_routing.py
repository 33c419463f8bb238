"""Routing a user can trust, and what the OpenAI-compatible surface owes its
clients, through the real daemon against fake upstreams: no hidden output
cap (max_tokens goes upstream only when asked; Anthropic, which needs one,
gets the model's maximum), content null passed through as null, the model
a response names is the upstream's, an x-request-id on every HTTP answer,
and a router-policy naming no loaded router refused at start too."""

import json
import os
import re
import subprocess

from enslib import Daemon, SCALE, gv, run_tests
from fake_anthropic import FakeAnthropic
from fake_openai import FakeOpenAI


KEY_ENV = "ENS_TEST_ROUTING_KEY"


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
    text = r.stdout.decode("utf-8", "replace")
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


def http_url(d):
    return re.search(r"transport-http: listening on (http://127\.0\.0\.1:\d+)", d.read_log()).group(1)


def test_no_hidden_output_cap_and_content_null():
    oa, an = FakeOpenAI(), FakeAnthropic()
    os.environ[KEY_ENV] = "sk-test"
    groups = {
        "providers/gpt": {"plugin": gv("provider-openai"), "base-url": gv(oa.url), "models": gv(["gpt-x"]),
                          "max-retries": gv(0)},
        "providers/claude": {"plugin": gv("provider-anthropic"), "base-url": gv(an.url_without_v1),
                             "api-key-env": gv(KEY_ENV), "models": gv(["claude-sonnet-4-5", "claude-3-5-haiku"]),
                             "max-retries": gv(0)},
        "providers/capped": {"plugin": gv("provider-anthropic"), "base-url": gv(an.url_without_v1),
                             "api-key-env": gv(KEY_ENV), "models": gv(["claude-capped"]),
                             "max-output-tokens": gv(777), "max-retries": gv(0)},
    }
    d = Daemon(settings={"providers": gv(["gpt", "claude", "capped"]), "http-port": gv(0)}, groups=groups)
    try:
        c = d.client()
        url = http_url(d)
        for stream in (False, True):
            c.ok("complete", {"prompt": "hi", "model": "gpt-x", "stream": stream})
            while c.next_event()["event"] != "COMPLETION_RESULT":
                pass
        assert [("max_tokens" in r["body"]) for r in oa.requests] == [False, False], oa.requests
        c.ok("complete", {"prompt": "hi", "model": "gpt-x", "max_tokens": 42})
        while c.next_event()["event"] != "COMPLETION_RESULT":
            pass
        assert oa.requests[-1]["body"]["max_tokens"] == 42, oa.requests[-1]

        # Anthropic needs max_tokens: the model's maximum, or the backend's setting
        for model in ("claude-sonnet-4-5", "claude-3-5-haiku", "claude-capped"):
            status, _, body = curl(url + "/v1/chat/completions",
                                   {"model": model, "messages": [{"role": "user", "content": "hi"}]})
            assert status == 200, body
            assert json.loads(body)["model"] == model, body
        assert [r["body"]["max_tokens"] for r in an.requests] == [64000, 8192, 777], an.requests
        status, _, body = curl(url + "/v1/chat/completions", {"model": "claude-sonnet-4-5", "max_tokens": 5,
                                                              "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and an.requests[-1]["body"]["max_tokens"] == 5, (body, an.requests[-1])

        # content null (an assistant turn that called a tool) reaches the upstream as null
        messages = [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
        ]
        status, _, body = curl(url + "/v1/chat/completions", {"model": "gpt-x", "messages": messages})
        assert status == 200, body
        sent = oa.requests[-1]["body"]["messages"]
        assert sent[1]["content"] is None and sent[1]["tool_calls"][0]["id"] == "call_1", sent
        # the native protocol takes it too; a user turn without content is still refused
        c.ok("complete", {"model": "gpt-x", "messages": messages})
        while c.next_event()["event"] != "COMPLETION_RESULT":
            pass
        assert oa.requests[-1]["body"]["messages"][1]["content"] is None, oa.requests[-1]
        bad = c.request("complete", {"model": "gpt-x", "messages": [{"role": "user", "content": None}]})
        assert bad["error"]["code"] == "INVALID_PARAMETERS" and bad["error"]["details"]["field"] == "messages", bad
    finally:
        d.cleanup()
        oa.close()
        an.close()


def test_x_request_id_on_every_answer():
    fake = FakeOpenAI()
    d = Daemon(settings={"http-port": gv(0), "http-max-body-bytes": gv(4096), "providers": gv(["gpt"])},
               groups={"providers/gpt": {"plugin": gv("provider-openai"), "base-url": gv(fake.url),
                                         "models": gv(["gpt-x"]), "max-retries": gv(0)}})
    try:
        url = http_url(d)
        seen = set()
        answers = [
            curl(url + "/health"),
            curl(url + "/v1/models"),
            curl(url + "/v1/chat/completions", {"model": "gpt-x", "messages": [{"role": "user", "content": "x"}]}),
            curl(url + "/v1/chat/completions", {"model": "gpt-x", "stream": True,
                                                "messages": [{"role": "user", "content": "x"}]}),
            curl(url + "/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
            curl(url + "/v1/chat/completions", raw="{not json"),
            curl(url + "/no/such/route"),
            curl(url + "/v1/models", method="DELETE"),
            curl(url + "/v1/chat/completions", raw="x" * 5000),  # over http-max-body-bytes: 413 from the headers
        ]
        statuses = [a[0] for a in answers]
        assert statuses == [200, 200, 200, 200, 404, 400, 404, 405, 413], statuses
        for status, headers, body in answers:
            rid = headers.get("x-request-id")
            assert rid and re.fullmatch(r"req_[0-9a-f]{16}", rid), (status, headers)
            seen.add(rid)
        assert len(seen) == len(answers), seen  # one each
        # a client's own id is kept; one that is not a valid id is replaced
        _, headers, _ = curl(url + "/health", headers={"X-Request-Id": "trace-42.a:b_c"})
        assert headers["x-request-id"] == "trace-42.a:b_c", headers
        _, headers, _ = curl(url + "/health", headers={"X-Request-Id": "bad id;x"})
        assert re.fullmatch(r"req_[0-9a-f]{16}", headers["x-request-id"]), headers
        _, headers, _ = curl(url + "/health", headers={"X-Request-Id": "a" * 129})
        assert re.fullmatch(r"req_[0-9a-f]{16}", headers["x-request-id"]), headers
    finally:
        d.cleanup()
        fake.close()


def test_unknown_router_policy_at_start():
    d = Daemon(settings={"router-policy": gv("no-such-policy")})
    try:
        assert ('setting router-policy: no router plugin loaded is called "no-such-policy"; the policies are: '
                in d.read_log()), d.read_log()
        c = d.client()
        r = c.ok("route", {"token_count": 10})
        assert r["policy"] == "multifactor" and r["provider"] == "local", r
        assert c.ok("health")["completions"]["router_policy"] == "multifactor"
    finally:
        d.cleanup()


run_tests(globals())
