// mcp-client.mjs — drives ensembled's MCP server with the official MCP
// TypeScript SDK client, unchanged, and prints one line per check ("ok
// NAME" or "FAIL NAME: why"); exits 1 if any failed.  For
// tests/integration/test_mcp_server.py.
//
//   node mcp-client.mjs MCP_URL NATIVE_SOCKET [all|basic|stdio=CMD...]
//
// MCP_URL is http://127.0.0.1:PORT/mcp; NATIVE_SOCKET the daemon's
// ensemble.sock, through which the test plays an agent that comes and goes
// and writes agent state.  "stdio" connects through a command instead
// (ensemblectl mcp), with the rest of the arguments as its argv.
import assert from "node:assert/strict";
import net from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  McpError,
  ToolListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [url, socketPath, scenario = "all", ...rest] = process.argv.slice(2);
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}

// A native-protocol connection to the daemon (newline-delimited JSON).
function native() {
  const sock = net.connect(socketPath);
  let buf = "";
  const waiting = new Map();
  sock.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const w = waiting.get(line.id);
      if (w) {
        waiting.delete(line.id);
        w(line);
      }
    }
  });
  let n = 0;
  return {
    request(action, data) {
      const id = `n${++n}`;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        sock.write(JSON.stringify({ id, action, data }) + "\n");
      });
    },
    close() {
      sock.end();
    },
  };
}

function waitFor(client, schema, predicate = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${schema.shape.method.value} within ${ms} ms`)), ms);
    client.setNotificationHandler(schema, (n) => {
      if (predicate(n)) {
        clearTimeout(timer);
        resolve(n);
      }
    });
  });
}

const text = (r) => r.content.map((c) => c.text).join("");

async function connect() {
  const client = new Client({ name: "ensemble-test", version: "1.0.0" });
  const transport =
    scenario === "stdio"
      ? new StdioClientTransport({ command: rest[0], args: rest.slice(1), stderr: "inherit" })
      : new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

const { client, transport } = await connect();

await check("initialize", async () => {
  assert.equal(client.getServerVersion().name, "ensemble");
  const caps = client.getServerCapabilities();
  assert.equal(caps.tools.listChanged, true);
  assert.equal(caps.resources.subscribe, true);
  if (scenario !== "stdio") assert.ok(transport.sessionId, "an Mcp-Session-Id");
});

await check("tools/list: agent actions with schemas, and complete", async () => {
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.ok(byName["echo.echo"], Object.keys(byName).join(","));
  assert.equal(byName["echo.echo"].description, "Answers with the data it was sent");
  assert.deepEqual(byName["echo.sleep"].inputSchema.required, ["ms"]);
  assert.equal(byName["echo.big"].inputSchema.additionalProperties, false);
  assert.deepEqual(byName["complete"].inputSchema.required, ["prompt"]);
});

await check("tools/call: an agent's answer, as text and structured", async () => {
  const r = await client.callTool({ name: "echo.echo", arguments: { hello: "world", n: 2 } });
  assert.equal(r.isError, false);
  assert.deepEqual(JSON.parse(text(r)), { hello: "world", n: 2 });
  assert.deepEqual(r.structuredContent, { hello: "world", n: 2 });
});

await check("tools/call: arguments failing the schema name the field", async () => {
  let r = await client.callTool({ name: "echo.sleep", arguments: { ms: "soon" } });
  assert.equal(r.isError, true);
  assert.equal(text(r), "invalid arguments: ms must be an integer");
  assert.equal(r.structuredContent.error.details.field, "ms");
  r = await client.callTool({ name: "echo.big", arguments: { bytes: 1, extra: true } });
  assert.equal(r.isError, true);
  assert.match(text(r), /^invalid arguments: extra must be absent/);
  r = await client.callTool({ name: "complete", arguments: {} });
  assert.equal(r.isError, true);
  assert.equal(text(r), "invalid arguments: prompt must be present (required)");
});

await check("tools/call: an agent's error is a tool error", async () => {
  const r = await client.callTool({ name: "echo.fail", arguments: { code: "NOPE", message: "not today" } });
  assert.equal(r.isError, true);
  assert.equal(text(r), "NOPE: not today");
});

await check("tools/call: an unknown tool is a protocol error", async () => {
  await assert.rejects(client.callTool({ name: "nobody.nothing", arguments: {} }), (err) => {
    assert.ok(err instanceof McpError, String(err));
    assert.equal(err.code, -32602);
    assert.match(err.message, /Unknown tool: nobody\.nothing/);
    return true;
  });
});

await check("an unknown method is -32601", async () => {
  const { z } = await import("zod");
  await assert.rejects(client.request({ method: "prompts/list", params: {} }, z.object({}).passthrough()), (err) => {
    assert.equal(err.code, -32601);
    assert.match(err.message, /Method not found: prompts\/list/);
    return true;
  });
});

await check("tools/call complete: the router's answer", async () => {
  const r = await client.callTool({ name: "complete", arguments: { prompt: "Say hi to MCP", max_tokens: 50 } });
  assert.equal(r.isError, false, text(r));
  assert.ok(text(r).length > 0);
  assert.ok(r.structuredContent.model, JSON.stringify(r.structuredContent));
});

await check("a large result arrives whole under the cap", async () => {
  const r = await client.callTool({ name: "echo.big", arguments: { bytes: 300000 } });
  assert.equal(r.isError, false);
  assert.equal(r.structuredContent.text.length, 300000);
});

await check("a result over the cap is cut and says so", async () => {
  const r = await client.callTool({ name: "echo.big", arguments: { bytes: 3000000 } });
  assert.equal(r.isError, false);
  const t = text(r);
  assert.ok(t.length < 1100000, `length ${t.length}`);
  assert.match(t, /\[truncated: the result is 30000\d\d bytes, over this server's cap of 1048576 bytes/);
  assert.equal(r.structuredContent, undefined);
});

await check("cancellation: the call stops at once, the session carries on", async () => {
  const ac = new AbortController();
  const started = Date.now();
  const p = client.callTool({ name: "echo.sleep", arguments: { ms: 30000 } }, undefined, { signal: ac.signal });
  setTimeout(() => ac.abort("changed my mind"), 200);
  await assert.rejects(p);
  assert.ok(Date.now() - started < 5000);
  const r = await client.callTool({ name: "echo.echo", arguments: { after: "cancel" } });
  assert.deepEqual(r.structuredContent, { after: "cancel" });
  await client.ping();
});

await check("notifications/tools/list_changed when an agent comes and goes", async () => {
  const n = native();
  let seen = waitFor(client, ToolListChangedNotificationSchema);
  const reg = await n.request("agents.register", {
    name: "visitor",
    actions: [{ name: "wave", description: "Waves", input_schema: { type: "object" } }],
  });
  assert.equal(reg.status, "success", JSON.stringify(reg));
  await seen;
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === "visitor.wave"));
  seen = waitFor(client, ToolListChangedNotificationSchema);
  n.close();
  await seen;
  const after = await client.listTools();
  assert.ok(!after.tools.some((t) => t.name === "visitor.wave"));
});

await check("resources: agent state and sessions, read and subscribed", async () => {
  const n = native();
  assert.equal((await n.request("kv.set", { agent: "echo", key: "greeting one", value: { text: "hi" } })).status, "success");
  const sess = await n.request("sessions.spawn", { session_id: "mcp-demo", task: "Say hello" });
  assert.equal(sess.status, "success", JSON.stringify(sess));
  const { resources } = await client.listResources();
  const uris = resources.map((r) => r.uri);
  assert.ok(uris.includes("ensemble://kv/echo/greeting%20one"), uris.join(" "));
  assert.ok(uris.includes("ensemble://sessions/mcp-demo"), uris.join(" "));
  const kv = await client.readResource({ uri: "ensemble://kv/echo/greeting%20one" });
  assert.deepEqual(JSON.parse(kv.contents[0].text), { text: "hi" });
  const s = await client.readResource({ uri: "ensemble://sessions/mcp-demo" });
  const record = JSON.parse(s.contents[0].text);
  assert.equal(record.session_id, "mcp-demo");
  assert.ok(Array.isArray(record.history));
  const { resourceTemplates } = await client.listResourceTemplates();
  assert.equal(resourceTemplates.length, 2);

  await client.subscribeResource({ uri: "ensemble://kv/echo/greeting%20one" });
  const updated = waitFor(client, ResourceUpdatedNotificationSchema, (x) => x.params.uri.startsWith("ensemble://kv/"));
  await n.request("kv.set", { agent: "echo", key: "other", value: 1 }); // not this one
  await n.request("kv.set", { agent: "echo", key: "greeting one", value: { text: "hello" } });
  assert.equal((await updated).params.uri, "ensemble://kv/echo/greeting%20one");
  await client.unsubscribeResource({ uri: "ensemble://kv/echo/greeting%20one" });

  await assert.rejects(client.readResource({ uri: "ensemble://kv/echo/missing" }), (err) => {
    assert.equal(err.code, -32002);
    return true;
  });
  await assert.rejects(client.readResource({ uri: "file:///etc/passwd" }), (err) => {
    assert.equal(err.code, -32002);
    return true;
  });
  n.close();
});

if (scenario !== "stdio") {
  await check("Streamable HTTP: bad messages and sessions get clear errors", async () => {
    const post = (body, headers = {}) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
        body,
      });
    const sid = { "mcp-session-id": transport.sessionId };
    let r = await post("{not json", sid);
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, -32700);
    r = await post(JSON.stringify({ jsonrpc: "1.0", id: 1, method: "ping" }), sid);
    assert.equal(r.status, 400);
    let body = await r.json();
    assert.equal(body.error.code, -32600);
    assert.equal(body.id, 1);
    assert.match(body.error.message, /jsonrpc must be "2.0"/);
    r = await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { arguments: {} } }), sid);
    body = await r.json();
    assert.equal(body.error.code, -32602);
    assert.match(body.error.message, /params\.name/);
    r = await post(JSON.stringify({ jsonrpc: "2.0", id: 3, method: "ping" }));
    assert.equal(r.status, 400);
    r = await post(JSON.stringify({ jsonrpc: "2.0", id: 4, method: "ping" }), { "mcp-session-id": "nope" });
    assert.equal(r.status, 404);
    r = await post(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "ping" }), sid);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { jsonrpc: "2.0", id: 5, result: {} });
  });
}

await check("close", async () => {
  if (scenario !== "stdio") await transport.terminateSession();
  await client.close();
});

process.exit(failed ? 1 : 0);
