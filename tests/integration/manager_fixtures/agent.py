"""A supervised agent for test_agent_manager.py.

    agent.py MODE   (name from ENSEMBLE_AGENT_NAME, folder from MGR_TMP)

Every run appends "<time> <name> start <pid> <ENSEMBLE_SOCKET>" to
$MGR_TMP/order.log and says hello on stdout and stderr.  MODE:
  sleep  runs until killed
  db     like sleep, but creates $MGR_TMP/db.ready only after 0.3 s (its
         health check), logging "<time> <name> ready <pid>", and removes
         it on SIGTERM
  crash  exits with status 1 at once
  stubborn like sleep, but ignores SIGTERM
  family like sleep, with a child process of its own ("sleep 1000"), logged
         as "<time> <name> child <pid> <child pid>"""
import os
import signal
import subprocess
import sys
import time

name = os.environ["ENSEMBLE_AGENT_NAME"]
tmp = os.environ["MGR_TMP"]
mode = sys.argv[1]


def log(event, extra=""):
    with open(os.path.join(tmp, "order.log"), "a") as f:
        f.write(f"{time.time():.6f} {name} {event} {os.getpid()} {extra}\n")


if mode == "stubborn":  # before "start" is logged: the tests wait for that line
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
log("start", os.environ.get("ENSEMBLE_SOCKET", ""))
print(f"hello from {name}", flush=True)
print(f"{name} says this on stderr", file=sys.stderr, flush=True)
if mode == "crash":
    sys.exit(1)
if mode == "db":
    ready = os.path.join(tmp, "db.ready")

    def on_term(signum, frame):
        # the next run must not be seen healthy through this run's file
        if os.path.exists(ready):
            os.unlink(ready)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if os.path.exists(ready):
        os.unlink(ready)
    time.sleep(0.3)
    open(ready, "w").close()
    log("ready")
if mode == "family":
    child = subprocess.Popen(["sleep", "1000"])
    log("child", str(child.pid))
while True:
    time.sleep(3600)
