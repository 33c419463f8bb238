"""A third-party plugin built out of tree with only pkg-config, as the plugin
ABI promises: tests/fixtures/good/agent-echo.c compiled by hand, checked for
its exported symbols, loaded by the daemon and driven over the socket."""
import os
import shlex
import shutil
import subprocess
import tempfile

from enslib import BUILD, PLUGIN_DIR, SCALE, SOURCE_ROOT, Daemon, run_tests

SOURCE = os.path.join(SOURCE_ROOT, "tests", "fixtures", "good", "agent-echo.c")


def env_with_pkg_config():
    env = dict(os.environ)
    # meson test sets PKG_CONFIG_PATH; by hand we point at the uninstalled .pc.
    if not env.get("PKG_CONFIG_PATH"):
        env["PKG_CONFIG_PATH"] = os.path.join(os.path.abspath(BUILD), "meson-uninstalled")
    return env


def sh(cmd, env, cwd=None):
    p = subprocess.run(cmd, shell=True, capture_output=True, env=env, cwd=cwd, timeout=60 * SCALE)
    assert p.returncode == 0, f"`{cmd}` failed ({p.returncode}):\n{p.stdout.decode()}\n{p.stderr.decode()}"
    return p.stdout.decode()


def test_pkg_config_gives_the_plugin_headers():
    env = env_with_pkg_config()
    cflags = sh("pkg-config --cflags ensemble-1", env).split()
    includes = [f[2:] for f in cflags if f.startswith("-I")]
    assert any(os.path.isfile(os.path.join(i, "ensemble", "ensemble.h")) for i in includes), (
        f"`pkg-config --cflags ensemble-1` has no folder holding ensemble/ensemble.h: {cflags} "
        f"(PKG_CONFIG_PATH={env['PKG_CONFIG_PATH']})")
    sh("pkg-config --modversion ensemble-1", env)


def test_out_of_tree_plugin_builds_exports_and_loads():
    tmp = tempfile.mkdtemp(prefix="ens-oot-")
    d = None
    try:
        env = env_with_pkg_config()
        plugins = os.path.join(tmp, "plugins")
        os.makedirs(plugins)
        src = os.path.join(tmp, "agent-echo.c")
        shutil.copy(SOURCE, src)  # nothing from the source tree but this one file
        out = os.path.join(plugins, "agent-echo.so")
        cc = env.get("CC", "cc")
        sh(f"{cc} -shared -fPIC -fvisibility=hidden $(pkg-config --cflags ensemble-1) agent-echo.c "
           f"-o {shlex.quote(out)} $(pkg-config --libs glib-2.0 json-glib-1.0)", env, cwd=tmp)
        os.chmod(out, 0o755)  # whatever the umask: the daemon refuses writable plugins

        symbols = sh(f"nm -D --defined-only {shlex.quote(out)}", env)
        names = [line.split()[-1] for line in symbols.splitlines() if line.strip()]
        ens = sorted(n for n in names if n.startswith("ens_"))
        assert ens == ["ens_plugin_query"], ens

        d = Daemon(plugin_dirs=[PLUGIN_DIR, plugins])
        c = d.client()
        listed = {p["id"]: p for p in c.ok("plugins.list")["plugins"]}
        assert "agent-echo" in listed, (listed, d.read_log())
        assert os.path.realpath(listed["agent-echo"]["file"]) == os.path.realpath(out), listed["agent-echo"]
        assert c.ok("echo", {"from": "out of tree", "n": [1, 2, 3]}, agent="echo") == \
            {"from": "out of tree", "n": [1, 2, 3]}
        r = c.request("fail", {"code": "OOT", "message": "built by hand"}, agent="echo")
        assert r["status"] == "error" and r["error"]["code"] == "OOT", r
        c.close()
        assert "plugin refused" not in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


run_tests(globals())
