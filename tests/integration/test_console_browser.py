"""The web console at / in a real browser: Debian's Chromium, headless,
driven by puppeteer-core (tests/js/console-browser.mjs) against the real
daemon with a scripted fake upstream behind it.  The browser clicks through
every view and checks that live updates arrive; a browser run as another
user is asked for the token, and gets in with it.

Also, with curl: the console's files, their headers and revalidation, and
every bad path answered 404 without leaving the folder; GET
/api/stats/history and its bad input."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

from enslib import BAD_FIXTURES, PLUGIN_DIR, SCALE, Daemon, gv, run_tests
from fake_upstream import FakeUpstream

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")
CHROMIUM = os.environ.get("ENS_CHROMIUM", "/usr/bin/chromium")
NOBODY = 65534
# Where the screenshots go, if anywhere (not part of the test's verdict).
SHOTS = os.environ.get("ENS_SCREENSHOT_DIR", "")


def browser_skip_reason():
    """Why the browser cannot run here; with CI=true in the environment
    a missing browser or driver fails the test instead of skipping it."""
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    elif not os.path.isdir(os.path.join(JS_DIR, "node_modules", "puppeteer-core")):
        reason = "tests/js/node_modules has no puppeteer-core (./dev.sh test installs it)"
    assert not (reason and os.environ.get("CI") == "true"), reason
    return reason


def daemon_settings(up, token_file=None):
    # drip streams twenty words; broken answers 500, and one failure cools it down
    s = {"providers": gv(["drip", "broken"]), "daily-budget": gv(2.0), "provider-failure-threshold": gv(1),
         "provider-cooldown-ms": gv(120000)}
    if token_file:
        s["http-token-file"] = gv(token_file)
    groups = {"providers/drip": {
        "plugin": gv("provider-openai"),
        "base-url": gv(up.base("stream,chunks=20,interval=60")),
        "models": gv(["fake-drip"]),
        "latency-ms": gv(200),
        "max-retries": gv(0),
        "timeout-ms": gv(20000),
        "cost-input-per-1k": gv(0.5),
        "cost-output-per-1k": gv(1.5),
    }, "providers/broken": {
        "plugin": gv("provider-openai"),
        "base-url": gv(up.base("status=500")),
        "models": gv(["fake-broken"]),
        "quality": gv(0.2),
        "max-retries": gv(0),
        "timeout-ms": gv(20000),
    }}
    return s, groups


def run_browser(mode, url, extra_env=None):
    profile = tempfile.mkdtemp(prefix="ens-chromium-")
    env = dict(os.environ, ENS_CONSOLE_URL=url, ENS_CHROMIUM=CHROMIUM, ENS_BROWSER_PROFILE=profile)
    env.setdefault("NODE_PATH", os.path.join(JS_DIR, "node_modules"))
    env.update(extra_env or {})
    if SHOTS:
        env["ENS_SCREENSHOT_DIR"] = SHOTS
    if mode == "stranger":
        os.chown(profile, NOBODY, NOBODY)
    try:
        r = subprocess.run(["node", "console-browser.mjs", mode], cwd=JS_DIR, capture_output=True, text=True,
                           timeout=180 * SCALE, env=env)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print(r.stdout, end="")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-4000:])


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20 * SCALE) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_the_console_in_a_browser():
    reason = browser_skip_reason()
    if reason:
        print(f"  SKIP: {reason}")
        return
    up = FakeUpstream()
    settings, groups = daemon_settings(up)
    d = Daemon(plugin_dirs=[PLUGIN_DIR, BAD_FIXTURES], settings=settings, groups=groups)
    try:
        run_browser("owner", d.http_url())
        # what the page showed is what the daemon says
        c = d.client()
        assert c.ok("budget")["current_spend"] > 0
    finally:
        d.cleanup()
        up.close()


def test_another_user_enters_the_token():
    reason = browser_skip_reason()
    if reason is None and os.geteuid() != 0:
        reason = "not root: the browser cannot run as another user"
    if reason is None and shutil.which("setpriv") is None:
        reason = "setpriv (util-linux) is missing"
    if reason:
        print(f"  SKIP: {reason}")
        return
    tmp = tempfile.mkdtemp(prefix="ens-token-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("console-s3cret\n")
    up = FakeUpstream()
    settings, groups = daemon_settings(up, token_file)
    d = Daemon(settings=settings, groups=groups)
    try:
        run_browser("stranger", d.http_url(), {"ENS_TOKEN": "console-s3cret", "ENS_STRANGER_UID": str(NOBODY)})
    finally:
        d.cleanup()
        up.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_console_files():
    d = Daemon()
    try:
        base = d.http_url()
        status, h, body = get(base + "/")
        assert status == 200 and h["content-type"].startswith("text/html"), (status, h)
        assert b"/console/app.js" in body, body[:200]
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert h["x-content-type-options"] == "nosniff" and h["cache-control"] == "no-cache", h
        # every file the page names is served, with its type
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")):
            status, h, body = get(base + "/console/" + name)
            assert status == 200 and h["content-type"].startswith(kind) and body, (name, status, h)
        for m in re.finditer(rb"from '\./([a-z-]+\.js)'", get(base + "/console/app.js")[2]):
            assert get(base + "/console/" + m.group(1).decode())[0] == 200, m.group(1)
        # revalidation: the same ETag answers 304 with no body
        status, h, _ = get(base + "/console/app.js")
        status, _, body = get(base + "/console/app.js", {"If-None-Match": h["etag"]})
        assert status == 304 and body == b"", status
        status, _, body = get(base + "/console/app.js", {"If-None-Match": '"other"'})
        assert status == 200 and body, status
        # bad paths: 404 with the daemon's error body, never a file outside
        for path in ("/console/", "/console/..%2F..%2Fmeson.build", "/console/.hidden",
                     "/console/nope.js", "/console/app.exe", "/console/a%00.js", "/console/" + "a" * 70 + ".js",
                     "/console/sub/app.js"):
            status, h, body = get(base + path)
            # an encoded '/' or NUL is refused by the HTTP layer itself (400)
            assert status == 404 or (status == 400 and ("%2F" in path or "%00" in path)), (path, status, body[:200])
            if body:
                err = json.loads(body)["error"]
                assert err["code"] == "NOT_FOUND" and err["message"], (path, err)
        # the daemon is unharmed
        assert get(base + "/health")[0] == 200
    finally:
        d.cleanup()


def test_a_missing_console_folder_is_a_clear_404():
    tmp = tempfile.mkdtemp(prefix="ens-noconsole-")
    d = Daemon(settings={"http-console-dir": gv(tmp)})
    try:
        status, _, body = get(d.http_url() + "/")
        assert status == 404, status
        err = json.loads(body)["error"]
        assert err["code"] == "NOT_FOUND" and "http-console-dir" in err["message"], err
        assert "the web console is not installed" in d.read_log()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_stats_history():
    d = Daemon()
    try:
        base = d.http_url()
        c = d.client()
        # a point a second: wait for two on the watch, without sleeping blind
        w = c.ok("stats.watch", {"seconds": 5})
        assert w["watching"] is True and w["history"]["interval_ms"] == 1000, w
        ev = c.next_event()
        assert ev["event"] == "ensemble.stats", ev
        point = ev["data"]
        for k in ("t", "requests_per_s", "deliveries_per_s", "published_per_s", "errors_per_s", "completions_per_s",
                  "completion_latency_ms", "connections", "completions_running", "totals"):
            assert k in point, (k, point)
        assert point["connections"] >= 1 and point["totals"]["requests"] >= 1, point
        status, _, body = get(base + "/api/stats/history?seconds=3")
        assert status == 200, (status, body)
        h = json.loads(body)
        assert h["capacity"] == 600 and 1 <= h["count"] <= 3, h
        assert all(len(h[k]) == h["count"] for k in ("t", "requests_per_s", "connections")), h
        assert h["t"] == sorted(h["t"]), h
        for bad in ("0", "601", "x", "-1", "1.5", ""):
            status, _, body = get(base + "/api/stats/history?seconds=" + bad)
            assert status == 422, (bad, status, body)
            err = json.loads(body)["error"]
            assert err["code"] == "VALIDATION_ERROR" and err["details"]["field"] == "seconds", err
        r = c.request("stats.history", {"seconds": "ten"})
        assert r["status"] == "error" and r["error"]["details"]["field"] == "seconds", r
        assert c.ok("stats.unwatch")["was_watching"] is True
        assert c.ok("stats.unwatch")["was_watching"] is False
        assert get(base + "/health")[0] == 200
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
