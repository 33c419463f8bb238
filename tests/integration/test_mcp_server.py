"""Ensemble as an MCP server: the official MCP TypeScript SDK client
(tests/js/mcp-client.mjs) over Streamable HTTP at /mcp sees every agent
action as a tool with its schema, plus "complete"; calls them; gets clear
errors for bad messages, unknown methods and tools, and arguments that fail
the schema; cancels a call; gets a large result whole and an oversized one
capped; reads and subscribes to agent state and sessions; and hears
tools/list_changed when agents come and go.  Auth is the HTTP transport's."""
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request

from enslib import SCALE, Daemon, run_tests

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js")


def node_client(*args):
    env = dict(os.environ, NODE_PATH=os.path.join(JS_DIR, "node_modules"))
    r = subprocess.run(["node", "mcp-client.mjs", *args], cwd=JS_DIR, capture_output=True, text=True,
                       timeout=120 * SCALE, env=env)
    return r.returncode, r.stdout, r.stderr


def post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_sdk_client_over_streamable_http():
    d = Daemon()
    try:
        rc, out, err = node_client(d.http_url() + "/mcp", d.path("ensemble.sock"))
        assert rc == 0 and "FAIL" not in out, (rc, out, err, d.read_log()[-3000:])
        assert out.count("ok ") >= 14, out
        # The daemon carries on: other clients are served.
        c = d.client()
        assert c.ok("ping") is not None
        assert d.proc.poll() is None
    finally:
        d.cleanup()


def test_result_cap_setting_and_token_auth():
    tmp_token = None
    d = Daemon(settings={"mcp-max-result-bytes": "2048"})
    try:
        url = d.http_url() + "/mcp"
        status, headers, body = post(url, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                           "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                                      "clientInfo": {"name": "py", "version": "1"}}})
        assert status == 200, (status, body)
        sid = headers.get("Mcp-Session-Id") or headers.get("mcp-session-id")
        assert sid, headers
        init = json.loads(body)
        assert init["result"]["protocolVersion"] == "2025-11-25", init
        h = {"Mcp-Session-Id": sid}
        status, _, body = post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, h)
        assert status == 202 and body == "", (status, body)
        status, _, body = post(url, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                     "params": {"name": "echo.big", "arguments": {"bytes": 10000}}}, h)
        res = json.loads(body)["result"]
        text = res["content"][0]["text"]
        assert "[truncated: the result is 10011 bytes, over this server's cap of 2048 bytes" in text, text[-200:]
        assert "structuredContent" not in res and res["isError"] is False, res
        # A version this server does not know: it answers with its own.
        status, _, body = post(url, {"jsonrpc": "2.0", "id": 3, "method": "initialize",
                                     "params": {"protocolVersion": "1999-01-01", "capabilities": {},
                                                "clientInfo": {"name": "py", "version": "1"}}})
        assert json.loads(body)["result"]["protocolVersion"] == "2025-11-25", body
        status, _, body = post(url, {"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {}})
        assert json.loads(body)["error"]["code"] == -32602, body
        # DELETE ends the session; it is unknown afterwards.
        req = urllib.request.Request(url, method="DELETE", headers=h)
        with urllib.request.urlopen(req, timeout=10 * SCALE) as r:
            assert r.status == 200
        status, _, body = post(url, {"jsonrpc": "2.0", "id": 5, "method": "ping"}, h)
        assert status == 404, (status, body)
    finally:
        d.cleanup()

    tmp_token = os.path.join(d.tmp + "-token")
    with open(tmp_token, "w") as f:
        f.write("s3cret\n")
    os.chmod(tmp_token, 0o600)
    d = Daemon(settings={"http-token-file": f"'{tmp_token}'"})
    try:
        url = d.http_url() + "/mcp"
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        status, _, _ = post(url, body)
        assert status == 401, status
        status, _, text = post(url, body, {"Authorization": "Bearer s3cret"})
        assert status == 400 and "Mcp-Session-Id" in text, (status, text)
    finally:
        d.cleanup()
        os.unlink(tmp_token)


def test_stdio_through_ensemblectl_mcp():
    """A desktop client launches `ensemblectl mcp`: the same server on stdio."""
    d = Daemon()
    try:
        rc, out, err = node_client("-", d.path("ensemble.sock"), "stdio", os.environ["ENSEMBLECTL"],
                                   "--socket-dir", d.socket_dir, "mcp")
        assert rc == 0 and "FAIL" not in out, (rc, out, err, d.read_log()[-3000:])
        assert out.count("ok ") >= 13, out
        assert oct(os.stat(d.path("mcp.sock")).st_mode & 0o777) == "0o600"
    finally:
        d.cleanup()


def test_mcp_socket_bad_input():
    """Malformed lines on mcp.sock are answered and the connection carries on;
    a line over the limit is answered and the connection closed; other
    connections are not disturbed."""
    d = Daemon(settings={"http-max-body-bytes": "65536"})
    try:
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.connect(d.path("mcp.sock"))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SCALE)
        s.connect(d.path("mcp.sock"))
        f = s.makefile("rwb")

        def ask(line):
            f.write(line + b"\n")
            f.flush()
            return json.loads(f.readline())

        assert ask(b"{nope")["error"]["code"] == -32700
        r = ask(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]')
        assert r["error"]["code"] == -32600 and "batches" in r["error"]["message"], r
        r = ask(b'{"jsonrpc":"2.0","id":"x","method":"nope/nope"}')
        assert r == {"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "Method not found: nope/nope"}}, r
        r = ask(b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo.sleep","arguments":{}}}')
        assert r["result"]["isError"] is True, r
        assert r["result"]["content"][0]["text"] == "invalid arguments: ms must be present (required)", r
        assert ask(b'{"jsonrpc":"2.0","id":3,"method":"ping"}') == {"jsonrpc": "2.0", "id": 3, "result": {}}
        f.write(b"x" * 70000 + b"\n")
        f.flush()
        r = json.loads(f.readline())
        assert r["error"]["code"] == -32600 and "too long" in r["error"]["message"], r
        assert f.readline() == b""  # closed
        # A peer that stops sending still gets the answers it is owed, then EOF.
        half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        half.settimeout(10 * SCALE)
        half.connect(d.path("mcp.sock"))
        half.sendall(b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo.sleep","arguments":{"ms":200}}}\n')
        half.shutdown(socket.SHUT_WR)
        hf = half.makefile("rb")
        r = json.loads(hf.readline())
        assert r["id"] == 7 and r["result"]["structuredContent"] == {"slept_ms": 200}, r
        assert hf.readline() == b""
        of = other.makefile("rwb")
        of.write(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
        of.flush()
        assert json.loads(of.readline())["result"] == {}
        assert d.proc.poll() is None
    finally:
        d.cleanup()


if __name__ == "__main__":
    run_tests(globals())
