"""`meson install --destdir`, then the installed daemon runs from there: it
finds its plugins and its schema without being told, and the service,
D-Bus and pkg-config files are where packagers and users look for them."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

from enslib import BUILD, SCALE, SOURCE_ROOT, run_tests


def install(dest):
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    files = []
    for root, _, names in os.walk(dest):
        files += [os.path.join(root, n)[len(dest):] for n in names]
    return files


def find(files, suffix):
    hits = [f for f in files if f.endswith(suffix)]
    assert hits, f"nothing installed ends with {suffix}: {sorted(files)}"
    return hits[0]


def request(sock_path, action, data=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10 * SCALE)
    s.connect(sock_path)
    s.sendall((json.dumps({"id": "1", "action": action, "data": data or {}}) + "\n").encode())
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(65536)
    s.close()
    return json.loads(buf.split(b"\n")[0])


def test_installed_daemon_runs_from_destdir():
    dest = tempfile.mkdtemp(prefix="ens-install-")
    proc = None
    try:
        files = install(dest)
        daemon = dest + find(files, "/bin/ensembled")
        ctl = dest + find(files, "/bin/ensemblectl")
        schema = find(files, "/glib-2.0/schemas/org.ensemble.Daemon.gschema.xml")
        plugin = find(files, "/ensemble-1/plugins/transport-unix.so")
        for f in ("/dbus-1/interfaces/org.ensemble.Daemon1.xml", "/dbus-1/services/org.ensemble.Daemon1.service",
                  "/dbus-1/system.d/org.ensemble.Daemon1.conf", "/systemd/user/ensembled.service",
                  "/systemd/system/ensembled.service", "/include/ensemble-1/ensemble/ensemble.h",
                  "/pkgconfig/ensemble-1.pc"):
            find(files, f)
        # Man pages, and completion where bash-completion and zsh look under the prefix.
        prefix_of = os.path.dirname(os.path.dirname(find(files, "/bin/ensembled")))
        for f in ("/share/man/man8/ensembled.8", "/share/man/man1/ensemblectl.1", "/share/man/man7/ensemble-plugin.7",
                  "/share/bash-completion/completions/ensemblectl", "/share/zsh/site-functions/_ensemblectl"):
            assert prefix_of + f in files, (f, sorted(files))
        page = subprocess.run(["man", "-l", dest + prefix_of + "/share/man/man1/ensemblectl.1"], capture_output=True,
                              text=True, env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
        assert page.returncode == 0 and "ensemblectl - command-line client" in page.stdout, page.stderr

        # No post-install step: `meson install --destdir` skips glib-compile-schemas,
        # and the daemon finds its own compiled copy.
        assert not os.path.exists(dest + os.path.dirname(schema) + "/gschemas.compiled")
        find(files, "/share/ensemble-1/schemas/gschemas.compiled")

        tmp = tempfile.mkdtemp(prefix="ens-installed-run-", dir=dest)
        conf = os.path.join(tmp, "conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nhttp-port=0\nws-port=0\ndbus-bus='none'\n")
        env = {k: v for k, v in os.environ.items() if k not in ("GSETTINGS_SCHEMA_DIR", "PKG_CONFIG_PATH")}
        log = open(os.path.join(tmp, "log"), "w")
        proc = subprocess.Popen([daemon, "--socket-dir", os.path.join(tmp, "s"), "--state-dir", os.path.join(tmp, "st"),
                                 "--config", conf], stdout=log, stderr=subprocess.STDOUT, env=env)
        sock = os.path.join(tmp, "s", "ensemble.sock")
        deadline = time.time() + 10 * SCALE
        while not os.path.exists(sock) and time.time() < deadline:
            assert proc.poll() is None, open(os.path.join(tmp, "log")).read()
            time.sleep(0.05)
        time.sleep(0.2)
        health = request(sock, "health")["data"]
        loaded = {p["id"]: p["file"] for p in health["plugins"]}
        assert "transport-unix" in loaded and "provider-local" in loaded, loaded
        assert loaded["transport-unix"] == dest + plugin, (loaded, plugin)
        done = subprocess.run([ctl, "--socket", sock, "complete", "installed and running"], capture_output=True,
                              text=True, env=env, timeout=30)
        assert done.returncode == 0 and "installed and running" in done.stdout, done.stdout + done.stderr

        # The web console is installed with the daemon and served from there.
        console = find(files, "/ensemble/console/index.html")
        for name in ("app.js", "conn.js", "style.css", "view-overview.js"):
            find(files, "/ensemble/console/" + name)
        m = re.search(r"transport-http: listening on (http://127\.0\.0\.1:\d+)", open(os.path.join(tmp, "log")).read())
        assert m, open(os.path.join(tmp, "log")).read()
        with open(dest + console, "a") as f:
            f.write("<!-- the installed copy -->\n")  # not the source tree's
        with urllib.request.urlopen(m.group(1) + "/", timeout=10 * SCALE) as r:
            page = r.read()
        assert page.endswith(b"<!-- the installed copy -->\n") and b"/console/app.js" in page, page[-200:]
        with urllib.request.urlopen(m.group(1) + "/console/app.js", timeout=10 * SCALE) as r:
            assert r.headers["Content-Type"].startswith("text/javascript"), r.headers

        # A third party builds a plugin against the installed headers.
        pc_dir = dest + os.path.dirname(find(files, "/pkgconfig/ensemble-1.pc"))
        cflags = subprocess.run(["pkg-config", "--cflags", "ensemble-1"], capture_output=True, text=True,
                                env=dict(env, PKG_CONFIG_PATH=pc_dir, PKG_CONFIG_SYSROOT_DIR=dest), check=True).stdout
        assert f"-I{dest}" in cflags and "ensemble-1" in cflags, cflags

        # The units point at the installed binary and the system unit is hardened.
        unit_path = find(files, "/systemd/system/ensembled.service")
        unit = open(dest + unit_path).read()
        bindir = os.path.dirname(find(files, "/bin/ensembled"))
        prefix = os.path.dirname(bindir)
        for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "RuntimeDirectory=ensemble",
                          "StateDirectory=ensemble", "ExecStart=" + find(files, "/bin/ensembled"), "Type=notify",
                          "WatchdogSec=", "NotifyAccess=main"):
            assert directive in unit, directive
        user_unit = open(dest + find(files, "/systemd/user/ensembled.service")).read()
        assert "Type=notify" in user_unit and "ExecStart=" + find(files, "/bin/ensembled") in user_unit, user_unit
        # Both units and the settings file follow the prefix.
        assert unit_path == prefix + "/lib/systemd/system/ensembled.service", unit_path
        conf_path = re.search(r"--config=(\S+)", unit).group(1)
        assert conf_path in files, (conf_path, sorted(files))
        assert conf_path == prefix + "/etc/ensemble/ensembled.conf", conf_path
        # The settings file installed for the unit is one the daemon reads (it
        # refuses a missing one): the installed daemon starts on it as it is.
        os.mkdir(os.path.join(tmp, "no-plugins"))
        check = subprocess.run([daemon, "--config", dest + conf_path, "--socket-dir", os.path.join(tmp, "s2"),
                                "--state-dir", os.path.join(tmp, "st2"), "--plugin-dir", os.path.join(tmp, "no-plugins")],
                               capture_output=True, text=True, env=env, timeout=30)
        assert check.returncode == 1 and "no transport plugin started" in check.stderr, check.stderr
        assert "invalid value" not in check.stderr, check.stderr
        # The D-Bus system policy is where dbus-daemon reads it.
        assert "/usr/share/dbus-1/system.d/org.ensemble.Daemon1.conf" in files, sorted(files)

        # The README's service settings are the unit's, for a /usr install.
        readme = open(os.path.join(SOURCE_ROOT, "README.md")).read()
        usr_conf = "/etc/ensemble/ensembled.conf"
        assert re.search(r"cat > (\S+) <<", readme).group(1) == usr_conf, "README writes its keyfile elsewhere"
        assert f"ensembled --config {usr_conf}" in readme, "README starts the daemon with another --config"
        for flag in re.findall(r"--(?:socket|state)-dir=(\S+)", unit):
            assert f"'{flag}'" in readme, (flag, "not in the README's keyfile")

        proc.terminate()
        assert proc.wait(10 * SCALE) == 0
        proc = None
    finally:
        if proc:
            proc.kill()
        shutil.rmtree(dest, ignore_errors=True)


run_tests(globals())
