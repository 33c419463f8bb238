"""A small OpenAI-compatible Chat Completions server for the tests: the
documented wire format, plain and SSE, with behaviours chosen by model name.

  ok*          answers "echo: <last user message>"
  fail-500     always HTTP 500 (an OpenAI error body)
  flaky        HTTP 500 on the first call, then like ok
  slow         waits 3 s before answering
  drip         streams one word every 100 ms (20 words): for cancellation
  tools        answers with a tool call
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self):
        self.calls = []          # (model, stream) per request
        self.disconnects = 0     # streams the client closed early
        self.lock = threading.Lock()
        self.flaky_seen = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(length) or b"{}")
                model = req.get("model", "")
                stream = bool(req.get("stream"))
                with server.lock:
                    server.calls.append((model, stream, self.headers.get("Authorization")))
                if not self.path.endswith("/chat/completions"):
                    return self.send_json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
                if model == "fail-500" or (model == "flaky" and not server.flaky_seen):
                    server.flaky_seen = True
                    return self.send_json(500, {"error": {"message": "the fake upstream failed", "type": "server_error"}})
                if model == "slow":
                    time.sleep(3)
                last = [m for m in req.get("messages", []) if m.get("role") == "user"]
                text = "echo: " + (last[-1]["content"] if last else "")
                words = [w + " " for w in text.split(" ")]
                if model == "drip":
                    words = [f"w{i} " for i in range(20)]
                usage = {"prompt_tokens": 11, "completion_tokens": len(words), "total_tokens": 11 + len(words)}
                if model == "tools":
                    call = {"id": "call_1", "type": "function",
                            "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}
                    if not stream:
                        return self.send_json(200, {
                            "id": "cmpl-1", "object": "chat.completion", "model": model,
                            "choices": [{"index": 0, "finish_reason": "tool_calls",
                                         "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                            "usage": usage})
                if not stream:
                    return self.send_json(200, {
                        "id": "cmpl-1", "object": "chat.completion", "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "".join(words)}}],
                        "usage": usage})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for w in words:
                        chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                                 "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        if model == "drip":
                            time.sleep(0.1)
                    final = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
                    if (req.get("stream_options") or {}).get("include_usage"):
                        self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    with server.lock:
                        server.disconnects += 1
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def models_called(self):
        with self.lock:
            return [c[0] for c in self.calls]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
