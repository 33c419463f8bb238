"""The HTTP transport serves plain requests on connections of its own,
without libsoup (plugins/transport-http/ens-http-conn.c): a connection whose
first request is there, whole and plain, when it is accepted.  Any other
connection is libsoup's from the start, and one of its own goes to libsoup,
with what was read already, at the first request that is not plain.
Through the real daemon, raw sockets as clients send them: keep-alive,
pipelined, split across writes, and everything unusual.  A client's request
is made to be there at the accept by sending it while the daemon is stopped
(SIGSTOP: the kernel completes the connection meanwhile).  The transport's
own counters (plugins.list: requests_served_directly,
connections_handed_over) tell which way each went."""

import json
import os
import re
import signal
import socket
import time

from enslib import Daemon, SCALE, gv, run_tests

HTTP_RE = re.compile(r"transport-http: listening on http://([0-9.]+):(\d+)")
CHAT = {"messages": [{"role": "user", "content": "Say hello."}]}
STATUS_RE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def start(**settings):
    settings.setdefault("http-port", gv(0))
    d = Daemon(settings=settings)
    try:
        return d, int(HTTP_RE.search(d.read_log()).group(2))
    except BaseException:
        d.cleanup()
        raise


def counters(d):
    c = d.client()
    try:
        plugins = c.ok("plugins.list")["plugins"]
    finally:
        c.close()
    info = next(p for p in plugins if p["id"] == "transport-http")["info"]
    return info["requests_served_directly"], info["connections_handed_over"]


def request(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


class Conn:
    """One keep-alive connection that reads whole answers (Content-Length
    or chunked).  With @first, that is sent while @d is stopped: it is there
    when the daemon accepts the connection."""

    def __init__(self, port, d=None, first=None):
        self.buf = b""
        if first is None:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
            return
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
            self.s.sendall(first)
            time.sleep(0.05)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def answer(self):
        """(status, headers dict with lower-case names, body bytes)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            assert headers.get("transfer-encoding") == "chunked", headers
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, rest = self.buf.split(b"\r\n", 1)
                n = int(size_line, 16)
                while len(rest) < n + 2:
                    self._fill()
                    size_line, rest = self.buf.split(b"\r\n", 1)
                body += rest[:n]
                self.buf = rest[n + 2:]
                if n == 0:
                    break
        return status, headers, body

    def closed_by_server(self):
        try:
            self.s.settimeout(5 * SCALE)
            return self.s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        self.s.close()


def completion_text(body):
    return json.loads(body)["choices"][0]["message"]["content"]


# ---------------------------------------------------------------- tests


def test_plain_requests_keep_their_connection():
    d, port = start()
    try:
        c = Conn(port, d, request("POST", "/v1/chat/completions", CHAT, {"X-Request-Id": "mine-1"}))
        status, h, body = c.answer()
        assert status == 200, body
        assert completion_text(body), body
        # the headers libsoup sends, in its words
        assert h["x-request-id"] == "mine-1", h
        assert h["content-type"] == "application/json", h
        assert h["server"].startswith("ensembled/0.1 "), h
        assert re.match(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$", h["date"]), h
        c.send(request("GET", "/health", headers={"X-Request-Id": "no spaces allowed"}))
        status, h, body = c.answer()
        assert status == 200 and json.loads(body)["status"] == "healthy", body
        assert re.match(r"req_[0-9a-f]{16}$", h["x-request-id"]), h  # an invalid id is replaced
        c.send(request("GET", "/v1/models"))
        status, h, body = c.answer()
        assert status == 200 and json.loads(body)["object"] == "list", body
        c.send(request("POST", "/v1/embeddings", {"input": "x"}))
        status, h, body = c.answer()
        assert status == 200 and json.loads(body)["data"][0]["embedding"], (status, body)
        assert counters(d) == (4, 0)
        c.close()
    finally:
        d.cleanup()


def test_bad_input_on_a_connection_of_its_own():
    """Malformed and mistyped bodies on a plain connection get OpenAI's 400
    with the field named, and the connection goes on serving."""
    d, port = start()
    try:
        bad = b"{not json"
        c = Conn(port, d, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(bad)
                 + bad)
        status, h, body = c.answer()
        err = json.loads(body)["error"]
        assert status == 400 and err["type"] == "invalid_request_error", (status, body)
        assert re.match(r"req_[0-9a-f]{16}$", h["x-request-id"]), h
        c.send(request("POST", "/v1/chat/completions", {"messages": 5}))
        status, _, body = c.answer()
        err = json.loads(body)["error"]
        assert status in (400, 422) and err["param"] == "messages", (status, body)
        c.send(request("POST", "/v1/embeddings", {"input": 7}))
        status, _, body = c.answer()
        assert status in (400, 422) and "error" in json.loads(body), (status, body)
        c.send(request("POST", "/v1/chat/completions", CHAT))
        status, _, body = c.answer()
        assert status == 200 and completion_text(body), body
        assert counters(d) == (4, 0)
        c.close()
    finally:
        d.cleanup()


def test_pipelined_requests_are_answered_in_order():
    d, port = start()
    try:
        # two plain ones, one that is not (libsoup takes over), one more
        c = Conn(port, d, request("POST", "/v1/chat/completions", CHAT) + request("GET", "/health")
                 + request("GET", "/api/agents") + request("GET", "/health"))
        answers = [c.answer() for _ in range(4)]
        assert [a[0] for a in answers] == [200, 200, 200, 200], answers
        assert completion_text(answers[0][2])
        assert json.loads(answers[1][2])["status"] == "healthy"
        assert "agents" in json.loads(answers[2][2])
        assert json.loads(answers[3][2])["status"] == "healthy"
        assert counters(d) == (2, 1)
        c.close()
    finally:
        d.cleanup()


def test_a_first_request_not_there_whole_is_libsoups():
    """Split across writes (part of it there at the accept), or sent late
    (nothing there): libsoup serves the connection, and keeps it."""
    d, port = start()
    try:
        whole = request("POST", "/v1/chat/completions", CHAT)
        for early in (whole[:40], None):
            c = Conn(port, d, early) if early else Conn(port)
            time.sleep(0.2)
            c.send(whole[len(early or b""):])
            status, _, body = c.answer()
            assert status == 200 and completion_text(body), body
            c.send(request("GET", "/health"))
            assert c.answer()[0] == 200
            c.close()
        assert counters(d) == (0, 2)
    finally:
        d.cleanup()


def test_unusual_requests_get_libsoups_answers():
    d, port = start(**{"http-max-body-bytes": gv(2048), "http-cors-origins": gv(["http://ui.example"])})
    try:
        chat = json.dumps(CHAT).encode()
        cases = [
            # (raw request, expected status, check of the answer)
            (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             + b"%x\r\n" % len(chat) + chat + b"\r\n0\r\n\r\n", 411, None),
            (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413, None),
            (request("POST", "/v1/chat/completions", CHAT, {"Origin": "http://ui.example"}), 200,
             lambda h, b: h.get("access-control-allow-origin") == "http://ui.example"),
            (request("POST", "/v1/chat/completions", dict(CHAT, stream=True)), 200,
             lambda h, b: h["content-type"].startswith("text/event-stream") and b"data: [DONE]" in b),
            (request("GET", "/health?verbose=1"), 200, None),
            (request("GET", "/health/"), 200, None),
            (request("HEAD", "/health"), 200, lambda h, b: b == b""),
            (b"GET /health HTTP/1.1\r\n\r\n", 400, None),  # no Host
            (b"GET /health HTTP/1.0\r\n\r\n", 200, lambda h, b: json.loads(b)["status"] == "healthy"),
        ]
        for raw, want, check in cases:
            c = Conn(port, d, raw)
            if raw.startswith(b"HEAD"):
                while b"\r\n\r\n" not in c.buf:
                    c._fill()
                status = int(STATUS_RE.match(c.buf).group(1))
                h, b = {}, b""
            else:
                status, h, b = c.answer()
            assert status == want, (raw[:60], status, b[:200])
            if check:
                assert check(h, b), (raw[:60], h, b[:300])
            c.close()
        served, handed = counters(d)
        assert served == 0 and handed == len(cases), (served, handed)
    finally:
        d.cleanup()


def test_connection_close_and_client_end():
    d, port = start()
    try:
        c = Conn(port, d, request("GET", "/health", headers={"Connection": "close"}))
        assert c.answer()[0] == 200
        assert c.closed_by_server()
        c.close()
        # a client that sends its request and its end: answered, then closed
        c = Conn(port, d, request("POST", "/v1/chat/completions", CHAT))
        c.s.shutdown(socket.SHUT_WR)
        status, _, body = c.answer()
        assert status == 200 and completion_text(body), body
        assert c.closed_by_server()
        c.close()
        # clients gone before their answers leave nothing behind
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(request("POST", "/v1/chat/completions", CHAT))
                s.close()
            time.sleep(0.05)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        deadline = time.time() + 10 * SCALE
        while counters(d) != (22, 0) and time.time() < deadline:
            time.sleep(0.05)
        assert counters(d) == (22, 0), counters(d)
        c = d.client()
        h = c.ok("health")
        c.close()
        assert h["completions"]["running"] == 0 and h["completions"]["queued"] == 0, h
        assert h["connections"] <= 2, h  # this client, and none of theirs
    finally:
        d.cleanup()


def test_other_users_need_the_token_here_too():
    """With a token, a plain request without it gets the same 401 as on
    libsoup (OpenAI's error shape and WWW-Authenticate)."""
    import os
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ens-token-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("s3cret\n")
    d, port = start(**{"http-token-file": gv(token_file)})
    try:
        c = Conn(port, d, request("POST", "/v1/chat/completions", CHAT))
        status, h, body = c.answer()
        assert status == 401, body
        assert h["www-authenticate"] == 'Bearer realm="ensemble"', h
        assert json.loads(body)["error"]["type"] == "authentication_error", body
        c.send(request("POST", "/v1/chat/completions", CHAT, {"Authorization": "Bearer s3cret"}))
        status, _, body = c.answer()
        assert status == 200 and completion_text(body), body
        c.send(request("GET", "/health"))  # public
        assert c.answer()[0] == 200
        assert counters(d) == (3, 0)
        c.close()
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
