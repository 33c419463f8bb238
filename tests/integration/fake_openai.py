"""A small OpenAI-compatible Chat Completions server for the tests: the
documented wire format, plain and SSE, with behaviours chosen by model name.

  ok*          answers "echo: <last user message>"
  fail-500     always HTTP 500 (an OpenAI error body)
  flaky        HTTP 500 on the first call, then like ok
  slow         waits 3 s before answering
  drip         streams one word every 100 ms (20 words): for cancellation
  garbled      streams two words, then a chunk that is not JSON
  hostile      streams two words, then a tool call whose index is an object
  tools        answers with a tool call
  agent-tools  a tool loop's model: calls the first tool it is given with
               {"text": "from the model"}; once a tool answered, answers
               "said: " and the tool messages' contents

It speaks HTTP/1.1 keep-alive like the real APIs: plain answers carry a
Content-Length, streams are chunked, and a connection serves one request
after another.  connections counts the connections it accepted.
"""

import json
import sys
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """Kept-alive connections end with their client, which may reset them."""
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    def __init__(self):
        self.calls = []          # (model, stream) per request
        self.requests = []       # {"path", "body"} per request
        self.disconnects = 0     # streams the client closed early
        self.connections = 0     # TCP connections accepted
        self.open = set()        # their sockets, until closed
        self.vanish = 0          # requests on a reused connection to drop unanswered
        self.lock = threading.Lock()
        self.flaky_seen = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers: no 40 ms stall on a kept-alive connection

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections += 1
                    server.open.add(self.connection)

            def finish(self):
                with server.lock:
                    server.open.discard(self.connection)
                super().finish()

            def write_chunk(self, data):
                """One piece of a chunked body (b"" ends it)."""
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

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
                self.served = getattr(self, "served", 0) + 1
                with server.lock:
                    vanish = server.vanish > 0 and self.served > 1
                    server.vanish -= 1 if vanish else 0
                if vanish:  # its keep-alive ran out just as the request came
                    self.close_connection = True
                    return
                model = req.get("model", "")
                stream = bool(req.get("stream"))
                with server.lock:
                    server.calls.append((model, stream, self.headers.get("Authorization")))
                    server.requests.append({"path": self.path, "body": req})
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
                loop_call = None
                if model == "agent-tools":
                    msgs = req.get("messages", [])
                    if msgs and msgs[-1].get("role") == "tool":
                        text = "said: " + " ".join(m.get("content", "") for m in msgs if m.get("role") == "tool")
                        words = [w + " " for w in text.split(" ")]
                    elif req.get("tools"):
                        loop_call = {"index": 0, "id": "call_oa_1", "type": "function",
                                     "function": {"name": req["tools"][0]["function"]["name"],
                                                  "arguments": "{\"text\": \"from the model\"}"}}
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
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if model in ("garbled", "hostile"):
                    words = words[:2]
                if loop_call:
                    words = []
                try:
                    for w in words:
                        chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                                 "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                        self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                        if model == "drip":
                            time.sleep(0.1)
                    if model == "garbled":
                        self.write_chunk(b"data: {\"choices\": [{\"delta\": \n\n")
                    if model == "hostile":
                        self.write_chunk(b'data: {"choices":[{"delta":{"tool_calls":[{"index":{"name":"g"}}]}}]}\n\n')
                    if loop_call:
                        chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                                 "choices": [{"index": 0, "delta": {"tool_calls": [loop_call]}, "finish_reason": None}]}
                        self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                    final = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {},
                                          "finish_reason": "tool_calls" if loop_call else "stop"}]}
                    tail = f"data: {json.dumps(final)}\n\n"
                    if (req.get("stream_options") or {}).get("include_usage"):
                        tail += f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                    self.write_chunk(tail.encode() + b"data: [DONE]\n\n")
                    self.write_chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    with server.lock:
                        server.disconnects += 1
                    self.close_connection = True

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def vanish_on_reuse(self, n=1):
        """The next @n requests that come on a reused connection get no
        answer: the connection is closed (an upstream whose keep-alive timeout
        fired just as the request arrived)."""
        with self.lock:
            self.vanish = n

    def drop_idle_connections(self):
        """Closes every connection it holds, as an upstream whose keep-alive
        timeout ran out (call it while no request is running)."""
        with self.lock:
            for sock in self.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def models_called(self):
        with self.lock:
            return [c[0] for c in self.calls]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
