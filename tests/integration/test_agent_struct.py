"""agent-struct through the real daemon: create_directory, create_structure
and validate_structure over the native socket, the Centerfire per-agent
socket (orchestrator-struct.sock) and HTTP; names checked by the real naming
agent through the bus; every escape attempt refused with nothing created
outside the workspace root; creation all-or-nothing; bad parameters named."""
import http.client
import json
import os
import re
import socket
import stat
import sys
import tempfile
import time
import urllib.parse

from enslib import SCALE, Daemon, gv, run_tests

AGENT = "struct"


# ---------------------------------------------------------------- helpers

def start(**settings):
    """A daemon whose workspace root is <tmp>/ws, beside an "outside" folder
    that nothing may ever touch.  Returns (daemon, root, outside)."""
    tmp = tempfile.mkdtemp(prefix="ens-struct-")
    root = os.path.join(tmp, "ws")
    outside = os.path.join(tmp, "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("do not touch\n")
    settings.setdefault("struct-workspace-root", gv(root))
    d = Daemon(settings=settings)
    d.struct_tmp = tmp
    return d, root, outside


def cleanup(d):
    import shutil
    d.cleanup()
    shutil.rmtree(d.struct_tmp, ignore_errors=True)


def snapshot(top, skip=None):
    """Every path below @top (not following symlinks) with its type, size and
    content, except below @skip."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        if skip and (dirpath == skip or dirpath.startswith(skip + os.sep)):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            entry = (stat.S_IFMT(st.st_mode), st.st_size)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    entry += (f.read(),)
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            out[os.path.relpath(p, top)] = entry
    return out


def call(c, action, data):
    return c.request(action, data, agent=AGENT)


def ok(c, action, data):
    r = call(c, action, data)
    assert r["status"] == "success", r
    return r["data"]


def err(c, action, data, code):
    r = call(c, action, data)
    assert r["status"] == "error", r
    e = r["error"]
    assert e["code"] == code, r
    assert isinstance(e["message"], str) and e["message"], r
    return e


def wait_socket(path, timeout=10):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return path
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    raise AssertionError(f"{path} never accepted a connection")


def centerfire(d, rid, action, data):
    """One Centerfire request on orchestrator-struct.sock; returns the reply."""
    path = wait_socket(d.path("orchestrator-struct.sock"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    try:
        s.connect(path)
        s.sendall((json.dumps({"id": rid, "interface": "api", "agent": AGENT, "action": action,
                               "data": data}) + "\n").encode())
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    lines = buf.decode().splitlines()
    assert len(lines) == 1, buf
    reply = json.loads(lines[0])
    assert reply["id"] == rid, reply
    return reply


def http_call(d, method, path, body):
    url = urllib.parse.urlparse(d.http_url())
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=10 * SCALE)
    try:
        c.request(method, path, body=json.dumps(body, ensure_ascii=False).encode(),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def read(path):
    with open(path, "rb") as f:
        return f.read()


TREE = {
    "src": {"type": "dir", "children": {
        "main.c": {"type": "file", "content": "int main (void) { return 0; }\n"},
        "util": {"type": "dir", "children": {"strings.h": {"type": "file"}}},
    }},
    "docs": {"type": "dir"},
    "readme.md": {"type": "file", "content": "caf\u00e9 \u2014 h\u00e9llo\n"},
}

TREE_PATHS = ["src", "src/main.c", "src/util", "src/util/strings.h", "docs", "readme.md"]


def check_tree(base):
    assert os.path.isdir(os.path.join(base, "src/util")), os.listdir(base)
    assert os.path.isdir(os.path.join(base, "docs"))
    assert read(os.path.join(base, "src/main.c")) == b"int main (void) { return 0; }\n"
    assert read(os.path.join(base, "src/util/strings.h")) == b""
    assert read(os.path.join(base, "readme.md")) == "caf\u00e9 \u2014 h\u00e9llo\n".encode()


def no_staging(root):
    left = [n for n in os.listdir(root) if n.startswith(".ens-staging-")]
    assert not left, left


# ---------------------------------------------------------------- tests

def test_root_created_private_at_init():
    d, root, _ = start()
    try:
        st = os.stat(root)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        c = d.client()
        listed = c.ok("agents.list")
        names = json.dumps(listed)
        assert '"struct"' in names and "create_structure" in names, listed
    finally:
        cleanup(d)
    # Empty setting: <state-dir>/workspace.
    d = Daemon(settings={"struct-workspace-root": gv("")})
    try:
        ws = os.path.join(d.state_dir, "workspace")
        assert stat.S_IMODE(os.stat(ws).st_mode) == 0o700
        c = d.client()
        assert ok(c, "create_directory", {"path": "alpha"}) == {"path": "alpha", "created": True}
        assert os.path.isdir(os.path.join(ws, "alpha"))
    finally:
        d.cleanup()


def test_create_directory_native_and_centerfire():
    d, root, _ = start()
    try:
        c = d.client()
        assert ok(c, "create_directory", {"path": "proj/src/lib"}) == {"path": "proj/src/lib", "created": True}
        assert os.path.isdir(os.path.join(root, "proj/src/lib"))
        # Again: already there.
        assert ok(c, "create_directory", {"path": "proj/src/lib"}) == {"path": "proj/src/lib", "created": False}
        assert ok(c, "create_directory", {"path": "proj"}) == {"path": "proj", "created": False}
        no_staging(root)

        r = centerfire(d, "cf-1", "create_directory", {"path": "proj/tests"})
        assert r["status"] == "success" and r["data"] == {"path": "proj/tests", "created": True}, r
        assert os.path.isdir(os.path.join(root, "proj/tests"))
        r = centerfire(d, "cf-2", "create_directory", {"path": "../escape"})
        assert r["status"] == "error" and r["error"]["code"] == "PATH_ESCAPE", r

        # A file in the way.
        with open(os.path.join(root, "proj/notes"), "w") as f:
            f.write("x")
        e = err(c, "create_directory", {"path": "proj/notes/deeper"}, "NOT_A_DIRECTORY")
        assert e["details"]["path"] == "proj/notes", e
        e = err(c, "create_directory", {"path": "proj/notes"}, "NOT_A_DIRECTORY")
        assert not os.path.exists(os.path.join(root, "proj/notes/deeper"))
    finally:
        cleanup(d)


def test_create_structure_every_dialect():
    d, root, outside = start()
    try:
        before = snapshot(os.path.dirname(root), skip=root)
        c = d.client()
        # native, at the root
        r = ok(c, "create_structure", {"tree": TREE})
        assert r == {"created": TREE_PATHS, "root": os.path.realpath(root)}, r
        check_tree(root)
        # native, below a base folder that does not exist yet
        r = ok(c, "create_structure", {"path": "apps/web", "tree": TREE})
        assert r["created"] == ["apps", "apps/web"] + ["apps/web/" + p for p in TREE_PATHS], r
        check_tree(os.path.join(root, "apps/web"))
        # Centerfire
        r = centerfire(d, "cf-s", "create_structure", {"path": "apps/cli", "tree": TREE})
        assert r["status"] == "success", r
        assert r["data"]["created"] == ["apps/cli"] + ["apps/cli/" + p for p in TREE_PATHS], r
        check_tree(os.path.join(root, "apps/cli"))
        # HTTP: /api/agents/struct/create_structure (body = data) and /api/request
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure", {"path": "apps/api", "tree": TREE})
        assert status == 200 and body["created"][0] == "apps/api", (status, body)
        check_tree(os.path.join(root, "apps/api"))
        status, body = http_call(d, "POST", "/api/request", {"id": "h-1", "interface": "http", "agent": AGENT,
                                                        "action": "create_structure",
                                                        "data": {"path": "apps/svc", "tree": TREE}})
        assert status == 200 and body["status"] == "success", (status, body)
        check_tree(os.path.join(root, "apps/svc"))
        # An existing base, an empty tree: nothing to do.
        assert ok(c, "create_structure", {"path": "apps", "tree": {}})["created"] == []
        # Errors over HTTP keep their code.
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure", {"path": "/etc", "tree": TREE})
        assert status >= 400 and body["error"]["code"] == "PATH_ESCAPE", (status, body)
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure", {"path": "apps"})
        # (transport-http reports an agent's INVALID_PARAMETERS on its REST
        # routes as VALIDATION_ERROR, details kept.)
        assert status == 422 and body["error"]["code"] in ("INVALID_PARAMETERS", "VALIDATION_ERROR"), (status, body)
        assert body["error"]["details"]["field"] == "tree", body
        no_staging(root)
        assert snapshot(os.path.dirname(root), skip=root) == before
    finally:
        cleanup(d)


def test_validate_structure():
    d, root, outside = start()
    try:
        c = d.client()
        ok(c, "create_structure", {"path": "p", "tree": TREE})
        r = ok(c, "validate_structure", {"path": "p", "tree": TREE})
        assert r == {"valid": True, "missing": [], "extra": [], "mismatched": []}, r

        # Change the disk: one extra file, one folder gone, one file changed,
        # one file replaced by a folder, one by a symlink to the outside.
        base = os.path.join(root, "p")
        with open(os.path.join(base, "src/extra.txt"), "w") as f:
            f.write("x")
        os.mkdir(os.path.join(base, "src/more"))
        os.rmdir(os.path.join(base, "docs"))
        with open(os.path.join(base, "src/main.c"), "w") as f:
            f.write("changed")
        os.unlink(os.path.join(base, "src/util/strings.h"))
        os.mkdir(os.path.join(base, "src/util/strings.h"))
        os.unlink(os.path.join(base, "readme.md"))
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(base, "readme.md"))
        expected = dict(TREE)
        expected["docs"] = {"type": "dir", "children": {"guide": {"type": "dir"}, "index.md": {"type": "file"}}}

        r = ok(c, "validate_structure", {"path": "p", "tree": expected})
        assert r["valid"] is False, r
        assert r["missing"] == ["p/docs", "p/docs/guide", "p/docs/index.md"], r
        assert r["extra"] == ["p/src/extra.txt", "p/src/more"], r
        mism = {m["path"]: m for m in r["mismatched"]}
        assert set(mism) == {"p/src/main.c", "p/src/util/strings.h", "p/readme.md"}, r
        assert mism["p/src/main.c"]["expected"] == "file" and mism["p/src/main.c"]["found"] == "file", r
        assert "content" in mism["p/src/main.c"]["reason"], r
        assert mism["p/src/util/strings.h"]["expected"] == "file" and mism["p/src/util/strings.h"]["found"] == "dir"
        assert mism["p/readme.md"]["found"] == "symlink", r  # never followed
        # A file without content in the tree: any content is fine.
        r = ok(c, "validate_structure", {"path": "p/src", "tree": {"main.c": {"type": "file"}}})
        assert r["missing"] == [] and r["mismatched"] == [] and r["extra"] == ["p/src/extra.txt", "p/src/more",
                                                                               "p/src/util"], r

        # A base folder that does not exist: everything is missing.
        r = ok(c, "validate_structure", {"path": "nowhere/deep", "tree": {"a": {"type": "dir", "children": {
            "b": {"type": "file"}}}}})
        assert r == {"valid": False, "missing": ["nowhere/deep/a", "nowhere/deep/a/b"], "extra": [],
                     "mismatched": []}, r
        assert not os.path.exists(os.path.join(root, "nowhere"))

        # The same through Centerfire and HTTP.
        r = centerfire(d, "cf-v", "validate_structure", {"path": "p/src/util", "tree": {}})
        assert r["status"] == "success" and r["data"]["extra"] == ["p/src/util/strings.h"], r
        status, body = http_call(d, "POST", "/api/agents/struct/validate_structure",
                            {"path": "p", "tree": {"docs": {"type": "dir"}}})
        assert status == 200 and body["missing"] == ["p/docs"], (status, body)
        # A symlink in the base path is refused, not followed.
        os.symlink(outside, os.path.join(root, "out"))
        e = err(c, "validate_structure", {"path": "out", "tree": {}}, "PATH_ESCAPE")
        assert e["details"]["path"] == "out", e
    finally:
        cleanup(d)


def test_escape_attempts_refused():
    d, root, outside = start()
    try:
        parent = os.path.dirname(root)
        os.symlink(outside, os.path.join(root, "link"))               # to an outside folder
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "secret.txt"))  # to an outside file
        os.mkdir(os.path.join(root, "inner"))
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "inner", "notes.txt"))
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "inner", "notes"))
        os.symlink("/tmp", os.path.join(root, "inner", "tmp"))
        os.symlink("../..", os.path.join(root, "inner", "up"))       # relative, up and out
        before_outside = snapshot(parent, skip=root)
        before_root = snapshot(root)
        abs_target = os.path.join(outside, "abs")
        c = d.client()

        cases = [
            ("create_directory", {"path": "../x"}, "PATH_ESCAPE"),
            ("create_directory", {"path": "a/../../x"}, "PATH_ESCAPE"),
            ("create_directory", {"path": "a/.."}, "PATH_ESCAPE"),
            ("create_directory", {"path": ".."}, "PATH_ESCAPE"),
            ("create_directory", {"path": "/etc/ens-struct-test"}, "PATH_ESCAPE"),
            ("create_directory", {"path": abs_target}, "PATH_ESCAPE"),
            ("create_directory", {"path": "link/sub"}, "PATH_ESCAPE"),
            ("create_directory", {"path": "link"}, "PATH_ESCAPE"),
            ("create_directory", {"path": "inner/tmp/x"}, "PATH_ESCAPE"),
            ("create_directory", {"path": "inner/up/outside/x"}, "PATH_ESCAPE"),
            ("create_structure", {"path": "link", "tree": {"x": {"type": "dir"}}}, "PATH_ESCAPE"),
            ("create_structure", {"path": "inner/up", "tree": {"x": {"type": "dir"}}}, "PATH_ESCAPE"),
            ("create_structure", {"path": "../outside", "tree": {"x": {"type": "dir"}}}, "PATH_ESCAPE"),
            ("create_structure", {"path": outside, "tree": {"x": {"type": "dir"}}}, "PATH_ESCAPE"),
            ("create_structure", {"tree": {"..": {"type": "dir", "children": {"x": {"type": "dir"}}}}}, "PATH_ESCAPE"),
            ("create_structure", {"tree": {"../outside": {"type": "dir"}}}, "PATH_ESCAPE"),
            ("create_structure", {"tree": {"ok": {"type": "dir", "children": {
                "..": {"type": "dir", "children": {"..": {"type": "file", "content": "x"}}}}}}}, "PATH_ESCAPE"),
            # Symlinks already in the root, met by a tree: never written through.
            ("create_structure", {"tree": {"secret.txt": {"type": "file", "content": "pwned"}}}, "PATH_EXISTS"),
            ("create_structure", {"tree": {"link": {"type": "dir", "children": {"x": {"type": "file"}}}}},
             "PATH_EXISTS"),
            ("create_structure", {"path": "inner", "tree": {"notes.txt": {"type": "file", "content": "pwned"}}},
             "PATH_EXISTS"),
            ("create_structure", {"path": "inner/notes", "tree": {"x": {"type": "file"}}}, "PATH_ESCAPE"),
            ("create_directory", {"path": "inner/notes/x"}, "PATH_ESCAPE"),
            ("validate_structure", {"path": "link", "tree": {}}, "PATH_ESCAPE"),
            ("validate_structure", {"path": "../", "tree": {}}, "PATH_ESCAPE"),
            ("validate_structure", {"path": "/", "tree": {}}, "PATH_ESCAPE"),
        ]
        for action, data, code in cases:
            e = err(c, action, data, code)
            assert "field" in e["details"], e
        # The same over Centerfire and HTTP.
        r = centerfire(d, "cf-e", "create_directory", {"path": "link/sub"})
        assert r["status"] == "error" and r["error"]["code"] == "PATH_ESCAPE", r
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure",
                            {"path": "a/../../x", "tree": {"y": {"type": "dir"}}})
        assert status >= 400 and body["error"]["code"] == "PATH_ESCAPE", (status, body)

        # A NUL in a string is refused before any agent sees it (json-glib
        # would silently cut the string there).
        c.send({"id": "nul", "agent": "struct", "action": "create_directory", "data": {"path": "nul\u0000/../../x"}})
        r = c.recv()
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_JSON" and "NUL" in r["error"]["message"], r

        assert snapshot(parent, skip=root) == before_outside, "something changed outside the root"
        after_root = snapshot(root)
        assert after_root == before_root, set(after_root) ^ set(before_root)
        assert not os.path.exists("/etc/ens-struct-test")
        assert read(os.path.join(outside, "secret.txt")) == b"do not touch\n"
        no_staging(root)
    finally:
        cleanup(d)


def test_rejected_names():
    d, root, outside = start()
    try:
        c = d.client()
        before = snapshot(root)
        e = err(c, "create_directory", {"path": "good/Bad Name/x"}, "INVALID_NAME")
        assert e["details"]["field"] == "Bad Name", e
        assert e["details"]["reasons"] and all("message" in r for r in e["details"]["reasons"]), e
        e = err(c, "create_directory", {"path": "admin"}, "INVALID_NAME")
        assert e["details"]["field"] == "admin", e
        assert any(r.get("rule") == "reserved" for r in e["details"]["reasons"]), e
        e = err(c, "create_structure", {"tree": {"fine": {"type": "dir", "children": {
            "admin.txt": {"type": "file"}}}}}, "INVALID_NAME")
        assert e["details"]["field"] == "admin" and e["details"]["path"] == "fine/admin.txt", e
        e = err(c, "create_structure", {"path": "Bad Name", "tree": {}}, "INVALID_NAME")
        assert e["details"]["field"] == "Bad Name", e
        e = err(c, "validate_structure", {"tree": {"Root": {"type": "dir"}}}, "INVALID_NAME")
        assert e["details"]["field"] == "Root", e
        # Checked here: extensions, hidden names, more than one dot.
        for name, bad in [("notes.TXT", "notes.TXT"), ("archive.tar.gz", "archive.tar.gz"),
                          (".hidden", ".hidden"), ("x.waytoolongext", "x.waytoolongext")]:
            e = err(c, "create_structure", {"tree": {name: {"type": "file"}}}, "INVALID_NAME")
            assert e["details"]["field"] == bad and e["details"]["reasons"], e
        # A folder name is one naming segment: no dots.
        e = err(c, "create_directory", {"path": "v1.2"}, "INVALID_NAME")
        assert e["details"]["field"] == "v1.2", e
        # Over Centerfire.
        r = centerfire(d, "cf-n", "create_structure", {"tree": {"ok": {"type": "dir", "children": {
            "Bad Name": {"type": "dir"}}}}})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_NAME", r
        assert r["error"]["details"]["field"] == "Bad Name", r
        assert snapshot(root) == before
        no_staging(root)
    finally:
        cleanup(d)


def test_all_or_nothing():
    d, root, outside = start()
    try:
        c = d.client()
        ok(c, "create_structure", {"tree": {"keep": {"type": "dir", "children": {
            "taken.txt": {"type": "file", "content": "original"}}}}})
        before = snapshot(root)

        def tree_failing_at_third(third):
            return {"first": {"type": "dir", "children": {"a": {"type": "file", "content": "1"}}},
                    "second": {"type": "file", "content": "2"},
                    "third": third,
                    "fourth": {"type": "dir"}}

        # A rejected name deep inside the third entry.
        e = err(c, "create_structure", {"tree": tree_failing_at_third(
            {"type": "dir", "children": {"deep": {"type": "dir", "children": {
                "deeper": {"type": "dir", "children": {"admin": {"type": "dir"}}}}}}})}, "INVALID_NAME")
        assert e["details"]["path"] == "third/deep/deeper/admin", e
        assert snapshot(root) == before
        # A third entry that already exists (a file below the base).
        tree = {"first.txt": {"type": "file", "content": "1"}, "second": {"type": "dir"},
                "taken.txt": {"type": "file", "content": "new"}, "fourth": {"type": "dir"}}
        e = err(c, "create_structure", {"path": "keep", "tree": tree}, "PATH_EXISTS")
        assert e["details"]["path"] == "keep/taken.txt", e
        assert snapshot(root) == before
        # A bad parameter in the third entry.
        e = err(c, "create_structure", {"tree": tree_failing_at_third({"type": "file", "content": 3})},
                "INVALID_PARAMETERS")
        assert e["details"]["field"] == "tree/third/content", e
        assert snapshot(root) == before
        # The missing base is not left behind either.
        e = err(c, "create_structure", {"path": "new/base", "tree": tree_failing_at_third(
            {"type": "dir", "children": {"Nope": {"type": "dir"}}})}, "INVALID_NAME")
        assert snapshot(root) == before
        no_staging(root)
        # And the same tree, fixed, is created whole.
        r = ok(c, "create_structure", {"path": "new/base", "tree": tree_failing_at_third({"type": "dir"})})
        assert r["created"] == ["new", "new/base", "new/base/first", "new/base/first/a", "new/base/second",
                                "new/base/third", "new/base/fourth"], r
        # Now every top-level entry exists: a second run changes nothing.
        mid = snapshot(root)
        err(c, "create_structure", {"path": "new/base", "tree": tree_failing_at_third({"type": "dir"})},
            "PATH_EXISTS")
        assert snapshot(root) == mid
        no_staging(root)
    finally:
        cleanup(d)


class LimitedDaemon(Daemon):
    """A daemon whose files may not grow past @fsize bytes (RLIMIT_FSIZE,
    SIGXFSZ ignored, so a write fails with EFBIG): a way to make creation
    fail part way through, after the checks, while files are written."""

    def __init__(self, fsize, **kw):
        self.fsize = fsize
        super().__init__(**kw)

    def command(self):
        wrapper = ("import os, resource, signal, sys; "
                   "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1]))); "
                   "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); os.execv(sys.argv[2], sys.argv[2:])")
        return [sys.executable, "-c", wrapper, str(self.fsize)] + super().command()


def test_failure_while_writing_leaves_nothing():
    tmp = tempfile.mkdtemp(prefix="ens-struct-")
    root = os.path.join(tmp, "ws")
    d = LimitedDaemon(512 * 1024, settings={"struct-workspace-root": gv(root)})
    d.struct_tmp = tmp
    try:
        c = d.client()
        ok(c, "create_directory", {"path": "keep"})
        before = snapshot(root)
        tree = {"first": {"type": "dir", "children": {"a.txt": {"type": "file", "content": "1"}}},
                "second": {"type": "file", "content": "2"},
                "third": {"type": "dir", "children": {"big.bin": {"type": "file", "content": "x" * 600000}}},
                "fourth": {"type": "dir"}}
        for base in ("", "keep", "new/base"):
            e = err(c, "create_structure", {"path": base, "tree": tree}, "IO_ERROR")
            assert e["details"]["path"].endswith("third/big.bin"), e
            assert snapshot(root) == before, base
            no_staging(root)
        # Below the limit, the same tree is fine.
        tree["third"]["children"]["big.bin"]["content"] = "x" * 1000
        assert len(ok(c, "create_structure", {"path": "new/base", "tree": tree})["created"]) == 8
    finally:
        cleanup(d)


def test_bad_parameters():
    d, root, outside = start()
    try:
        c = d.client()
        before = snapshot(root)
        cases = [
            ("create_directory", {}, "path"),
            ("create_directory", {"path": ""}, "path"),
            ("create_directory", {"path": 3}, "path"),
            ("create_directory", {"path": "a//b"}, "path"),
            ("create_directory", {"path": "a/"}, "path"),
            ("create_directory", {"path": "./a"}, "path"),
            ("create_directory", [1, 2], "data"),
            ("create_structure", {}, "tree"),
            ("create_structure", {"tree": []}, "tree"),
            ("create_structure", {"tree": "x"}, "tree"),
            ("create_structure", {"path": ["a"], "tree": {}}, "path"),
            ("create_structure", {"tree": {"a": "dir"}}, "tree/a"),
            ("create_structure", {"tree": {"a": {}}}, "tree/a/type"),
            ("create_structure", {"tree": {"a": {"type": "link"}}}, "tree/a/type"),
            ("create_structure", {"tree": {"a": {"type": "dir", "children": []}}}, "tree/a/children"),
            ("create_structure", {"tree": {"a": {"type": "dir", "content": "x"}}}, "tree/a/content"),
            ("create_structure", {"tree": {"a": {"type": "file", "children": {}}}}, "tree/a/children"),
            ("create_structure", {"tree": {"a": {"type": "file", "content": {"x": 1}}}}, "tree/a/content"),
            ("create_structure", {"tree": {"a": {"type": "file", "mode": "0777"}}}, "tree/a/mode"),
            ("create_structure", {"tree": {"a": {"type": "dir", "children": {"b": {"type": 1}}}}},
             "tree/a/children/b/type"),
            ("create_structure", {"tree": {"": {"type": "dir"}}}, "tree/"),
            ("create_structure", {"tree": {".": {"type": "dir"}}}, "tree/."),
            ("validate_structure", {"path": "x"}, "tree"),
            ("validate_structure", {"tree": {"a": {"type": "file", "content": False}}}, "tree/a/content"),
        ]
        for action, data, field in cases:
            e = err(c, action, data, "INVALID_PARAMETERS")
            assert e["details"]["field"] == field, (action, data, e)
            assert "expected" in e["details"], e
        e = err(c, "nope", {}, "UNKNOWN_ACTION")
        # Limits: depth, entries, content size.
        deep = {}
        node = deep
        for i in range(33):
            node["d"] = {"type": "dir", "children": {}}
            node = node["d"]["children"]
        e = err(c, "create_structure", {"tree": deep}, "TOO_LARGE")
        assert e["details"]["field"].startswith("tree/d/children"), e
        many = {f"f{i}": {"type": "file"} for i in range(10001)}
        e = err(c, "create_structure", {"tree": many}, "TOO_LARGE")
        assert e["details"]["field"] == "tree" and e["details"]["limit"] == 10000, e
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure",
                            {"tree": {"big.txt": {"type": "file", "content": "x" * (1024 * 1024 + 1)}}})
        assert body["error"]["code"] == "TOO_LARGE", (status, body)
        assert body["error"]["details"]["field"] == "tree/big.txt/content", body
        e = err(c, "create_directory", {"path": "/".join(["d"] * 33)}, "TOO_LARGE")
        assert e["details"]["field"] == "path", e
        # Over Centerfire and HTTP /api/request too.
        r = centerfire(d, "cf-p", "create_structure", {"tree": {"a": {"type": "socket"}}})
        assert r["status"] == "error" and r["error"]["code"] == "INVALID_PARAMETERS", r
        assert r["error"]["details"]["field"] == "tree/a/type", r
        status, body = http_call(d, "POST", "/api/request", {"id": "h-p", "agent": AGENT, "action": "create_directory",
                                                        "data": {"path": None}})
        assert status == 422 and body["error"]["details"]["field"] == "path", (status, body)
        assert snapshot(root) == before
        no_staging(root)
    finally:
        cleanup(d)


def test_limits_are_usable():
    """The largest allowed tree (10000 entries, 32 levels, 1 MiB files) is
    created whole, every name checked with the naming agent."""
    d, root, outside = start()
    try:
        c = d.client()
        c.sock.settimeout(60 * SCALE)  # 10000 files: the disk may be busy
        tree = {}
        for i in range(100):
            tree[f"dir{i}"] = {"type": "dir", "children": {f"file{j}.txt": {"type": "file", "content": f"{i}/{j}"}
                                                           for j in range(99)}}
        t0 = time.time()
        r = ok(c, "create_structure", {"path": "big", "tree": tree})
        took = time.time() - t0
        print(f"     10000 entries created in {took:.2f}s", flush=True)
        assert len(r["created"]) == 1 + 10000, len(r["created"])
        assert read(os.path.join(root, "big/dir42/file7.txt")) == b"42/7"
        assert took < 45 * SCALE, took
        r = ok(c, "validate_structure", {"path": "big", "tree": tree})
        assert r["valid"], r
        deep = {}
        node = deep
        for i in range(31):
            node[f"l{i}"] = {"type": "dir", "children": {}}
            node = node[f"l{i}"]["children"]
        node["f.bin"] = {"type": "file", "content": "\u00e9" * (512 * 1024)}  # 1 MiB of UTF-8
        status, body = http_call(d, "POST", "/api/agents/struct/create_structure", {"tree": deep})
        assert status == 200 and len(body["created"]) == 32, (status, body)
        path = os.path.join(root, *[f"l{i}" for i in range(31)], "f.bin")
        assert len(read(path)) == 1024 * 1024
    finally:
        cleanup(d)


def test_naming_agent_unavailable():
    d, root, outside = start(**{"disabled-plugins": gv(["agent-naming"])})
    try:
        c = d.client()
        before = snapshot(root)
        e = err(c, "create_directory", {"path": "project"}, "NAMING_UNAVAILABLE")
        assert e["details"]["cause"] == "AGENT_NOT_FOUND", e
        e = err(c, "create_structure", {"tree": TREE}, "NAMING_UNAVAILABLE")
        r = centerfire(d, "cf-u", "validate_structure", {"tree": TREE})
        assert r["status"] == "error" and r["error"]["code"] == "NAMING_UNAVAILABLE", r
        # Escapes are still refused first, and a request with no name to
        # check needs no naming agent.
        err(c, "create_directory", {"path": "../x"}, "PATH_ESCAPE")
        assert ok(c, "validate_structure", {"tree": {}}) == {"valid": True, "missing": [], "extra": [],
                                                            "mismatched": []}
        assert snapshot(root) == before
        no_staging(root)
    finally:
        cleanup(d)


def test_stale_staging_removed_at_start():
    d, root, outside = start()
    try:
        d.stop()
        stale = os.path.join(root, ".ens-staging-abc123")
        os.makedirs(os.path.join(stale, "half/done"))
        with open(os.path.join(stale, "half/file.txt"), "w") as f:
            f.write("x")
        os.symlink(outside, os.path.join(stale, "out"))  # removed, not followed
        d.start()
        no_staging(root)
        assert read(os.path.join(outside, "secret.txt")) == b"do not touch\n"
    finally:
        cleanup(d)


run_tests(globals())
