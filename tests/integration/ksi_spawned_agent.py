#!/usr/bin/env python3
"""A tiny agent program started by the daemon's spawn-command (KSI SPAWN_AGENT).

argv: <agent_id> <task>.  It connects to $ENSEMBLE_SOCKET (the native
socket), registers as $ENSEMBLE_AGENT_ID and answers:
  echo  -> the request's data, plus {"task": <task>} when data is an object
  other -> error UNKNOWN_ACTION
It exits when the daemon closes the connection or on SIGTERM.
Standard library only."""
import json
import os
import signal
import socket
import sys


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    path = os.environ["ENSEMBLE_SOCKET"]
    name = os.environ["ENSEMBLE_AGENT_ID"]
    task = os.environ.get("ENSEMBLE_TASK", "")
    argv_agent = sys.argv[1] if len(sys.argv) > 1 else name
    argv_task = sys.argv[2] if len(sys.argv) > 2 else task

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rwb", buffering=0)

    def send(obj):
        f.write((json.dumps(obj) + "\n").encode())

    send({"id": "reg", "action": "agents.register",
          "data": {"name": name, "actions": ["echo"], "description": "spawned by the KSI test"}})
    for raw in f:
        msg = json.loads(raw)
        if msg.get("id") == "reg" and "status" in msg:
            if msg["status"] != "success":
                print(f"ksi_spawned_agent: register failed: {msg}", file=sys.stderr, flush=True)
                return 1
            continue
        if "action" not in msg or "id" not in msg:
            continue  # events, other replies
        if msg["action"] == "echo":
            data = msg.get("data")
            if isinstance(data, dict):
                data = dict(data, spawned_as=argv_agent, task=argv_task)
            send({"reply_to": msg["id"], "status": "success", "data": data})
        else:
            send({"reply_to": msg["id"], "status": "error",
                  "error": {"code": "UNKNOWN_ACTION", "message": f"no action {msg['action']}"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
