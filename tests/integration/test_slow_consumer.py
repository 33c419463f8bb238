"""Slow consumers: a subscriber that does not read gets a bounded queue (the
oldest events are dropped and it is told so), the daemon's memory stays
bounded, and every other client keeps being served.  A client that pipelines
requests without reading its replies is paused, not buffered without end."""
import json
import select
import socket
import time
from enslib import Daemon, SCALE, MEMORY_SCALE, run_tests

RSS_BOUND_MB = 64 * MEMORY_SCALE


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def timed_ping(c):
    start = time.time()
    assert c.ok("ping") == {"pong": True}
    return time.time() - start


def test_slow_subscriber_is_bounded_and_told():
    d = Daemon(settings={"max-queue-messages": "64"})
    try:
        slow = d.client()
        slow.ok("subscribe", {"topics": ["flood.*"]})
        pub = d.client()
        other = d.client()
        base_rss = rss_kb(d.proc.pid)
        max_rss = base_rss

        # 20 MB through a queue of 64 messages, in events of 10 kB: most are
        # dropped, in batches the publisher waits for.
        total = 2000
        batch = 100
        payload = "p" * 10240
        worst_batch = 0.0
        worst_ping = 0.0
        sent = 0
        while sent < total:
            n = min(batch, total - sent)
            lines = "".join(json.dumps({"id": sent + i, "action": "publish",
                                        "data": {"topic": f"flood.{(sent + i) % 7}",
                                                 "data": {"i": sent + i, "pad": payload}}}) + "\n"
                            for i in range(n))
            start = time.time()
            pub.send_raw(lines)
            for i in range(n):
                r = pub.recv()
                assert r["id"] == sent + i and r["status"] == "success", r
            worst_batch = max(worst_batch, time.time() - start)
            sent += n
            worst_ping = max(worst_ping, timed_ping(other))
            max_rss = max(max_rss, rss_kb(d.proc.pid))

        growth_mb = (max_rss - base_rss) / 1024
        assert growth_mb < RSS_BOUND_MB, f"daemon RSS grew by {growth_mb:.1f} MiB"
        assert worst_batch < 5 * SCALE, f"a batch of {batch} publishes took {worst_batch:.2f}s"
        assert worst_ping < 2 * SCALE, f"a ping took {worst_ping:.2f}s"

        h = other.ok("health")
        transport = [p for p in h["plugins"] if p["id"] == "transport-unix"][0]
        assert transport["info"]["events_dropped"] > 0, transport["info"]

        # Now the slow client reads everything.
        pub.ok("publish", {"topic": "flood.marker", "data": "marker"})
        received = []
        dropped = []
        seen_marker = False
        slow.sock.settimeout(10 * SCALE)

        def take(ev):
            nonlocal seen_marker
            if ev["event"] == "ensemble.dropped":
                dropped.append(ev)
            elif ev.get("data") == "marker":
                seen_marker = True
            else:
                assert ev["event"].startswith("flood."), ev
                assert not seen_marker, "an event after the marker"
                received.append(ev)

        while not seen_marker:
            take(slow.next_event())
        # A drop notice is queued once the queue drains; a ping after the marker
        # collects anything still on the way (events seen meanwhile go to slow.events).
        assert slow.ok("ping") == {"pong": True}
        while slow.events:
            take(slow.events.pop(0))
        assert seen_marker, "the marker never arrived"
        assert dropped, "no ensemble.dropped notice"
        count = sum(ev["data"]["count"] for ev in dropped)
        assert count > 0, dropped
        assert len(received) > 0, "the slow client got no events at all"
        # Every event was either delivered or counted as dropped.
        assert len(received) + count == total, (len(received), count, dropped)
        # Delivered events are in publish order (the oldest ones were dropped).
        idx = [ev["data"]["i"] for ev in received]
        assert idx == sorted(idx), "events out of order"
        seqs = [ev["seq"] for ev in received]
        assert seqs == sorted(seqs)
        # The most recent events survived.
        assert idx[-1] == total - 1, idx[-5:]
        assert dropped[-1]["data"].get("total", count) == count, dropped
        for ev in dropped:
            assert ev["from"] == "ensembled" and ev["data"]["count"] > 0, ev

        # The slow client is healthy again.
        assert slow.ok("ping") == {"pong": True}
        pub.ok("publish", {"topic": "flood.again", "data": "fresh"})
        ev = slow.next_event()
        assert ev["data"] == "fresh", ev
        for c in (slow, pub, other):
            c.close()
    finally:
        d.cleanup()


def test_dropped_counter_in_health_and_many_slow_subscribers():
    d = Daemon(settings={"max-queue-messages": "16"})
    try:
        slows = []
        for _ in range(5):
            c = d.client()
            c.ok("subscribe", {"topics": ["many"]})
            slows.append(c)
        pub = d.client()
        base = rss_kb(d.proc.pid)
        payload = "q" * 20480
        for chunk in range(10):
            pub.send_raw("".join(json.dumps({"id": i, "action": "publish",
                                             "data": {"topic": "many", "data": payload}}) + "\n"
                                 for i in range(50)))
            for i in range(50):
                assert pub.recv()["status"] == "success"
        assert (rss_kb(d.proc.pid) - base) / 1024 < RSS_BOUND_MB
        h = pub.ok("health")
        transport = [p for p in h["plugins"] if p["id"] == "transport-unix"][0]
        assert transport["info"]["events_dropped"] > 0, transport["info"]
        # Closing the slow clients without reading frees them; the daemon carries on.
        for c in slows:
            c.close()
        deadline = time.time() + 5 * SCALE
        while pub.ok("health")["connections"] > 1 and time.time() < deadline:
            time.sleep(0.02)
        assert pub.ok("health")["connections"] == 1
        assert pub.ok("publish", {"topic": "many", "data": 1})["delivered"] == 0
        pub.close()
    finally:
        d.cleanup()


def test_unread_replies_do_not_block_others():
    d = Daemon(settings={"max-queue-messages": "64"})
    try:
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        hog.connect(d.path("ensemble.sock"))
        hog.setblocking(False)
        base = rss_kb(d.proc.pid)
        # A long id makes every reply large (and, unlike health, costs the daemon
        # next to nothing, sanitizers or not); write requests until the daemon
        # stops reading them.
        hog_id = "h" * 1000
        chunk = (json.dumps({"id": hog_id, "action": "ping"}) + "\n").encode() * 200
        written = 0
        last_progress = time.time()
        deadline = time.time() + 20 * SCALE
        while time.time() < deadline:
            try:
                written += hog.send(chunk[written % len(chunk):])  # the stream stays chunk after chunk
                last_progress = time.time()
            except BlockingIOError:
                if time.time() - last_progress > 0.5:
                    break
                time.sleep(0.01)
        assert time.time() < deadline, "the daemon kept reading an unread connection for 20 s"
        assert written > 0

        # Others are served promptly while the hog is stuck.
        other = d.client()
        for _ in range(20):
            assert timed_ping(other) < 2 * SCALE
        sub = d.client()
        sub.ok("subscribe", {"topics": ["live"]})
        other.ok("publish", {"topic": "live", "data": 1})
        assert sub.next_event()["data"] == 1
        assert (rss_kb(d.proc.pid) - base) / 1024 < RSS_BOUND_MB

        # The hog starts reading: replies are never dropped, it gets one reply per
        # request it wrote, all complete lines, then the reply to a last ping.
        per_line = len(chunk) // 200
        pending = chunk[written % len(chunk):][:(per_line - written % per_line) % per_line]
        pending += b'{"id":"last","action":"ping"}\n'
        expected = (written + per_line - 1) // per_line
        buf = b""
        replies = 0
        done = False
        deadline = time.time() + 30 * SCALE
        while not done:
            assert time.time() < deadline, f"hog got {replies} of {expected} replies"
            r, w, _ = select.select([hog], [hog] if pending else [], [], 1)
            if w:
                try:
                    pending = pending[hog.send(pending):]
                except BlockingIOError:
                    pass
            if r:
                data = hog.recv(1 << 20)
                assert data, "hog connection closed"
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                for line in lines:
                    obj = json.loads(line)
                    if obj.get("id") == "last":
                        done = True
                        break
                    assert obj["status"] == "success" and obj["id"] == hog_id, obj
                    replies += 1
        assert replies == expected, (replies, expected)
        hog.close()
        assert other.ok("ping") == {"pong": True}
        other.close()
        sub.close()
    finally:
        d.cleanup()


run_tests(globals())
