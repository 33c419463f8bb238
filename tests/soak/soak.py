#!/usr/bin/env python3
"""Soak run: the real ensembled under mixed traffic for MINUTES, watched for
growth.  Not part of the suite (./dev.sh soak [MINUTES]).

    soak.py [--minutes M] [--fd-tolerance N] [--rss-tolerance-mb N]

The daemon runs with its default plugins and one OpenAI-compatible provider
backed by a fake upstream on loopback.  Traffic, all at once:

  fan-out      a publisher on the Unix socket, 8 subscribers reading (soak.*)
  churn        subscribers that connect, read a little and vanish (no
               goodbye, unread events pending)
  never-reads  one subscriber that never reads a byte
  requests     native requests (ping, health, kv set/get) on the Unix socket
  completions  HTTP /v1/chat/completions, plain and streamed (SSE) through
               the fake upstream; every third stream (a slow one) is dropped
               after its first chunk
  events       HTTP /api/events streams that vanish after a few events
  websocket    WebSocket sessions (ping, subscribe, read), closed cleanly or
               dropped

The daemon's open fds, RSS and the error counts (ours and the daemon's) are
printed at the start (idle), after a warm-up (the baseline), every --report-every seconds, at the
middle and at the end (traffic stopped, connections settled).  The run fails
(exit 1) when, from the baseline to the end, the fds grow by more than
--fd-tolerance or the RSS by more than --rss-tolerance-mb MiB plus 10 %, or
when the daemon dies or logs a critical or a sanitizer report.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from enslib import BUILD, Daemon, die_with_parent, gv  # noqa: E402

MODEL = "soak-model"          # the fake upstream answers at once
DRIP_MODEL = "soak-drip"      # one chunk every 100 ms: a stream to drop midway


class Upstream:
    """The scripted fake LLM upstream (tests/support) as a process on
    loopback; GET /fake/stats counts its requests and connections."""

    def __init__(self):
        exe = os.environ.get("ENS_FAKE_UPSTREAM_SERVER",
                             os.path.join(BUILD, "tests", "support", "ens-fake-upstream-server"))
        self.proc = subprocess.Popen([exe], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self):
        try:
            with urllib.request.urlopen(self.base + "/fake/stats", timeout=5) as r:
                return json.loads(r.read())
        except OSError as e:
            return {"error": str(e)}

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {}
        self.errors = {}
        self.last_error = {}

    def op(self, kind, n=1):
        with self.lock:
            self.ops[kind] = self.ops.get(kind, 0) + n

    def error(self, kind, what):
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.last_error[kind] = str(what)[:200]

    def snapshot(self):
        with self.lock:
            return dict(self.ops), dict(self.errors), dict(self.last_error)


def loop(stop, stats, kind, body, pause):
    """Runs body() until stop; an exception counts as an error of @kind."""
    while not stop.is_set():
        try:
            body()
        except Exception as e:  # noqa: BLE001 - every failure is counted
            if not stop.is_set():
                stats.error(kind, repr(e))
                time.sleep(0.2)
        if pause:
            stop.wait(pause * random.uniform(0.5, 1.5))


def drop(sock):
    """Closes with a reset: the peer vanished, nothing said."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


# ---------------------------------------------------------------- Unix socket

def publisher(d, stop, stats):
    c = d.client()
    n = 0
    payload = "x" * 512

    def body():
        nonlocal n
        n += 1
        c.ok("publish", {"topic": "soak.fan", "data": {"n": n, "pad": payload}})
        stats.op("published")
    loop(stop, stats, "publish", body, 0.01)
    c.close()


def fan_subscriber(d, stop, stats):
    c = d.client()
    c.ok("subscribe", {"topics": ["soak.*"]})
    c.sock.settimeout(1.0)

    def body():
        try:
            ev = c.next_event()
        except socket.timeout:
            return
        if ev.get("event") == "soak.fan":
            stats.op("delivered")
    loop(stop, stats, "fan-out", body, 0)
    c.close()


def churn_subscriber(d, stop, stats):
    def body():
        c = d.client()
        c.ok("subscribe", {"topics": ["soak.*"]})
        for _ in range(random.randint(0, 5)):
            c.next_event()
        drop(c.sock)
        stats.op("churned")
    loop(stop, stats, "churn", body, 0.2)


def never_reader(d, stop, stats, holder):
    c = d.client()
    c.ok("subscribe", {"topics": ["soak.*"]})
    holder.append(c)  # kept open, never read, until the end
    stop.wait()


def requests(d, stop, stats):
    c = d.client()
    n = 0

    def body():
        nonlocal n
        n += 1
        c.ok("ping")
        c.ok("kv.set", {"agent": "soak", "key": f"k{n % 100}", "value": {"n": n}})
        c.ok("kv.get", {"agent": "soak", "key": f"k{n % 100}"})
        if n % 20 == 0:
            c.ok("health")
        stats.op("requests", 3)
    loop(stop, stats, "requests", body, 0.02)
    c.close()


# ---------------------------------------------------------------- HTTP

def http_conn(url):
    m = re.match(r"http://([^:/]+):(\d+)", url)
    return http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=30)


def completions(url, stop, stats):
    conn = http_conn(url)

    def body():
        nonlocal conn
        req = {"model": MODEL, "messages": [{"role": "user", "content": f"soak {random.random()}"}]}
        try:
            conn.request("POST", "/v1/chat/completions", json.dumps(req), {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http_conn(url)  # keep-alive lost: a new connection
            raise
        if r.status != 200 or b'"choices"' not in data:
            raise AssertionError(f"{r.status} {data[:200]!r}")
        stats.op("completions")
    loop(stop, stats, "completions", body, 0.05)
    conn.close()


def streams(url, stop, stats):
    n = 0

    def body():
        nonlocal n
        n += 1
        conn = http_conn(url)
        req = {"model": DRIP_MODEL if n % 3 == 0 else MODEL, "stream": True,
               "messages": [{"role": "user", "content": "stream these words for the soak run please"}]}
        conn.request("POST", "/v1/chat/completions", json.dumps(req), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise AssertionError(f"{r.status} {r.read()[:200]!r}")
        if n % 3 == 0:
            r.readline()  # the first chunk, then gone
            drop(conn.sock)
            stats.op("streams dropped")
            return
        data = r.read()
        conn.close()
        if b"data: [DONE]" not in data:
            raise AssertionError(f"no [DONE]: {data[-200:]!r}")
        stats.op("streams")
    loop(stop, stats, "streams", body, 0.1)


def event_streams(url, stop, stats):
    def body():
        conn = http_conn(url)
        conn.request("GET", "/api/events?topics=soak.*")
        r = conn.getresponse()
        if r.status != 200:
            raise AssertionError(f"{r.status} {r.read()[:200]!r}")
        got = 0
        while got < 3:
            line = r.readline()
            if not line:
                raise AssertionError("the event stream ended")
            if line.startswith(b"data:"):
                got += 1
        drop(conn.sock)
        stats.op("event streams")
    loop(stop, stats, "event streams", body, 0.3)


# ---------------------------------------------------------------- WebSocket

class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), frames in."""

    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)?", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3) or '/'} HTTP/1.1\r\nHost: {m.group(1)}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(head[:200])

    def send(self, text, opcode=1):
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed by the daemon")
            self.buf += chunk

    def recv(self):
        """(opcode, payload) of the next frame."""
        self._need(2)
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        at = 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return opcode, payload

    def request(self, rid, action, data=None):
        self.send(json.dumps({"id": rid, "action": action, "data": data or {}}))
        while True:
            opcode, payload = self.recv()
            if opcode != 1:
                continue
            obj = json.loads(payload)
            if obj.get("id") == rid:
                if obj.get("status") != "success":
                    raise AssertionError(obj)
                return obj

    def close(self):
        try:
            self.send(struct.pack("!H", 1000), opcode=8)
            self.recv()
        except OSError:
            pass
        self.sock.close()


def websockets(ws_url, stop, stats):
    n = 0

    def body():
        nonlocal n
        n += 1
        ws = WebSocket(ws_url + "/ws")
        ws.request("a", "ping")
        ws.request("b", "subscribe", {"topics": ["soak.*"]})
        got = 0
        while got < 3:
            opcode, payload = ws.recv()
            if opcode == 1 and b'"event"' in payload:
                got += 1
        ws.request("c", "health")
        if n % 2:
            ws.close()
        else:
            drop(ws.sock)
        stats.op("websocket sessions")
    loop(stop, stats, "websocket", body, 0.2)


# ---------------------------------------------------------------- watching

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid):
    """The daemon's fds by kind ("socket", "pipe", "anon_inode", "file")."""
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target and not target.startswith("/") else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def daemon_counters(d):
    """What the daemon counts that is worth watching, from its health."""
    c = d.client()
    try:
        h = c.ok("health")
    finally:
        c.close()
    out = {"connections": h.get("connections")}
    for p in h.get("plugins", []):
        info = p.get("info") or {}
        if p.get("id") == "transport-unix" and "events_dropped" in info:
            out["events dropped"] = info["events_dropped"]
    counters = h.get("counters") or {}
    for k in ("requests_failed", "errors"):
        if k in counters:
            out[k] = counters[k]
    return out


def log_problems(d):
    log = d.read_log()
    return {"criticals": log.count("-CRITICAL **"), "warnings": log.count("-WARNING **"),
            "sanitizer": log.count("ERROR: AddressSanitizer") + log.count("runtime error:")}


def sample(d, up, stats, label, start):
    ops, errors, last = stats.snapshot()
    s = {"label": label, "t": time.time() - start, "fds": fd_count(d.proc.pid), "rss": rss_mb(d.proc.pid),
         "ops": ops, "errors": errors, "daemon": daemon_counters(d), "log": log_problems(d)}
    s["daemon"]["upstream"] = up.stats()
    err = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "none"
    done = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(fd_kinds(d.proc.pid).items()))
    print(f"[{s['t']:7.1f}s] {label:<8} fds {s['fds']:4d} ({kinds})  rss {s['rss']:7.1f} MiB  "
          f"client errors: {err}  daemon: {s['daemon']}  log: {s['log']}", flush=True)
    print(f"           done: {done}", flush=True)
    for k, v in sorted(last.items()):
        print(f"           last {k} error: {v}", flush=True)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--report-every", type=float, default=60)
    ap.add_argument("--fd-tolerance", type=int, default=16)
    ap.add_argument("--rss-tolerance-mb", type=float, default=24)
    args = ap.parse_args()
    total = args.minutes * 60
    warmup = min(60.0, total * 0.15)

    up = Upstream()

    def backend(path, model):
        return {"plugin": gv("provider-openai"), "base-url": gv(up.base + path), "models": gv([model]),
                "quality": gv(0.99), "latency-ms": gv(50), "max-retries": gv(0), "timeout-ms": gv(30000)}
    d = Daemon(settings={"http-port": "0", "ws-port": "0", "providers": gv(["soak", "soak-drip"])},
               groups={"providers/soak": backend("/v1", MODEL),
                       "providers/soak-drip": backend("/stream,chunks=20,interval=100/v1", DRIP_MODEL)})
    stop = threading.Event()
    stats = Stats()
    never = []
    try:
        url = d.http_url()
        m = re.search(r"transport-websocket: listening on (ws://\S+)", d.read_log())
        ws_url = m.group(1).rstrip("/") if m else None
        print(f"soak: ensembled pid {d.proc.pid}, {url}, {ws_url}, fake upstream {up.base}, "
              f"{args.minutes:g} min (warm-up {warmup:.0f} s)", flush=True)
        workers = [(publisher, (d, stop, stats)), (never_reader, (d, stop, stats, never)),
                   (requests, (d, stop, stats)), (churn_subscriber, (d, stop, stats)),
                   (completions, (url, stop, stats)), (completions, (url, stop, stats)),
                   (streams, (url, stop, stats)), (event_streams, (url, stop, stats))]
        workers += [(fan_subscriber, (d, stop, stats))] * 8
        if ws_url:
            workers.append((websockets, (ws_url, stop, stats)))
        threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in workers]
        start = time.time()
        sample(d, up, stats, "start", start)  # idle, before any traffic
        for t in threads:
            t.start()

        stop.wait(warmup)
        base = sample(d, up, stats, "baseline", start)
        samples = [base]
        middle_done = False
        next_report = time.time() + args.report_every
        while time.time() - start < total and d.proc.poll() is None:
            time.sleep(1)
            now = time.time()
            if not middle_done and now - start >= (total + warmup) / 2:
                samples.append(sample(d, up, stats, "middle", start))
                middle_done = True
                next_report = now + args.report_every
            elif now >= next_report:
                samples.append(sample(d, up, stats, "running", start))
                next_report = now + args.report_every
        stop.set()
        for c in never:
            drop(c.sock)
        for t in threads:
            t.join(30)
        time.sleep(2)  # closes reach the daemon
        if d.proc.poll() is not None:
            print(f"soak: FAILED: ensembled exited with {d.proc.returncode}\n{d.read_log()[-4000:]}")
            return 1
        end = sample(d, up, stats, "end", start)
        fd_growth = end["fds"] - base["fds"]
        rss_growth = end["rss"] - base["rss"]
        rss_allowed = args.rss_tolerance_mb + 0.10 * base["rss"]
        print(f"soak: fds {base['fds']} -> {end['fds']} ({fd_growth:+d}, tolerance {args.fd_tolerance}); "
              f"RSS {base['rss']:.1f} -> {end['rss']:.1f} MiB ({rss_growth:+.1f}, tolerance {rss_allowed:.1f})")
        failures = []
        if fd_growth > args.fd_tolerance:
            failures.append("fds grew")
        if rss_growth > rss_allowed:
            failures.append("RSS grew")
        if end["log"]["criticals"] or end["log"]["sanitizer"]:
            failures.append("the daemon logged criticals or sanitizer reports")
        if failures:
            print("soak: FAILED: " + "; ".join(failures))
            return 1
        print("soak: flat")
        return 0
    finally:
        stop.set()
        d.cleanup()
        up.close()


if __name__ == "__main__":
    sys.exit(main())
