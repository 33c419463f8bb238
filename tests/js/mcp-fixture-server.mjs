// mcp-fixture-server.mjs — a small MCP server (stdio) built with the
// official SDK, for tests/integration/test_mcp_client.py: tools that add,
// answer big, fail, grow the tool list (notifications/tools/list_changed)
// and crash mid-call, so the daemon's MCP client can be driven through
// each case.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "fixture", title: "Fixture server", version: "1.0.0" });

server.registerTool(
  "add",
  { description: "Adds a and b", inputSchema: { a: z.number(), b: z.number() } },
  async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }], structuredContent: { sum: a + b } }),
);
server.registerTool(
  "big",
  { description: "Answers that many bytes of text", inputSchema: { bytes: z.number().int().min(0) } },
  async ({ bytes }) => ({ content: [{ type: "text", text: "y".repeat(bytes) }] }),
);
server.registerTool("fail", { description: "Always fails" }, async () => ({
  content: [{ type: "text", text: "the fixture fails on purpose" }],
  isError: true,
}));
server.registerTool("grow", { description: "Adds the tool grown" }, async () => {
  server.registerTool("grown", { description: "Added by grow" }, async () => ({
    content: [{ type: "text", text: "grown" }],
  }));
  return { content: [{ type: "text", text: "grew" }] };
});
server.registerTool("crash", { description: "Exits the process mid-call" }, async () => {
  setTimeout(() => process.exit(3), 10);
  return new Promise(() => {});
});
server.registerTool("pid", { description: "Answers the process id" }, async () => ({
  content: [{ type: "text", text: String(process.pid) }],
}));

await server.connect(new StdioServerTransport());
