"""The HTTP and WebSocket transports' connections through the real daemon:
none is left open once its client is done with it (keep-alive, SSE, 404,
half-closed, reset, WebSocket, refused), connects are accepted promptly
(a full listen backlog), and a body declared too large is refused from the
headers, before it is sent.  Standard library clients only."""

import base64
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from enslib import Daemon, SCALE, gv, run_tests

HTTP_RE = re.compile(r"transport-http: listening on http://([0-9.]+):(\d+)")
WS_RE = re.compile(r"transport-websocket: listening on ws://([0-9.]+):(\d+)")


def start(**settings):
    """A daemon with both transports on free ports: (daemon, http port, ws port)."""
    settings.setdefault("http-port", gv(0))
    settings.setdefault("ws-port", gv(0))
    d = Daemon(settings=settings)
    try:
        log = d.read_log()
        return d, int(HTTP_RE.search(log).group(2)), int(WS_RE.search(log).group(2))
    except BaseException:
        d.cleanup()
        raise


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(predicate, timeout):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def settled_fd_count(pid):
    """The daemon's fd count once it stops changing (closes still under way
    from what came before have landed)."""
    last = fd_count(pid)
    for _ in range(int(50 * SCALE)):
        time.sleep(0.1)
        now = fd_count(pid)
        if now == last:
            return now
        last = now
    return last


def http_connections_closed(c):
    """Whether transport-http has no connection open.  An event stream its
    client walked away from learns of it at the daemon's next writes: each
    call publishes to those streams."""
    c.ok("publish", {"topic": "fdtest.events", "data": {"tick": True}})
    h = c.ok("health")
    info = {p["id"]: p.get("info", {}) for p in h["plugins"]}
    return info["transport-http"]["connections"] == 0


def read_to_eof(s):
    """Everything the daemon sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def json_request(conn, method, path, body=None):
    """One request on a keep-alive http.client connection; (status, body)."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def ws_handshake(port, path="/ws"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SCALE)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s, head.split(b"\r\n\r\n", 1)[1]


def ws_send_text(s, text):
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)


def ws_read_text(s, buf):
    """One unmasked text frame from the daemon (short ones only)."""
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            start = 2
            if n == 126:
                if len(buf) < 4:
                    n = None
                else:
                    n, start = struct.unpack("!H", buf[2:4])[0], 4
            if n is not None and len(buf) >= start + n:
                return buf[start:start + n].decode(), buf[start + n:]
        chunk = s.recv(65536)
        assert chunk, "the daemon closed the WebSocket"
        buf += chunk


# ---------------------------------------------------------------- one connection of each kind


def kind_keepalive(http_port, ws_port):
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10 * SCALE)
    assert json_request(c, "GET", "/api/daemon/heartbeat")[0] == 200
    assert json_request(c, "POST", "/api/daemon/heartbeat")[0] == 200
    c.close()


def kind_not_found(http_port, ws_port):
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10 * SCALE)
    assert json_request(c, "GET", "/no/such/route")[0] == 404
    c.close()


def kind_sse_completion(http_port, ws_port):
    """A streamed completion read to its end, then one more request on the
    same connection."""
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10 * SCALE)
    status, body = json_request(c, "POST", "/api/completions", {"prompt": "hi", "stream": True})
    assert status == 200 and b"data:" in body, body
    assert json_request(c, "GET", "/api/daemon/heartbeat")[0] == 200
    c.close()


def kind_sse_abandoned(http_port, ws_port):
    """An event stream its client walks away from: closed by the daemon at
    its next write (the test publishes to it at the end)."""
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10 * SCALE)
    c.request("GET", "/api/events?topics=fdtest.events")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    c.close()


def kind_half_closed(http_port, ws_port):
    """The client sends its request and shuts its side: it gets the answer,
    then the daemon's close, and nothing else."""
    s = socket.create_connection(("127.0.0.1", http_port), timeout=10 * SCALE)
    s.sendall(b"GET /api/daemon/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /api/daemon/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    out = read_to_eof(s)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.count(b"HTTP/1.1") == 2, out[:300]
    s.close()


def kind_reset(http_port, ws_port):
    """A keep-alive connection reset (RST) by its client after a request."""
    s = socket.create_connection(("127.0.0.1", http_port), timeout=10 * SCALE)
    s.sendall(b"GET /api/daemon/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def kind_silent(http_port, ws_port):
    """Connects and goes without a word."""
    socket.create_connection(("127.0.0.1", random.choice((http_port, ws_port))), timeout=10 * SCALE).close()


def kind_too_large(http_port, ws_port):
    s = socket.create_connection(("127.0.0.1", http_port), timeout=10 * SCALE)
    s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000000000\r\n\r\n{\"topic\":")
    out = read_to_eof(s)
    assert out.startswith(b"HTTP/1.1 413"), out
    s.close()


def kind_websocket(http_port, ws_port):
    """The native protocol on either port, one request, then dropped."""
    s, buf = ws_handshake(random.choice((http_port, ws_port)))
    ws_send_text(s, '{"id":"p1","action":"ping"}')
    text, buf = ws_read_text(s, buf)
    assert json.loads(text)["id"] == "p1", text
    s.close()


# How many of each in every 40 connections (a streamed completion costs
# several requests' worth).
KINDS = {kind_keepalive: 8, kind_not_found: 6, kind_sse_completion: 1, kind_sse_abandoned: 3, kind_half_closed: 6,
         kind_reset: 4, kind_silent: 4, kind_too_large: 3, kind_websocket: 5}


def test_connections_leave_no_fd_behind():
    d, http_port, ws_port = start(**{"http-max-body-bytes": gv(4096)})
    try:
        pid = d.proc.pid
        c = d.client()
        # Warm up (every kind once, so what is made once per daemon is made),
        # then take the baseline with nothing open.
        for kind in KINDS:
            kind(http_port, ws_port)
        assert wait_for(lambda: http_connections_closed(c), 10), "the warm-up's connections stay open"
        baseline = settled_fd_count(pid)

        n = 2000
        share = [kind for kind, weight in KINDS.items() for _ in range(weight)]
        plan = [share[i % len(share)] for i in range(n)]
        random.Random(13).shuffle(plan)
        with ThreadPoolExecutor(max_workers=4) as pool:
            for f in [pool.submit(kind, http_port, ws_port) for kind in plan]:
                f.result()
        assert wait_for(lambda: http_connections_closed(c), 20), \
            f"{n} connections opened and closed: {c.ok('health')} still open"
        assert wait_for(lambda: fd_count(pid) <= baseline + 3, 10), \
            f"{n} connections opened and closed: {fd_count(pid)} fds open, {baseline} before"
        after = fd_count(pid)
        print(f"  fds: {baseline} before, {after} after {n} connections")
        # and the daemon is fine
        assert c.ok("health")["status"] == "healthy"
        c.close()
    finally:
        d.cleanup()


def test_back_to_back_connects_are_accepted_at_once():
    """2,000 connects in a row on each port, with the daemon stopped so none
    is accepted meanwhile: the kernel completes every one at once as long as
    the listen backlog holds them.  (When it is full the SYN is dropped and
    the client tries again a second later: with the backlog of 10 it was,
    every 12th connect.)"""
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    n = min(2000, somaxconn - 8)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 256:  # the sockets held open at once
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256 if hard == resource.RLIM_INFINITY else min(n + 256, hard),
                                                    hard))
    d, http_port, ws_port = start()
    try:
        for port in (http_port, ws_port):
            held, slowest = [], 0.0
            os.kill(d.proc.pid, signal.SIGSTOP)
            try:
                for i in range(n):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    held.append(s)
                    s.settimeout(0.9)  # a dropped SYN is sent again after 1 s
                    t0 = time.monotonic()
                    try:
                        s.connect(("127.0.0.1", port))
                    except socket.timeout:
                        raise AssertionError(f"connect {i + 1} of {n} to port {port} was not accepted at once")
                    slowest = max(slowest, time.monotonic() - t0)
            finally:
                for s in held:
                    s.close()
                os.kill(d.proc.pid, signal.SIGCONT)
            print(f"  port {port}: slowest of {n} connects {slowest * 1000:.1f} ms")
            assert slowest < 0.2, f"a connect took {slowest * 1000:.0f} ms"
        # the daemon takes them all, finds them closed, and is fine
        c = d.client()
        assert c.ok("health")["status"] == "healthy"
        c.close()
    finally:
        d.cleanup()


def test_too_large_is_refused_from_the_headers():
    # A slow-client timeout far away: the answer must not wait for it.
    d, http_port, ws_port = start(**{"http-max-body-bytes": gv(2048), "http-request-timeout-ms": gv(60000)})
    try:
        for head in (b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1099511627776\r\n\r\n",
                     # a chunked body: its size is unknown, 411 at once
                     b"POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"100000\r\n{\"topic\":"):
            s = socket.create_connection(("127.0.0.1", http_port), timeout=5 * SCALE)
            t0 = time.monotonic()
            s.sendall(head)
            out = read_to_eof(s)  # the answer, then the daemon's close
            elapsed = time.monotonic() - t0
            s.close()
            status, _, rest = out.partition(b"\r\n")
            assert status in (b"HTTP/1.1 413 Request Entity Too Large", b"HTTP/1.1 411 Length Required"), out
            assert b"Connection: close" in rest, out
            body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
            assert body["error"]["code"] in ("BODY_TOO_LARGE", "LENGTH_REQUIRED"), body
            assert elapsed < 4 * SCALE, f"answered after {elapsed:.1f}s"
        # a client that keeps sending its refused body is not cut short of
        # the answer
        s = socket.create_connection(("127.0.0.1", http_port), timeout=5 * SCALE)
        s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000)
        out = read_to_eof(s)
        assert out.startswith(b"HTTP/1.1 413"), out
        s.close()
        # the daemon is fine, and counted them
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5 * SCALE)
        assert json_request(c, "GET", "/health")[0] == 200
        status, metrics = json_request(c, "GET", "/metrics")
        m = re.search(rb'ensemble_http_refused_total\{reason="too_large"\} (\d+)', metrics)
        assert m and int(m.group(1)) == 3, metrics
        c.close()
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
