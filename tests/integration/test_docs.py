"""The operator's documentation and shell completion, held to the code: the
man pages are clean roff that name every command and option the programs
have, the plugin example in ensemble-plugin(7) builds and answers, and the
bash completion (run in bash, COMPREPLY read back) and the zsh one offer the
command table's commands and subcommands."""

import os
import re
import shlex
import shutil
import subprocess
import tempfile

from enslib import BUILD, Daemon, ENSEMBLECTL, ENSEMBLED, PLUGIN_DIR, SCALE, SOURCE_ROOT, run_tests

MAN = os.path.join(BUILD, "data", "man")
BASH_COMPLETION = os.path.join(SOURCE_ROOT, "data", "completion", "ensemblectl.bash")
ZSH_COMPLETION = os.path.join(SOURCE_ROOT, "data", "completion", "_ensemblectl")


def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60 * SCALE, **kw)


def table_commands():
    """{command: [subcommands]} from `ensemblectl --help` (the command table)."""
    out = run(ENSEMBLECTL, "--help").stdout
    found = {}
    for words in re.findall(r"^  ([a-z]+(?: [a-z]+)?)(?: [A-Z\[].*?)?  +\S", out, re.M):
        name, _, sub = words.partition(" ")
        found.setdefault(name, [])
        if sub:
            found[name].append(sub)
    assert {"health", "top", "chat", "pipe", "kv", "session"} <= set(found), found
    return found


def man_text(page):
    """The page as man renders it, plain text."""
    r = run("groff", "-man", "-Tutf8", "-P-c", "-P-b", "-P-u", os.path.join(MAN, page),
            env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert r.returncode == 0, r.stderr
    return r.stdout.replace("\u2010", "-").replace("\u2212", "-")


def test_man_pages_are_clean_roff():
    for page in ("ensembled.8", "ensemblectl.1", "ensemble-plugin.7"):
        path = os.path.join(MAN, page)
        assert os.path.exists(path), path
        src = open(path).read()
        assert "@" + "version@" not in src and not re.search(r"@[a-z]+@", src), f"unsubstituted in {page}"
        r = run("groff", "-man", "-Tutf8", "-ww", "-z", path, env=dict(os.environ, LC_ALL="C.UTF-8"))
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        text = man_text(page)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            assert re.search(rf"^{section}$", text, re.M), (page, section)


def test_ensemblectl_page_names_every_command_and_option():
    text = re.sub(r"\s+", " ", man_text("ensemblectl.1"))
    for name, subs in table_commands().items():
        for words in [name] + [f"{name} {s}" for s in subs]:
            assert words in text, f"ensemblectl(1) does not describe '{words}'"
    options = re.findall(r"^  (--[a-z-]+)", run(ENSEMBLECTL, "--help").stdout, re.M)
    assert "--interval" in options, options
    for opt in options:
        assert opt in text, f"ensemblectl(1) does not describe {opt}"


def test_ensembled_page_names_every_option_and_the_settings_file():
    text = re.sub(r"\s+", " ", man_text("ensembled.8"))
    options = re.findall(r"(--[a-z-]+)", run(ENSEMBLED, "--help").stdout)
    assert "--debug" in options and "--config" in options, options
    for opt in set(options):
        assert opt in text, f"ensembled(8) does not describe {opt}"
    for word in ("READY=1", "WATCHDOG=1", "STATUS=", "G_MESSAGES_DEBUG", "CompleteAndWait", "http-access-log",
                 "/ensemble/ensembled.conf"):
        assert word in text, word


def plugin_example():
    """The C example of ensemble-plugin(7), as a reader would copy it."""
    src = open(os.path.join(MAN, "ensemble-plugin.7")).read()
    start = src.index("A complete agent with one action:")
    block = src[src.index(".nf\n", start) + 4:src.index(".fi\n", start)]
    return block.replace("\\-", "-").replace("\\e", "\\")


def test_plugin_page_example_builds_and_answers():
    cc = os.environ.get("CC", "cc")
    tmp = tempfile.mkdtemp(prefix="ens-man-plugin-")
    d = None
    try:
        with open(os.path.join(tmp, "hello.c"), "w") as f:
            f.write(plugin_example())
        plugins = os.path.join(tmp, "plugins")
        os.mkdir(plugins, 0o755)
        r = run("sh", "-c", f"{cc} -Wall -Werror -Wno-unused-parameter -shared -fPIC -fvisibility=hidden hello.c "
                f"-o plugins/hello.so $(pkg-config --cflags --libs ensemble-1)", cwd=tmp)
        assert r.returncode == 0, r.stderr
        d = Daemon(plugin_dirs=[PLUGIN_DIR, plugins])
        c = d.client()
        assert c.ok("hello", {"n": 1}, agent="hello") == {"n": 1}
        c.close()
        assert "agent-hello: hello, ready" in d.read_log(), d.read_log()
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def complete(words, socket_dir=None):
    """COMPREPLY of the bash completion for the command line `words` (the last
    one being completed), from a real bash."""
    line = [ENSEMBLECTL] + (["--socket-dir", socket_dir] if socket_dir else []) + list(words)
    script = (f"source {shlex.quote(BASH_COMPLETION)}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in line)})\n"
              f"COMP_CWORD={len(line) - 1}\n"
              "_ensemblectl\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = run("bash", "--norc", "--noprofile", "-c", script)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_bash_completion_completes_commands_and_subcommands():
    commands = table_commands()
    assert sorted(complete([""])) == sorted(commands), complete([""])
    assert sorted(complete(["s"])) == sorted(c for c in commands if c.startswith("s")), complete(["s"])
    assert complete(["to"]) == ["top"]
    for name, subs in commands.items():
        if subs:
            offered = complete([name, ""])
            assert set(subs) <= set(offered), (name, offered, subs)
    assert complete(["kv", "l"]) == ["list"]
    assert complete(["session", "st"]) == ["status", "stop"]
    # options, after any word
    assert complete(["top", "--i"]) == ["--interval", "--iterations"]
    assert "--json" in complete(["--"])
    # an option's value is not a command
    assert complete(["--timeout", ""]) == []
    assert complete(["--socket-dir", "/nonexistent-ens/"]) == []
    # no daemon: no agent names, and no error
    assert complete(["request", ""], socket_dir="/nonexistent-ens") == []


def test_bash_completion_asks_the_daemon_for_agents_and_sessions():
    d = Daemon()
    try:
        agents = complete(["request", ""], socket_dir=d.socket_dir)
        assert {"echo", "naming"} <= set(agents), agents
        assert complete(["pipe", "echo:echo", "nam"], socket_dir=d.socket_dir) == ["naming"]
        sid = d.client().ok("sessions.spawn", {"session_type": "chat"})["session_id"]
        assert complete(["session", "status", ""], socket_dir=d.socket_dir) == [sid]
        assert complete(["chat", ""], socket_dir=d.socket_dir) == [sid]
        assert complete(["session", "spawn", ""], socket_dir=d.socket_dir) == []
    finally:
        d.cleanup()


def test_zsh_completion_parses_and_lists_the_command_table():
    src = open(ZSH_COMPLETION).read()
    assert src.startswith("#compdef ensemblectl\n"), src[:40]
    listed = re.findall(r"^    '([a-z]+):", src, re.M)
    assert sorted(listed) == sorted(table_commands()), listed
    for name, subs in table_commands().items():
        for sub in subs:
            assert re.search(rf"_values '{name} subcommand'[^\n]*\b{sub}\b", src), (name, sub)
    for opt in re.findall(r"^  (--[a-z-]+)", run(ENSEMBLECTL, "--help").stdout, re.M):
        assert re.search(rf"[')]{opt}[=\[]", src), opt
    zsh = shutil.which("zsh")
    if zsh is None:
        raise AssertionError("zsh is not installed (dev.sh installs it for the tests)")
    r = run(zsh, "-n", ZSH_COMPLETION)
    assert r.returncode == 0, r.stderr
    # It loads as a completion function in a real zsh.
    r = run(zsh, "-f", "-c", f"autoload -U compinit && compinit -u -D && fpath=({shlex.quote(os.path.dirname(ZSH_COMPLETION))} $fpath) "
                             "&& autoload -U _ensemblectl && whence -w _ensemblectl")
    assert r.returncode == 0 and "function" in r.stdout, (r.stdout, r.stderr)


run_tests(globals())
