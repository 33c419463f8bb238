"""The daemon's log for operators: transport-http's optional access log
(setting http-access-log), one line per request, in transport-http's own
log domain."""

import re
import socket
import urllib.error
import urllib.request

from enslib import Daemon, SCALE, run_tests


def get(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def access_lines(d):
    return [line for line in d.read_log().splitlines() if "transport-http: access: " in line]


def wait_lines(d, n):
    import time
    deadline = time.time() + 5 * SCALE
    while len(access_lines(d)) < n and time.time() < deadline:
        time.sleep(0.02)
    return access_lines(d)


LINE = re.compile(r'transport-http-Message: [\d:.]+: transport-http: access: (\S+) "(\S+) (\S+)" (\d{3}) (\d+) bytes '
                  r'([\d.]+) ms(.*)$')


def test_access_log_is_off_by_default():
    d = Daemon()
    try:
        assert get(d.http_url() + "/health")[0] == 200
        assert get(d.http_url() + "/nope")[0] == 404
        d.stop()
        assert access_lines(d) == [], access_lines(d)
    finally:
        d.cleanup()


def test_access_log_one_line_per_request():
    d = Daemon(settings={"http-access-log": "true"})
    try:
        url = d.http_url()
        status, body = get(url + "/health")
        assert status == 200
        assert get(url + "/api/agents?token=do-not-log-me")[0] == 200
        assert get(url + "/no/such/route")[0] == 404
        assert get(url + "/api/publish", data=b"{not json")[0] == 400
        lines = wait_lines(d, 4)
        assert len(lines) == 4, d.read_log()
        parsed = [LINE.search(l) for l in lines]
        assert all(parsed), lines
        got = [(m.group(1), m.group(2), m.group(3), int(m.group(4))) for m in parsed]
        assert got == [("127.0.0.1", "GET", "/health", 200), ("127.0.0.1", "GET", "/api/agents", 200),
                       ("127.0.0.1", "GET", "/no/such/route", 404), ("127.0.0.1", "POST", "/api/publish", 400)], got
        assert int(parsed[0].group(5)) == len(body), (parsed[0].group(5), len(body))
        assert all(float(m.group(6)) >= 0 for m in parsed)
        assert "do-not-log-me" not in d.read_log()
        # A client that goes away before its answer is still logged.
        host, port = url[len("http://"):].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5 * SCALE)
        s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        s.close()
        assert get(url + "/health")[0] == 200
        lines = wait_lines(d, 6)
        assert any("/api/publish" in l and "client went away" in l for l in lines) or \
            len([l for l in lines if "/api/publish" in l]) == 2, lines
    finally:
        d.cleanup()


def test_access_log_bad_setting_keeps_the_default():
    d = Daemon(settings={"http-access-log": "'yes'"})
    try:
        assert get(d.http_url() + "/health")[0] == 200
        d.stop()
        log = d.read_log()
        assert "setting http-access-log: invalid value" in log, log
        assert access_lines(d) == [], access_lines(d)
    finally:
        d.cleanup()


run_tests(globals())
