"""agent-semantic through the real daemon: store, query, similarity and delete
on the native socket, the Centerfire orchestrator-semantic.sock and HTTP;
the local embedding (labelled "local"), metadata filters, persistence across
a restart, the provider path (the daemon's embed verb on a provider-openai
backend) against a fake OpenAI-compatible /v1/embeddings server (and its
failures), and INVALID_PARAMETERS naming the field."""

import hashlib
import http.client
import json
import math
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from enslib import SCALE, Daemon, gv, refused_port, run_tests

CAT = "the cat sat on the mat"
CAT2 = "a cat was sitting on a mat"
TAX = "quarterly tax filing deadline"
ID_RE = re.compile(r"^c_[0-9a-f]{16}$")


# ------------------------------------------------------------------ helpers

def sem(c, action, data):
    return c.request(action, data, agent="semantic")


def sem_ok(c, action, data):
    r = sem(c, action, data)
    assert r["status"] == "success", r
    return r["data"]


def invalid(reply, field):
    assert reply["status"] == "error", reply
    err = reply["error"]
    assert err["code"] == "INVALID_PARAMETERS", reply
    assert err["details"]["field"] == field, reply
    assert field in err["message"], reply
    return err


def check_local(embedding):
    assert embedding["source"] == "local", embedding
    assert embedding["dims"] == 512 and isinstance(embedding["model"], str) and embedding["model"], embedding


def wait_until(cond, timeout=10, what="condition"):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def cf_socket(d):
    """orchestrator-semantic.sock once it accepts connections."""
    path = d.path("orchestrator-semantic.sock")

    def accepting():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    wait_until(accepting, what="orchestrator-semantic.sock")
    return path


def cf_request(path, rid, action, data):
    """One Centerfire request on a fresh connection; returns the reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    try:
        s.connect(path)
        msg = {"id": rid, "interface": "test", "agent": "semantic", "action": action, "data": data}
        s.sendall((json.dumps(msg) + "\n").encode())
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        lines = buf.decode().splitlines()
        assert len(lines) == 1, buf
        reply = json.loads(lines[0])
        assert reply["id"] == rid, reply
        return reply
    finally:
        s.close()


def http_post(d, path, body):
    url = d.http_url()
    m = re.match(r"http://([^:/]+):(\d+)", url)
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=10 * SCALE)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


class FakeEmbeddings:
    """An OpenAI-compatible /v1/embeddings: deterministic 16-dimensional
    bag-of-words vectors (so related texts are close), every request
    recorded; mode "fail" answers 500 with an OpenAI-style error."""

    def __init__(self):
        self.requests = []
        self.mode = "ok"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                fake.requests.append({"path": self.path, "body": body,
                                      "authorization": self.headers.get("Authorization")})
                if self.path != "/v1/embeddings":
                    return self.answer(404, {"error": {"message": "no such path"}})
                if fake.mode == "fail":
                    return self.answer(500, {"error": {"message": "embedding backend exploded", "type": "server_error"}})
                data = [{"object": "embedding", "index": i, "embedding": FakeEmbeddings.vector(t)}
                        for i, t in enumerate(body["input"])]
                data.reverse()  # out of order on purpose: the plugin must honour "index"
                self.answer(200, {"object": "list", "model": body["model"], "data": data,
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}})

            def answer(self, status, obj):
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def vector(text):
        v = [0.0] * 16
        for word in re.findall(r"\w+", text.lower()):
            h = hashlib.sha256(word.encode()).digest()
            v[h[0] % 16] += 1.0 if h[1] & 1 else -1.0
        return v

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def provider_daemon(fake, **settings):
    settings.setdefault("semantic-embeddings-provider", gv("emb"))
    settings.setdefault("semantic-embeddings-model", gv("emb-model"))
    settings.setdefault("providers", gv(["emb"]))
    os.environ["ENS_TEST_EMB_KEY"] = "sk-semantic-test"
    return Daemon(settings=settings,
                  groups={"providers/emb": {"plugin": gv("provider-openai"), "base-url": gv(fake.url),
                                            "models": gv(["emb"]), "embedding-models": gv(["emb-model"]),
                                            "api-key-env": gv("ENS_TEST_EMB_KEY"), "max-retries": gv(0)}})


# -------------------------------------------------------------------- tests

def test_local_store_query_similarity_delete_native():
    d = Daemon()
    try:
        c = d.client()
        ids = {}
        for text in (CAT, CAT2, TAX):
            r = sem_ok(c, "store_concept", {"text": text, "metadata": {"text_len": len(text)}})
            assert ID_RE.match(r["id"]), r
            assert r["replaced"] is False, r
            check_local(r["embedding"])
            ids[text] = r["id"]
        assert len(set(ids.values())) == 3

        q = sem_ok(c, "query_concepts", {"text": CAT, "top_k": 3})
        check_local(q["embedding"])
        assert q["searched"] == 3, q
        assert [h["id"] for h in q["results"]] == [ids[CAT], ids[CAT2], ids[TAX]], q
        scores = [h["score"] for h in q["results"]]
        assert scores[0] > 0.9 and scores[1] > scores[2] + 0.1, scores
        assert all(-1 <= s <= 1 for s in scores), scores
        assert q["results"][0]["text"] == CAT and q["results"][0]["metadata"] == {"text_len": len(CAT)}, q

        # a paraphrase finds the cat, not the taxes; top_k defaults to 5
        q = sem_ok(c, "query_concepts", {"text": "cat sitting on a mat"})
        assert len(q["results"]) == 3 and q["results"][-1]["id"] == ids[TAX], q
        assert q["results"][0]["id"] in (ids[CAT], ids[CAT2]), q
        q = sem_ok(c, "query_concepts", {"text": "tax deadline", "top_k": 1})
        assert [h["id"] for h in q["results"]] == [ids[TAX]], q

        near = sem_ok(c, "semantic_similarity", {"a": CAT, "b": CAT2})
        far = sem_ok(c, "semantic_similarity", {"a": CAT, "b": TAX})
        same = sem_ok(c, "semantic_similarity", {"a": CAT, "b": CAT})
        check_local(near["embedding"])
        assert near["similarity"] > far["similarity"] + 0.1, (near, far)
        assert abs(same["similarity"] - 1.0) < 1e-4, same
        assert -1 <= far["similarity"] <= 1, far

        # the same id replaces; a given id is kept
        r = sem_ok(c, "store_concept", {"id": ids[TAX], "text": "annual tax return deadline"})
        assert r["id"] == ids[TAX] and r["replaced"] is True, r
        r = sem_ok(c, "store_concept", {"id": "my-concept", "text": "Grüße aus Köln ☕"})
        assert r["id"] == "my-concept" and r["replaced"] is False, r
        q = sem_ok(c, "query_concepts", {"text": "grüße köln", "top_k": 1})
        assert q["results"][0]["id"] == "my-concept" and q["results"][0]["metadata"] == {}, q
        q = sem_ok(c, "query_concepts", {"text": "annual tax", "top_k": 10})
        assert q["searched"] == 4 and q["results"][0]["text"] == "annual tax return deadline", q

        r = sem_ok(c, "delete_concept", {"id": ids[CAT]})
        assert r == {"deleted": True, "id": ids[CAT]}, r
        r = sem_ok(c, "delete_concept", {"id": ids[CAT]})
        assert r == {"deleted": False, "id": ids[CAT]}, r
        q = sem_ok(c, "query_concepts", {"text": CAT, "top_k": 100})
        assert q["searched"] == 3 and ids[CAT] not in [h["id"] for h in q["results"]], q
        assert q["results"][0]["id"] == ids[CAT2], q
    finally:
        d.cleanup()


def test_filter_by_metadata():
    d = Daemon()
    try:
        c = d.client()
        docs = [("cats chase mice in the barn", {"kind": "animal", "lang": "en"}),
                ("cats sleep in the sun", {"kind": "animal", "lang": "en", "n": 2}),
                ("cats are independent pets", {"kind": "pet", "lang": "en"}),
                ("die katze schläft", {"kind": "animal", "lang": "de"})]
        ids = [sem_ok(c, "store_concept", {"text": t, "metadata": m})["id"] for t, m in docs]
        q = sem_ok(c, "query_concepts", {"text": "cats", "top_k": 10, "filter": {"kind": "animal"}})
        assert sorted(h["id"] for h in q["results"]) == sorted([ids[0], ids[1], ids[3]]), q
        assert q["searched"] == 3, q
        assert all(h["metadata"]["kind"] == "animal" for h in q["results"]), q
        q = sem_ok(c, "query_concepts", {"text": "cats", "filter": {"kind": "animal", "lang": "en"}})
        assert sorted(h["id"] for h in q["results"]) == sorted(ids[:2]), q
        q = sem_ok(c, "query_concepts", {"text": "cats", "filter": {"n": 2}})
        assert [h["id"] for h in q["results"]] == [ids[1]], q
        q = sem_ok(c, "query_concepts", {"text": "cats", "filter": {"kind": "plant"}})
        assert q["results"] == [] and q["searched"] == 0, q
        q = sem_ok(c, "query_concepts", {"text": "cats", "filter": {}})
        assert len(q["results"]) == 4, q
    finally:
        d.cleanup()


def test_every_action_via_centerfire_and_http():
    d = Daemon()
    try:
        path = cf_socket(d)
        r = cf_request(path, "cf-1", "store_concept", {"id": "cf-cat", "text": CAT, "metadata": {"via": "cf"}})
        assert r["status"] == "success" and r["data"]["id"] == "cf-cat", r
        check_local(r["data"]["embedding"])
        r = cf_request(path, "cf-2", "store_concept", {"text": TAX})
        assert r["status"] == "success" and ID_RE.match(r["data"]["id"]), r
        r = cf_request(path, "cf-3", "query_concepts", {"text": CAT2, "top_k": 2})
        assert r["status"] == "success" and r["data"]["results"][0]["id"] == "cf-cat", r
        check_local(r["data"]["embedding"])
        r = cf_request(path, "cf-4", "semantic_similarity", {"a": CAT, "b": CAT2})
        assert r["status"] == "success" and r["data"]["similarity"] > 0.1, r
        r = cf_request(path, "cf-5", "query_concepts", {"text": CAT, "top_k": 1000})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "top_k", r

        # HTTP: the Centerfire shape on /api/request, and /api/agents/semantic/{action}
        status, r = http_post(d, "/api/request", {"id": "h-1", "interface": "http", "agent": "semantic",
                                                  "action": "store_concept",
                                                  "data": {"id": "http-dog", "text": "a dog barked at the mailman",
                                                           "metadata": {"via": "http"}}})
        assert status == 200 and r["status"] == "success" and r["data"]["id"] == "http-dog", r
        status, r = http_post(d, "/api/request", {"id": "h-2", "agent": "semantic", "action": "query_concepts",
                                                  "data": {"text": "dog barking", "filter": {"via": "http"}}})
        assert status == 200 and [h["id"] for h in r["data"]["results"]] == ["http-dog"], r
        assert r["data"]["embedding"]["source"] == "local", r
        status, r = http_post(d, "/api/request", {"id": "h-3", "agent": "semantic", "action": "semantic_similarity",
                                                  "data": {"a": "dog", "b": "dog"}})
        assert status == 200 and abs(r["data"]["similarity"] - 1) < 1e-4, r
        status, r = http_post(d, "/api/request", {"id": "h-4", "agent": "semantic", "action": "delete_concept",
                                                  "data": {"id": "http-dog"}})
        assert status == 200 and r["data"] == {"deleted": True, "id": "http-dog"}, r
        status, r = http_post(d, "/api/request", {"id": "h-5", "agent": "semantic", "action": "store_concept",
                                                  "data": {"text": ""}})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", (status, r)
        assert r["error"]["details"]["field"] == "text", r
        status, r = http_post(d, "/api/agents/semantic/query_concepts", {"text": "cat on a mat", "top_k": 1})
        assert status == 200, (status, r)
        data = r.get("data", r)
        assert data["results"][0]["id"] == "cf-cat", r

        r = cf_request(path, "cf-6", "delete_concept", {"id": "cf-cat"})
        assert r["status"] == "success" and r["data"] == {"deleted": True, "id": "cf-cat"}, r
        c = d.client()
        q = sem_ok(c, "query_concepts", {"text": CAT, "top_k": 10})
        assert [h["text"] for h in q["results"]] == [TAX], q
    finally:
        d.cleanup()


def test_restart_keeps_concepts():
    d = Daemon()
    try:
        c = d.client()
        a = sem_ok(c, "store_concept", {"id": "keep-a", "text": CAT, "metadata": {"tag": "a", "n": [1, 2]}})
        b = sem_ok(c, "store_concept", {"text": CAT2, "metadata": {"tag": "b"}})
        sem_ok(c, "store_concept", {"id": "gone", "text": TAX})
        sem_ok(c, "store_concept", {"id": "keep-a", "text": "the cat sat on the red mat", "metadata": {"tag": "a2"}})
        assert sem_ok(c, "delete_concept", {"id": "gone"})["deleted"] is True
        before = sem_ok(c, "query_concepts", {"text": "cat on the mat", "top_k": 10})
        c.close()

        d.restart()
        c = d.client()
        after = sem_ok(c, "query_concepts", {"text": "cat on the mat", "top_k": 10})
        assert after["searched"] == 2, after
        assert [h["id"] for h in after["results"]] == [h["id"] for h in before["results"]], (before, after)
        # the stored vectors come back bit for bit, so scores stay the same
        for x, y in zip(before["results"], after["results"]):
            assert math.isclose(x["score"], y["score"], abs_tol=1e-6), (x, y)
        texts = {h["id"]: (h["text"], h["metadata"]) for h in after["results"]}
        assert texts["keep-a"] == ("the cat sat on the red mat", {"tag": "a2"}), texts
        assert texts[b["id"]] == (CAT2, {"tag": "b"}), texts
        assert a["id"] == "keep-a"
        assert sem_ok(c, "delete_concept", {"id": "gone"})["deleted"] is False

        # new concepts after a restart, then another restart
        n = sem_ok(c, "store_concept", {"text": "fresh concept after restart"})
        c.close()
        d.restart()
        c = d.client()
        q = sem_ok(c, "query_concepts", {"text": "fresh concept", "top_k": 10})
        assert q["searched"] == 3 and q["results"][0]["id"] == n["id"], q
        assert sem_ok(c, "delete_concept", {"id": b["id"]})["deleted"] is True
        c.close()
        d.restart()
        c = d.client()
        q = sem_ok(c, "query_concepts", {"text": "cat", "top_k": 10})
        assert sorted(h["id"] for h in q["results"]) == sorted(["keep-a", n["id"]]), q
    finally:
        d.cleanup()


def test_provider_embeddings():
    fake = FakeEmbeddings()
    d = provider_daemon(fake)
    try:
        c = d.client()
        r = sem_ok(c, "store_concept", {"id": "p-cat", "text": CAT})
        assert r["embedding"] == {"source": "provider:emb", "model": "emb-model", "dims": 16}, r
        sem_ok(c, "store_concept", {"id": "p-tax", "text": TAX, "metadata": {"k": 1}})
        req = fake.requests[0]
        assert req["path"] == "/v1/embeddings", req
        assert req["body"] == {"model": "emb-model", "input": [CAT]}, req
        assert req["authorization"] == "Bearer sk-semantic-test", req

        q = sem_ok(c, "query_concepts", {"text": "cat on the mat", "top_k": 2})
        assert q["embedding"]["source"] == "provider:emb" and q["searched"] == 2, q
        assert q["results"][0]["id"] == "p-cat", q
        assert fake.requests[-1]["body"]["input"] == ["cat on the mat"], fake.requests[-1]
        q = sem_ok(c, "query_concepts", {"text": "cat", "filter": {"k": 1}})
        assert [h["id"] for h in q["results"]] == ["p-tax"], q

        n = len(fake.requests)
        s = sem_ok(c, "semantic_similarity", {"a": CAT, "b": CAT})
        assert s["embedding"]["source"] == "provider:emb" and abs(s["similarity"] - 1) < 1e-5, s
        assert fake.requests[n]["body"]["input"] == [CAT, CAT], fake.requests[n]
        s1 = sem_ok(c, "semantic_similarity", {"a": "x y z", "b": "x y w"})["similarity"]
        v1, v2 = FakeEmbeddings.vector("x y z"), FakeEmbeddings.vector("x y w")
        want = sum(p * q for p, q in zip(v1, v2)) / math.sqrt(sum(p * p for p in v1) * sum(q * q for q in v2))
        assert math.isclose(s1, want, abs_tol=1e-5), (s1, want)

        # they went through the daemon's embed path: the backend counts them
        emb = [p for p in c.ok("providers.list")["providers"] if p["name"] == "emb"][0]
        assert emb["calls"] == len(fake.requests) and emb["failures"] == 0, emb

        # upstream failure: EMBEDDINGS_FAILED with the upstream message; nothing stored
        fake.mode = "fail"
        for action, data in (("store_concept", {"id": "p-new", "text": "never stored"}),
                             ("query_concepts", {"text": "cat"}),
                             ("semantic_similarity", {"a": "a", "b": "b"})):
            r = sem(c, action, data)
            assert r["status"] == "error" and r["error"]["code"] == "EMBEDDINGS_FAILED", r
            assert "embedding backend exploded" in r["error"]["message"] and "HTTP 500" in r["error"]["message"], r
            assert r["error"]["details"]["reason"] == "UPSTREAM_ERROR", r
            assert r["error"]["details"]["provider"] == "emb", r
        fake.mode = "ok"
        emb = [p for p in c.ok("providers.list")["providers"] if p["name"] == "emb"][0]
        assert emb["failures"] == 3, emb
        assert sem_ok(c, "delete_concept", {"id": "p-new"})["deleted"] is False
        assert sem_ok(c, "delete_concept", {"id": "p-tax"})["deleted"] is True
        c.close()

        # provider concepts survive a restart, and a local query searches
        # only local ones (never vectors of another space)
        d.restart()
        c = d.client()
        q = sem_ok(c, "query_concepts", {"text": CAT})
        assert q["searched"] == 1 and q["results"][0]["id"] == "p-cat", q
        d.settings["semantic-embeddings-provider"] = gv("")
        c.close()
        d.restart()
        c = d.client()
        sem_ok(c, "store_concept", {"id": "l-cat", "text": CAT2})
        q = sem_ok(c, "query_concepts", {"text": CAT, "top_k": 10})
        check_local(q["embedding"])
        assert q["searched"] == 1 and [h["id"] for h in q["results"]] == ["l-cat"], q
    finally:
        d.cleanup()
        fake.close()


def test_provider_unreachable_and_unconfigured():
    # a port nobody listens on, held so that nobody can start to
    dead, port = refused_port()
    d = Daemon(settings={"semantic-embeddings-provider": gv("dead"), "providers": gv(["dead"])},
               groups={"providers/dead": {"plugin": gv("provider-openai"), "max-retries": gv(0),
                                          "embedding-models": gv(["e"]),
                                          "base-url": gv(f"http://127.0.0.1:{port}/v1")}})
    try:
        c = d.client()
        r = sem(c, "store_concept", {"text": "anything"})
        assert r["status"] == "error" and r["error"]["code"] == "EMBEDDINGS_FAILED", r
        assert r["error"]["details"]["provider"] == "dead", r
    finally:
        d.cleanup()
        dead.close()
    d = Daemon(settings={"semantic-embeddings-provider": gv("nowhere")})
    try:
        c = d.client()
        r = sem(c, "semantic_similarity", {"a": "x", "b": "y"})
        assert r["status"] == "error" and r["error"]["code"] == "EMBEDDINGS_FAILED", r
        assert '"nowhere"' in r["error"]["message"] and r["error"]["details"]["reason"] == "UNKNOWN_MODEL", r
    finally:
        d.cleanup()


def test_bad_parameters():
    d = Daemon()
    try:
        c = d.client()
        invalid(sem(c, "store_concept", {}), "text")
        invalid(sem(c, "store_concept", {"text": ""}), "text")
        invalid(sem(c, "store_concept", {"text": "   "}), "text")
        invalid(sem(c, "store_concept", {"text": 42}), "text")
        invalid(sem(c, "store_concept", {"text": ["a"]}), "text")
        invalid(sem(c, "store_concept", {"text": "ok", "id": 7}), "id")
        invalid(sem(c, "store_concept", {"text": "ok", "id": ""}), "id")
        invalid(sem(c, "store_concept", {"text": "ok", "id": "x" * 300}), "id")
        invalid(sem(c, "store_concept", {"text": "ok", "metadata": "tag"}), "metadata")
        invalid(sem(c, "store_concept", {"text": "ok", "metadata": [1]}), "metadata")
        invalid(sem(c, "query_concepts", {"top_k": 3}), "text")
        invalid(sem(c, "query_concepts", {"text": None}), "text")
        invalid(sem(c, "query_concepts", {"text": "q", "top_k": 0}), "top_k")
        invalid(sem(c, "query_concepts", {"text": "q", "top_k": 1000}), "top_k")
        invalid(sem(c, "query_concepts", {"text": "q", "top_k": -1}), "top_k")
        invalid(sem(c, "query_concepts", {"text": "q", "top_k": 2.5}), "top_k")
        invalid(sem(c, "query_concepts", {"text": "q", "top_k": "5"}), "top_k")
        invalid(sem(c, "query_concepts", {"text": "q", "filter": "kind=a"}), "filter")
        invalid(sem(c, "query_concepts", {"text": "q", "filter": [["kind", "a"]]}), "filter")
        invalid(sem(c, "semantic_similarity", {"b": "x"}), "a")
        invalid(sem(c, "semantic_similarity", {"a": "x"}), "b")
        invalid(sem(c, "semantic_similarity", {"a": "x", "b": 3}), "b")
        invalid(sem(c, "delete_concept", {}), "id")
        invalid(sem(c, "delete_concept", {"id": 12}), "id")
        invalid(sem(c, "store_concept", [1, 2]), "data")
        # the limits themselves are fine
        assert sem_ok(c, "query_concepts", {"text": "q", "top_k": 1})["results"] == []
        assert sem_ok(c, "query_concepts", {"text": "q", "top_k": 100, "filter": None})["searched"] == 0
        r = sem(c, "no_such_action", {})
        assert r["status"] == "error" and r["error"]["code"] == "UNKNOWN_ACTION", r
        # a text of punctuation only still embeds, and equals itself
        s = sem_ok(c, "semantic_similarity", {"a": "?!", "b": "?!"})
        assert abs(s["similarity"] - 1) < 1e-4, s
    finally:
        d.cleanup()


run_tests(globals())
