"""A small Anthropic Messages API server for the tests: POST /v1/messages,
plain JSON and the SSE event stream, with behaviours chosen by model name.

  (any other)       answers "echo: <last user message>"
  fail-overloaded   always HTTP 529 with an overloaded_error body
  tools             answers with a tool_use block (name "lookup", input {"q": "x"})
  agent-tools       a tool loop's model: calls the first tool it is given with
                    {"text": "from the model"}; once a tool answered, answers
                    "said: " and the tool results' contents (streamed)
  drip              streams one word every 100 ms (20 words): for cancellation
  garbled           streams two words, then an event whose data is not JSON

Every request is recorded: calls holds (model, stream, x-api-key) tuples and
requests the whole thing (path, headers, body) for closer checks.

It speaks HTTP/1.1 keep-alive like the real API: plain answers carry a
Content-Length, streams are chunked, and a connection serves one request
after another.  connections counts the connections it accepted.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INPUT_TOKENS = 13


def _text_of(content):
    """The text of a message's content: a string or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


class QuietServer(ThreadingHTTPServer):
    """Kept-alive connections end with their client, which may reset them."""
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeAnthropic:
    def __init__(self):
        self.calls = []        # (model, stream, x-api-key) per request
        self.requests = []     # {"path", "headers", "body"} per request
        self.disconnects = 0   # streams the client closed early
        self.connections = 0   # TCP connections accepted
        self.lock = threading.Lock()
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

            def send_error_body(self, status, etype, message):
                return self.send_json(status, {"type": "error", "error": {"type": etype, "message": message}})

            def sse(self, event, data):
                self.write_chunk(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length) if length else b""
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    req = None
                body = req if isinstance(req, dict) else {}
                model = body.get("model", "")
                stream = bool(body.get("stream"))
                with server.lock:
                    server.calls.append((model, stream, self.headers.get("x-api-key")))
                    server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                if not self.path.endswith("/v1/messages"):
                    return self.send_error_body(404, "not_found_error", "no such route")
                if req is None or not isinstance(req, dict):
                    return self.send_error_body(400, "invalid_request_error", "the body is not a JSON object")
                if not self.headers.get("x-api-key"):
                    return self.send_error_body(401, "authentication_error", "x-api-key header is required")
                if not self.headers.get("anthropic-version"):
                    return self.send_error_body(400, "invalid_request_error", "anthropic-version header is required")
                if not isinstance(body.get("max_tokens"), int) or not isinstance(body.get("messages"), list):
                    return self.send_error_body(400, "invalid_request_error", "max_tokens and messages are required")
                if model == "fail-overloaded":
                    return self.send_error_body(529, "overloaded_error", "Overloaded")

                users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
                text = "echo: " + (_text_of(users[-1].get("content")) if users else "")
                words = [w + " " for w in text.split(" ")]
                msg_id = "msg_fake_1"

                loop_tool = None
                if model == "agent-tools":
                    last = body["messages"][-1] if body["messages"] else {}
                    results = [b for b in last.get("content", []) if isinstance(b, dict)
                               and b.get("type") == "tool_result"] if isinstance(last.get("content"), list) else []
                    if results:
                        text = "said: " + " ".join(b.get("content", "") for b in results)
                        words = [w + " " for w in text.split(" ")]
                    elif body.get("tools"):
                        loop_tool = body["tools"][0]["name"]
                if model == "tools":
                    block = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
                    if not stream:
                        return self.send_json(200, {
                            "id": msg_id, "type": "message", "role": "assistant", "model": model,
                            "content": [block], "stop_reason": "tool_use", "stop_sequence": None,
                            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 7}})
                if not stream:
                    return self.send_json(200, {
                        "id": msg_id, "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": "".join(words)}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": len(words)}})

                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    self.sse("message_start", {"type": "message_start", "message": {
                        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
                        "stop_reason": None, "stop_sequence": None,
                        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1}}})
                    self.sse("ping", {"type": "ping"})
                    if model == "tools" or loop_tool:
                        self.sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                            "type": "tool_use", "id": "toolu_1", "name": loop_tool or "lookup", "input": {}}})
                        for piece in (('{"text"', ': "from the model"}') if loop_tool else ('{"q"', ': "x"}')):
                            self.sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                             "delta": {"type": "input_json_delta",
                                                                       "partial_json": piece}})
                        self.sse("content_block_stop", {"type": "content_block_stop", "index": 0})
                        stop_reason, out_tokens = "tool_use", 7
                    else:
                        self.sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                         "content_block": {"type": "text", "text": ""}})
                        if model == "drip":
                            words = [f"w{i} " for i in range(20)]
                        elif model == "garbled":
                            words = words[:2]
                        for w in words:
                            self.sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                             "delta": {"type": "text_delta", "text": w}})
                            if model == "drip":
                                time.sleep(0.1)
                        if model == "garbled":
                            self.write_chunk(b"event: content_block_delta\ndata: {\"delta\": \n\n")
                        self.sse("content_block_stop", {"type": "content_block_stop", "index": 0})
                        stop_reason, out_tokens = "end_turn", len(words)
                    self.sse("message_delta", {"type": "message_delta",
                                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                               "usage": {"output_tokens": out_tokens}})
                    self.sse("message_stop", {"type": "message_stop"})
                    self.write_chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    with server.lock:
                        server.disconnects += 1
                    self.close_connection = True

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url_without_v1 = f"http://127.0.0.1:{self.port}"
        self.url = self.url_without_v1 + "/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def models_called(self):
        with self.lock:
            return [c[0] for c in self.calls]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
