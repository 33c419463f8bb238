"""The scripted fake LLM upstream (tests/support/ens-fake-upstream-server) as
a process for the integration tests: OpenAI-compatible /v1/chat/completions
and /v1/embeddings, Anthropic /v1/messages, each answer scripted by a path
prefix (/SCRIPT/v1/...) so that one server stands for many backends:

    up = FakeUpstream()
    up.base("stream,chunks=5,cut=2")   # http://127.0.0.1:PORT/stream,chunks=5,cut=2/v1
    up.stats()                        # {"requests", "client_aborts", "connections"}

The script words are listed in tests/support/ens-fake-upstream.h (chunks,
interval, delay, status, reset, cut, no-end, malformed, gap, dims, ...).
Content chunks are "w0 ", "w1 ", ...; a plain answer is their whole text;
the model in every answer is the one asked for."""

import json
import os
import subprocess
import urllib.parse
import urllib.request

from enslib import BUILD, SCALE, die_with_parent

SERVER = os.environ.get("ENS_FAKE_UPSTREAM_SERVER",
                        os.path.join(BUILD, "tests", "support", "ens-fake-upstream-server"))


class FakeUpstream:
    def __init__(self, mode=None):
        cmd = [SERVER]
        if mode:
            cmd += ["--mode", mode]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().decode().strip()
        assert line.isdigit(), f"ens-fake-upstream-server did not start: {line!r}"
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def base(self, script="", v1=True):
        """The base-url of a backend whose every answer follows @script."""
        prefix = "/" + urllib.parse.quote(script, safe=",=:") if script else ""
        return self.url + prefix + ("/v1" if v1 else "")

    def stats(self):
        with urllib.request.urlopen(self.url + "/fake/stats", timeout=10 * SCALE) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10 * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
