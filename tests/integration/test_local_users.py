"""Other local users get nothing from the daemon they could not get through
its Unix sockets (a 0700 folder): without a token, loopback HTTP and
WebSocket serve only the daemon's own user and root (the kernel names the
user behind each connection); anyone else gets 401 unless they present the
token.  The state files are the owner's alone (0600).

Clients run as other users with setpriv (util-linux), so this needs root;
without it every test here is skipped, saying why."""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile

from enslib import Daemon, ENSEMBLED, gv, run_tests

NOBODY = 65534
STRANGER = 65533  # any uid with no process of the daemon's: need not exist
HTTP_RE = re.compile(r"transport-http: listening on http://(\S+):(\d+)")
WS_RE = re.compile(r"transport-websocket: listening on ws://(\S+):(\d+)")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"

# Runs as another user: each probe is one fresh connection, one request;
# prints the results as JSON.
CLIENT = r"""
import json, socket, sys
out = []
for p in json.loads(sys.argv[1]):
    host = p["host"].strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, p["port"]))
    body = json.dumps(p["body"]).encode() if p.get("body") is not None else b""
    head = f"{p.get('method', 'GET')} {p['path']} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for k, v in p.get("headers", {}).items():
        head += f"{k}: {v}\r\n"
    if p.get("ws"):
        head += ("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    s.sendall(head.encode() + b"\r\n" + body)
    data = b""
    # to the end, but for a WebSocket once it is accepted (it stays open)
    while not data.startswith(b"HTTP/1.1 101 ") or b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    text = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace") if b"\r\n\r\n" in data else ""
    out.append({"status": status, "body": text})
print(json.dumps(out))
"""


def skip_reason():
    if os.geteuid() != 0:
        return "not root: clients cannot run as other users"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    r = subprocess.run(as_uid_command(NOBODY) + [PYTHON, "-c", "print('ok')"], capture_output=True, text=True,
                       cwd="/")
    if r.stdout.strip() != "ok":
        return f"cannot run {PYTHON} as uid {NOBODY}: {r.stderr.strip()}"
    if not os.access(ENSEMBLED, os.X_OK):
        return f"{ENSEMBLED} is not executable"
    return None


def skipped():
    reason = skip_reason()
    if reason:
        print(f"  SKIP: {reason}")
    return reason is not None


def as_uid_command(uid):
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def probe(uid, probes):
    """Runs @probes (dicts: host, port, method, path, body, headers, ws) as
    @uid (None: this process's own); returns [{status, body}]."""
    cmd = [PYTHON, "-c", CLIENT, json.dumps(probes)]
    if uid is not None:
        cmd = as_uid_command(uid) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60)
    assert r.returncode == 0, (uid, r.stdout, r.stderr)
    return json.loads(r.stdout)


def ports(d):
    log = d.read_log()
    h, w = HTTP_RE.search(log), WS_RE.search(log)
    assert h and w, log
    return (h.group(1), int(h.group(2))), (w.group(1), int(w.group(2)))


def route_probes(d, headers=None, query=""):
    """Every kind of route a client could reach, on both ports."""
    (hh, hp), (wh, wp) = ports(d)
    headers = headers or {}
    return [
        dict(host=hh, port=hp, path="/api/agents" + query, headers=headers),
        dict(host=hh, port=hp, method="PUT", path="/api/kv/intruder/k" + query, body={"value": 1}, headers=headers),
        dict(host=hh, port=hp, method="POST", path="/api/v1/spawn" + query,
             body={"task": "hi"}, headers=headers),
        dict(host=hh, port=hp, path="/docs" + query, headers=headers),
        dict(host=hh, port=hp, path="/openapi.json" + query, headers=headers),
        dict(host=hh, port=hp, path="/v1/models" + query, headers=headers),
        dict(host=hh, port=hp, path="/ws" + query, headers=headers, ws=True),
        dict(host=wh, port=wp, path="/ws" + query, headers=headers, ws=True),
        dict(host=wh, port=wp, path="/" + query, headers=headers, ws=True),
    ]


def public_probes(d):
    (hh, hp), (wh, wp) = ports(d)
    return [dict(host=hh, port=hp, path="/health"), dict(host=wh, port=wp, path="/health")]


def assert_refused(results, why):
    for r in results:
        assert r["status"] == 401, r
        err = json.loads(r["body"])["error"]
        assert why in err["message"], r
        # OpenAI's clients read their own error shape
        assert err.get("code") in ("UNAUTHORIZED", "invalid_api_key"), r


def assert_served(results):
    for r in results:
        assert r["status"] in (101, 200, 202), r


def kv_missing(d):
    c = d.client()
    reply = c.request("kv.get", {"agent": "intruder", "key": "k"})
    c.close()
    return reply["status"] != "success" or reply["data"].get("value") is None


class DaemonAs(Daemon):
    """A daemon run as @uid, on a temporary folder that user owns."""

    def __init__(self, uid, **kw):
        self.uid = uid
        tmp = tempfile.mkdtemp(prefix="ens-test-")
        os.chown(tmp, uid, uid)
        super().__init__(tmp=tmp, **kw)

    def command(self):
        return as_uid_command(self.uid) + super().command()

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- tests


def test_other_users_are_refused_without_a_token():
    if skipped():
        return
    d = Daemon()
    try:
        refused = probe(NOBODY, route_probes(d))
        assert_refused(refused, f"uid {NOBODY}")
        assert "the daemon's own user and root" in json.loads(refused[0]["body"])["error"]["message"], refused[0]
        openai = json.loads(refused[5]["body"])["error"]
        assert openai["type"] == "authentication_error", openai
        assert kv_missing(d), "a refused request stored its value"
        assert_served(probe(NOBODY, public_probes(d)))
        # the daemon's own user (root here) is served without a token
        assert_served(probe(None, route_probes(d)))
        c = d.client()
        assert c.ok("kv.get", {"agent": "intruder", "key": "k"})["value"] == 1
        c.close()
    finally:
        d.cleanup()


def test_the_daemons_own_user_and_root_are_served():
    if skipped():
        return
    d = DaemonAs(NOBODY)
    try:
        assert_served(probe(NOBODY, route_probes(d)))  # its own user
        assert_served(probe(None, route_probes(d)))    # root
        assert_refused(probe(STRANGER, route_probes(d)), f"uid {STRANGER}")
    finally:
        d.cleanup()


def test_the_token_lets_other_users_in():
    if skipped():
        return
    tmp = tempfile.mkdtemp(prefix="ens-token-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("local-s3cret\n")
    d = Daemon(settings={"http-token-file": gv(token_file)})
    try:
        assert_refused(probe(NOBODY, route_probes(d)), "a valid bearer token is required")
        assert_served(probe(NOBODY, route_probes(d, headers={"Authorization": "Bearer local-s3cret"})))
        # browsers pass it in the query of a WebSocket handshake
        assert_served([r for r, p in zip(probe(NOBODY, route_probes(d, query="?token=local-s3cret")),
                                         route_probes(d)) if p.get("ws")])
        # with a token configured, the token decides for everyone
        assert_refused(probe(None, route_probes(d)[:1]), "a valid bearer token is required")
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_ipv6_loopback():
    if skipped():
        return
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
    except OSError as e:
        print(f"  SKIP: cannot bind ::1 ({e})")
        return
    d = Daemon(settings={"http-address": gv("::1"), "ws-address": gv("::1")})
    try:
        (hh, _), (wh, _) = ports(d)
        assert hh == "[::1]" and wh == "[::1]", d.read_log()
        assert_refused(probe(NOBODY, route_probes(d)), f"uid {NOBODY}")
        assert_served(probe(None, route_probes(d)))
    finally:
        d.cleanup()


def test_state_files_are_private():
    tmp = tempfile.mkdtemp(prefix="ens-test-")
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    os.chmod(state, 0o755)  # whatever the folder's mode
    old = os.umask(0)       # and the umask
    try:
        d = Daemon(tmp=tmp)
    finally:
        os.umask(old)
    names = ("ensemble.db", "ensemble.db-wal", "ensemble.db-shm")

    def modes():
        return {n: stat.S_IMODE(os.stat(os.path.join(state, n)).st_mode) for n in names
                if os.path.exists(os.path.join(state, n))}

    try:
        c = d.client()
        c.ok("kv.set", {"agent": "a", "key": "k", "value": 1})
        c.close()
        m = modes()
        assert set(m) == set(names), m
        assert all(mode == 0o600 for mode in m.values()), {n: oct(v) for n, v in m.items()}
        d.stop()
        # files left readable by an older version are made private again
        for n in names:
            if os.path.exists(os.path.join(state, n)):
                os.chmod(os.path.join(state, n), 0o644)
        d.start()
        c = d.client()
        assert c.ok("kv.get", {"agent": "a", "key": "k"})["value"] == 1
        c.close()
        m = modes()
        assert m and all(mode == 0o600 for mode in m.values()), {n: oct(v) for n, v in m.items()}
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
