"""The daemon starts, answers health on the native socket, and stops cleanly."""
import os
from enslib import Daemon, run_tests


def test_health_and_clean_stop():
    d = Daemon()
    try:
        c = d.client()
        h = c.ok("health")
        assert h["status"] == "healthy"
        assert {p["id"] for p in h["plugins"]} >= {"transport-unix", "agent-echo"}
        c.close()
        assert d.stop() == 0
        assert not os.path.exists(d.path("ensemble.sock")), "socket left behind after SIGTERM"
    finally:
        d.cleanup()


run_tests(globals())
