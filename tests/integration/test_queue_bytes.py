"""Outbound queues are bounded in bytes (max-queue-bytes), on every transport
that pushes events: subscribers that never read, fed 400 events of 1 MB,
leave the daemon's memory near the byte limits, not 400 MB above them.  When
they finally read, each gets the newest events in order, is told how many
were dropped, and every reply it asked for: replies are never dropped.

One subscriber on the Unix socket (native protocol), one on a WebSocket
(/ws) and one on an HTTP event stream (GET /api/events), fed by one flood:
the message limit (4096) is never reached, so each one's drops are its byte
limit at work, and any transport without it would add ~400 MB."""
import base64
import json
import os
import re
import socket
import struct
import threading
import time

from enslib import Daemon, MEMORY_SCALE, SCALE, gv, run_tests

EVENTS = 400
EVENT_BYTES = 1 << 20
QUEUE_BYTES = 8 << 20
SUBSCRIBERS = 3
# The three queues, plus what one 1 MB event costs on its way through (the
# request line, its parse, its encodings) and the allocator's slack.  Without
# the byte limit the growth is ~400 MB per subscriber.
RSS_BOUND_KB = (SUBSCRIBERS * QUEUE_BYTES // 1024 + 24 * 1024) * MEMORY_SCALE
SETTINGS = {"max-queue-bytes": gv(QUEUE_BYTES), "max-line-bytes": gv(2 << 20)}
HTTP_RE = re.compile(r"transport-http: listening on http://([0-9.]+):(\d+)")
WS_RE = re.compile(r"transport-websocket: listening on ws://([0-9.]+):(\d+)")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def port_of(d, regex):
    deadline = time.time() + 5 * SCALE
    while time.time() < deadline:
        m = regex.search(d.read_log())
        if m:
            return int(m.group(2))
        time.sleep(0.02)
    raise AssertionError("no listening line:\n" + d.read_log())


def flood(d, topic):
    """Publishes EVENTS events of EVENT_BYTES to @topic from a Unix client, a
    writer thread sending while replies are read; returns the daemon's
    largest RSS growth meanwhile (kB)."""
    pub = d.client()
    base = peak = rss_kb(d.proc.pid)
    head = json.dumps({"id": "p", "action": "publish", "data": {"topic": topic, "data": {"pad": "x" * EVENT_BYTES}}})
    head, tail = head[:-3].encode(), head[-3:].encode()  # ...,"pad": "xxx|"}}}

    def write():
        for i in range(EVENTS):
            pub.sock.sendall(head + f', "i": {i}'.encode() + tail + b"\n")
    writer = threading.Thread(target=write)
    writer.start()
    for i in range(EVENTS):
        r = pub.recv()
        assert r["status"] == "success" and r["data"]["delivered"] == SUBSCRIBERS, r
        peak = max(peak, rss_kb(d.proc.pid))
    writer.join()
    # A marker after the flood, so the reader knows when it has seen all.
    pub.ok("publish", {"topic": topic, "data": {"i": EVENTS, "marker": True}})
    pub.close()
    return peak - base


def check_delivery(indexes, dropped_counts, dropped_total):
    """Events came in publish order, the newest survived, and every one was
    either delivered or counted in a notice."""
    assert indexes == sorted(indexes), indexes[:20]
    assert indexes[-1] == EVENTS, indexes[-5:]  # the marker
    delivered = len(indexes) - 1
    assert 0 < delivered < EVENTS, delivered
    assert dropped_counts and sum(dropped_counts) == dropped_total, (dropped_counts, dropped_total)
    assert delivered + dropped_total == EVENTS, (delivered, dropped_total)


class UnixSubscriber:
    def __init__(self, d):
        self.c = d.client()
        self.c.ok("subscribe", {"topics": ["big"]})
        # Requests sent now, their replies not read until after the flood.
        self.c.send_raw("".join(json.dumps({"id": f"q{i}", "action": "ping"}) + "\n" for i in range(50)))

    def drain(self):
        self.c.send({"id": "last", "action": "ping"})
        self.c.sock.settimeout(30 * SCALE)
        indexes, counts, total, replies = [], [], 0, []
        # The notice is queued once the queue has drained to half its limits.
        while not (replies and replies[-1] == "last" and counts and indexes and indexes[-1] == EVENTS):
            obj = self.c.recv()
            if obj.get("event") == "big":
                indexes.append(obj["data"]["i"])
            elif obj.get("event") == "ensemble.dropped":
                counts.append(obj["data"]["count"])
                total = obj["data"]["total"]
            else:
                assert obj["status"] == "success", obj
                replies.append(obj["id"])
        assert replies == [f"q{i}" for i in range(50)] + ["last"], replies
        check_delivery(indexes, counts, total)
        self.c.close()


class RawWS:
    """A minimal RFC 6455 client: masked text frames out, frames in."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30 * SCALE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head

    def send(self, obj):
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv(self):
        while True:
            self._need(2)
            b0, n, at = self.buf[0], self.buf[1] & 0x7F, 2
            if n == 126:
                self._need(4)
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(at + n)
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            if b0 & 0x0F == 1:
                return json.loads(payload)
            assert b0 & 0x0F in (9, 10), b0  # pings from the keepalive


class WebSocketSubscriber:
    def __init__(self, d):
        self.w = RawWS(port_of(d, WS_RE), "/ws")
        self.w.send({"id": "s", "action": "subscribe", "data": {"topics": ["big"]}})
        assert self.w.recv()["status"] == "success"
        for i in range(50):
            self.w.send({"id": f"q{i}", "action": "ping"})

    def drain(self):
        self.w.send({"id": "last", "action": "ping"})
        indexes, counts, total, replies = [], [], 0, []
        while not (replies and replies[-1] == "last" and counts and indexes and indexes[-1] == EVENTS):
            obj = self.w.recv()
            if obj.get("event") == "big":
                indexes.append(obj["data"]["i"])
            elif obj.get("event") == "ensemble.dropped":
                counts.append(obj["data"]["count"])
                total = obj["data"]["total"]
            else:
                assert obj["status"] == "success", obj
                replies.append(obj["id"])
        assert replies == [f"q{i}" for i in range(50)] + ["last"], replies
        check_delivery(indexes, counts, total)
        self.w.sock.close()


class EventStreamSubscriber:
    def __init__(self, d):
        self.s = socket.create_connection(("127.0.0.1", port_of(d, HTTP_RE)), timeout=30 * SCALE)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.s.sendall(b"GET /api/events?topics=big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # The stream has begun (its "subscribed" frame, never dropped) before the flood.
        self.body = b""
        while b"event: subscribed" not in self.body:
            chunk = self.s.recv(4096)
            assert chunk, self.body
            self.body += chunk

    def drain(self):
        # SSE frames inside HTTP chunks: each frame is one chunk, so the
        # frames are found whole between the chunk headers.
        indexes, counts, total = [], [], 0
        deadline = time.time() + 60 * SCALE
        while time.time() < deadline and not (indexes and indexes[-1] == EVENTS and counts):
            chunk = self.s.recv(1 << 20)
            assert chunk, "the stream ended"
            self.body += chunk
            while True:
                end = self.body.find(b"\n\n")  # a frame's end (JSON escapes its newlines)
                if end < 0:
                    break
                frame, self.body = self.body[:end], self.body[end + 2:]
                at = frame.find(b"event: ")  # after the HTTP chunk header
                if at < 0:
                    continue  # ": keepalive"
                frame = frame[at:]
                name, _, data = frame.partition(b"\ndata: ")
                ev = json.loads(data)
                if name == b"event: big":
                    indexes.append(ev["data"]["i"])
                elif name == b"event: ensemble.dropped":
                    counts.append(ev["data"]["count"])
                    total = ev["data"]["total"]
        check_delivery(indexes, counts, total)
        self.s.close()
        return total


def plugin_info(d, plugin):
    c = d.client()
    try:
        return [p for p in c.ok("health")["plugins"] if p["id"] == plugin][0]["info"]
    finally:
        c.close()


def test_subscribers_that_never_read():
    d = Daemon(settings=SETTINGS)
    try:
        unix, ws, stream = UnixSubscriber(d), WebSocketSubscriber(d), EventStreamSubscriber(d)
        grown = flood(d, "big")
        print(f"# the daemon grew by {grown} kB (bound {RSS_BOUND_KB} kB)", flush=True)
        assert grown < RSS_BOUND_KB, f"the daemon grew by {grown} kB for {SUBSCRIBERS} subscribers that do not read"
        unix.drain()
        ws.drain()
        dropped = stream.drain()
        assert plugin_info(d, "transport-http")["events_dropped"] == dropped
    finally:
        d.cleanup()


run_tests(globals())
