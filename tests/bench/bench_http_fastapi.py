"""The FastAPI + uvicorn side of bench-http.sh: GET /health answering the same
JSON document ensembled's /health does, built afresh for each request (the
timestamp, uptime and counters change, the rest is copied from a template
taken from ensembled's own /health so both serialise the same amount).

Usage: python3 bench_http_fastapi.py --port PORT [--template health.json]
With --port 0 the kernel picks the port; either way it prints
"fastapi: listening on http://HOST:PORT" once bound.
One process, one worker, no access log: as ensembled serves HTTP from one
main loop.  Debian: apt-get install python3-fastapi python3-uvicorn."""

import argparse
import copy
import datetime
import json
import socket
import time

import uvicorn
from fastapi import FastAPI

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--template", help="a JSON health document to mirror")
args = parser.parse_args()

if args.template:
    with open(args.template) as f:
        TEMPLATE = json.load(f)
else:
    TEMPLATE = {
        "status": "healthy", "agents": 0, "interfaces": ["http", "unix-sockets"],
        "llm_router": {"daily_budget": 10, "current_spend": 0, "reserved": 0, "remaining": 10, "utilization_pct": 0},
        "version": "0.1.0", "node_id": "bench", "connections": 0, "sessions": 0, "plugins": [],
        "counters": {"requests": 0, "errors": 0, "events_published": 0, "events_delivered": 0},
    }

STARTED = time.monotonic()
state = {"requests": 0}
app = FastAPI(title="health bench", openapi_url=None, docs_url=None, redoc_url=None)


def budget():
    b = dict(TEMPLATE.get("llm_router", {}))
    daily = b.get("daily_budget", 10)
    spend = b.get("current_spend", 0)
    b["remaining"] = max(0, daily - spend - b.get("reserved", 0))
    b["utilization_pct"] = 100.0 * spend / daily if daily else 0
    b["day"] = datetime.date.today().isoformat()
    return b


@app.get("/health")
async def health():
    # The same work as ensembled's route: gather the state, shape the
    # Centerfire document, serialise it (FastAPI does the JSON).
    state["requests"] += 1
    doc = {
        "status": TEMPLATE.get("status", "healthy"),
        "agents": TEMPLATE.get("agents", 0),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "interfaces": list(TEMPLATE.get("interfaces", [])),
        "llm_router": budget(),
    }
    for key in ("version", "node_id", "connections", "sessions", "completions", "plugins"):
        if key in TEMPLATE:
            doc[key] = copy.deepcopy(TEMPLATE[key])
    doc["uptime_s"] = round(time.monotonic() - STARTED, 2)
    counters = dict(TEMPLATE.get("counters", {}))
    counters["requests"] = state["requests"]
    doc["counters"] = counters
    return doc


if __name__ == "__main__":
    # Bound here so that port 0 works and the caller learns the port without
    # a race; uvicorn serves on the socket as it is.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"fastapi: listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, workers=1)
    uvicorn.Server(config).run(sockets=[sock])
