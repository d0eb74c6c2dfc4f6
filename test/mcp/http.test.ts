import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { hostnameOf, secretsMatch } from "../../src/http-access.js";
import { createLogger } from "../../src/logging/logger.js";
import { startMcpHttp, type McpHttpServer } from "../../src/mcp/http.js";
import { openStore } from "../../src/store/index.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { call } from "./helpers.js";

const TOKEN = "s3cret-token-for-tests";

function httpClient(url: string, token?: string): { client: Client; transport: StreamableHTTPClientTransport } {
  const transport = new StreamableHTTPClientTransport(new URL(url), token === undefined ? {} : { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  return { client: new Client({ name: "http-test", version: "0.0.0" }), transport };
}

/** A raw initialize POST with chosen headers (fetch will not send a foreign Host). */
function rawInitialize(url: string, headers: Record<string, string>): Promise<{ status: number; body: string; sessionId?: string }> {
  return rawPost(url, headers, {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "0" } },
  });
}

function rawPost(url: string, headers: Record<string, string>, message: object): Promise<{ status: number; body: string; sessionId?: string }> {
  const target = new URL(url);
  const body = JSON.stringify(message);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
        const sessionId = res.headers["mcp-session-id"];
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, ...(typeof sessionId === "string" ? { sessionId } : {}) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("roster MCP over Streamable HTTP", () => {
  let db: TestStore;
  let http: McpHttpServer;

  beforeEach(async () => {
    db = await openTestStore();
    http = await startMcpHttp({ store: db.store, clock: db.clock, port: 0, token: TOKEN });
  });

  afterEach(async () => {
    await http.close();
    await db.close();
  });

  it("binds 127.0.0.1 by default", () => {
    expect(http.host).toBe("127.0.0.1");
    expect(http.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it("serves a client that sends the bearer token", async () => {
    const { client, transport } = httpClient(http.url, TOKEN);
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("claim_task");
    expect(names).toContain("create_tasks");
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "over http" }] });
    const { agentId } = await call(client, "register_agent", { name: "http worker" });
    const claimed = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(claimed.task.id).toBe(ids[0]);
    expect((await db.store.tasks.get({ taskId: ids[0] })).assignedAgentId).toBe(agentId);
    await client.close();
  });

  it("answers 401 to a client without the token, and to one with a wrong token", async () => {
    for (const token of [undefined, "wrong-token"]) {
      const { client, transport } = httpClient(http.url, token);
      await expect(client.connect(transport)).rejects.toMatchObject({ code: 401 });
    }
    const raw = await rawInitialize(http.url, { host: new URL(http.url).host });
    expect(raw.status).toBe(401);
  });

  it("refuses a foreign Host header with 403 even with the token", async () => {
    const port = new URL(http.url).port;
    const refused = await rawInitialize(http.url, { host: `evil.example:${port}`, authorization: `Bearer ${TOKEN}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("Host");
    const allowed = await rawInitialize(http.url, { host: `localhost:${port}`, authorization: `Bearer ${TOKEN}` });
    expect(allowed.status).toBe(200);
  });

  it("refuses a foreign Origin with 403 and accepts a loopback one", async () => {
    const host = new URL(http.url).host;
    const auth = { host, authorization: `Bearer ${TOKEN}` };
    expect((await rawInitialize(http.url, { ...auth, origin: "http://evil.example" })).status).toBe(403);
    expect((await rawInitialize(http.url, { ...auth, origin: `http://${host}` })).status).toBe(200);
  });

  it("wakes a waiting claim_task when another connection to the database enqueues", async () => {
    const { client, transport } = httpClient(http.url, TOKEN);
    await client.connect(transport);
    const { agentId } = await call(client, "register_agent", { name: "waiter" });
    const waiting = call(client, "claim_task", { agentId, persona: "worker", waitMs: 20_000 });
    const other = await openStore({ path: db.path });
    try {
      const { ids } = await other.tasks.enqueue({ tasks: [{ persona: "worker", title: "from elsewhere" }], now: db.clock.now() });
      expect((await waiting).task.id).toBe(ids[0]);
    } finally {
      await other.close();
      await client.close();
    }
  });

  it("keeps sessions apart: two clients at once each get their own session", async () => {
    const a = httpClient(http.url, TOKEN);
    const b = httpClient(http.url, TOKEN);
    await Promise.all([a.client.connect(a.transport), b.client.connect(b.transport)]);
    expect(a.transport.sessionId).toBeDefined();
    expect(a.transport.sessionId).not.toBe(b.transport.sessionId);
    const [pa, pb] = await Promise.all([call(a.client, "list_personas"), call(b.client, "list_personas")]);
    expect(pa).toEqual(pb);
    await Promise.all([a.client.close(), b.client.close()]);
  });
});

describe("roster MCP over Streamable HTTP, sessions and binds", () => {
  let db: TestStore;
  let http: McpHttpServer | null = null;

  beforeEach(async () => {
    db = await openTestStore();
  });

  afterEach(async () => {
    await http?.close();
    http = null;
    await db.close();
  });

  it("closes a session whose client went away without DELETE once it has been idle for sessionIdleMs", async () => {
    // The session's close is waited for on the server's log line, not guessed from pings: each
    // ping is activity, and under load a ping sent 'soon' after the initialize can already come
    // after a short idle limit. The limit is long enough that the first ping surely finds the session.
    const idleMs = 5_000;
    const closed: string[] = [];
    let onClose = (): void => {};
    const logger = createLogger({
      level: "debug",
      pretty: false,
      destination: {
        write: (line: string) => {
          if (!line.includes("closing idle mcp session")) return true;
          closed.push((JSON.parse(line) as { sessionId: string }).sessionId);
          onClose();
          return true;
        },
      },
    });
    http = await startMcpHttp({ store: db.store, clock: db.clock, port: 0, sessionIdleMs: idleMs, logger });
    const host = new URL(http.url).host;
    const opened = await rawInitialize(http.url, { host });
    expect(opened.status).toBe(200);
    const session = { host, "mcp-session-id": opened.sessionId!, "mcp-protocol-version": LATEST_PROTOCOL_VERSION };
    const ping = { jsonrpc: "2.0", id: 2, method: "ping" };
    const pinged = Date.now();
    expect((await rawPost(http.url, session, ping)).status).toBe(200);
    await new Promise<void>((resolve) => {
      onClose = () => closed.includes(opened.sessionId!) && resolve();
      onClose();
    });
    // Closed for being idle: not before the limit had passed since the last activity.
    expect(Date.now() - pinged).toBeGreaterThanOrEqual(idleMs);
    expect((await rawPost(http.url, session, ping)).status).toBe(404);
  });

  it("at the session limit, a new session closes the oldest unused one; working agents keep theirs, and only sessions that all have agents give 503", async () => {
    // A flood of initialize requests (a reconnect loop; SDK clients whose close sends no DELETE)
    // used to fill the limit for 30 minutes and lock every agent and planner out.
    http = await startMcpHttp({ store: db.store, clock: db.clock, port: 0, maxSessions: 3 });
    const host = new URL(http.url).host;
    await db.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "held" }], now: db.clock.now() });
    const worker = httpClient(http.url);
    await worker.client.connect(worker.transport);
    const { task, leaseToken } = await call(worker.client, "claim_task", { persona: "worker" });
    for (let i = 0; i < 20; i++) expect((await rawInitialize(http.url, { host })).status, `unused session ${i}`).toBe(200);
    // The working agent's session survived the flood: its lease is renewed and its result taken.
    expect((await call(worker.client, "heartbeat", {})).renewed).toEqual([task.id]);
    expect(await call(worker.client, "complete_task", { taskId: task.id, leaseToken, result: "done" })).toMatchObject({ taskId: task.id });
    // Two more agents fill the limit with sessions that hold an agent: then a new one gets 503.
    const others = [httpClient(http.url), httpClient(http.url)];
    for (const other of others) {
      await other.client.connect(other.transport);
      await call(other.client, "register_agent", {});
    }
    const refused = await rawInitialize(http.url, { host });
    expect(refused.status).toBe(503);
    expect(refused.body).toContain("Too many open sessions (3, each with an agent)");
    for (const c of [worker, ...others]) await c.client.close();
  });

  it("refuses a sessionIdleMs that is not a positive integer", async () => {
    await expect(startMcpHttp({ store: db.store, clock: db.clock, port: 0, sessionIdleMs: 0 })).rejects.toThrow(/sessionIdleMs/);
  });

  it("bound to all interfaces, accepts a Host that is an IP address or loopback name and still refuses a foreign domain name", async () => {
    http = await startMcpHttp({ store: db.store, clock: db.clock, port: 0, host: "0.0.0.0", token: TOKEN });
    const port = new URL(http.url).port;
    const url = `http://127.0.0.1:${port}/mcp`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await rawInitialize(url, { ...auth, host: `192.0.2.7:${port}` })).status).toBe(200);
    expect((await rawInitialize(url, { ...auth, host: `localhost:${port}` })).status).toBe(200);
    expect((await rawInitialize(url, { ...auth, host: `rebind.example:${port}` })).status).toBe(403);
  });
});

describe("MCP HTTP helpers", () => {
  it("compares tokens of any length without throwing", () => {
    expect(secretsMatch(TOKEN, TOKEN)).toBe(true);
    expect(secretsMatch("short", TOKEN)).toBe(false);
    expect(secretsMatch("", TOKEN)).toBe(false);
  });

  it("takes the host name of a Host header without its port, IPv6 in brackets", () => {
    expect(hostnameOf("127.0.0.1:8080")).toBe("127.0.0.1");
    expect(hostnameOf("LOCALHOST")).toBe("localhost");
    expect(hostnameOf("[::1]:9000")).toBe("[::1]");
    expect(hostnameOf("")).toBeNull();
  });
});
