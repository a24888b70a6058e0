// An independent MCP client (the official TypeScript SDK, @modelcontextprotocol/sdk) against samples/McpServer.
//   node mcp_client.mjs discover <mcp-url>          unauthenticated: the 401 challenge and the RFC 9728 metadata
//   MCP_TOKEN=<token> node mcp_client.mjs session <mcp-url>
//       lists the tools, calls list_tickets, calls close_ticket, prints {"step":"ready"}, then waits for the line
//       "completed" on stdin and calls list_tickets again (same session) until it is refused, at most 10 s.
// Every step prints one JSON line; the .NET test (tests/CredBroker.Mcp.Tests) asserts on them.
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";

const [mode, url] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
const text = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
const refusal = (e) => ({ refused: true, code: e.code ?? null, message: String(e.message) });

if (mode === "discover") {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" });
  const challenge = extractWWWAuthenticateParams(response);
  out({ step: "challenge", status: response.status, resource_metadata: challenge.resourceMetadataUrl?.href ?? null, error: challenge.error ?? null });
  const metadata = await discoverOAuthProtectedResourceMetadata(new URL(url), { resourceMetadataUrl: challenge.resourceMetadataUrl });
  out({ step: "metadata", ...metadata });
  process.exit(0);
}

if (mode !== "session" || !process.env.MCP_TOKEN) {
  console.error("usage: node mcp_client.mjs discover <url> | MCP_TOKEN=<token> node mcp_client.mjs session <url>");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
});
const client = new Client({ name: "credbroker-ts-interop", version: "1.0.0" });
await client.connect(transport);
out({ step: "connected", server: client.getServerVersion()?.name ?? null });

const tools = (await client.listTools()).tools.map((t) => t.name).sort();
out({ step: "list", tools });

const allowed = await client.callTool({ name: "list_tickets", arguments: {} });
out({ step: "call", tool: "list_tickets", isError: allowed.isError === true, text: text(allowed) });

try {
  const result = await client.callTool({ name: "close_ticket", arguments: { id: "T-2" } });
  out({ step: "forbidden", refused: false, isError: result.isError === true, text: text(result) });
} catch (e) {
  out({ step: "forbidden", ...refusal(e) });
}

out({ step: "ready" });
await new Promise((resolve) => {
  const lines = readline.createInterface({ input: process.stdin });
  lines.on("line", (line) => { if (line.trim() === "completed") { lines.close(); resolve(); } });
  lines.on("close", resolve);
});

const deadline = Date.now() + 10_000;
let after = { refused: false };
while (Date.now() < deadline) {
  try {
    await client.callTool({ name: "list_tickets", arguments: {} });
  } catch (e) {
    after = refusal(e);
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
}
out({ step: "after", ...after });
await transport.close().catch(() => {});
process.exit(0);
