import type { ChildProcess } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { startMcpHttp } from "../../src/mcp/http.js";
import { openStore, type Store } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, requireBuild, spawnMcpClient, until, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * Tool calls an agent cancels (the SDK's AbortSignal: notifications/cancelled), with real
 * `roster mcp` processes over stdio and an HTTP server (`startMcpHttp`, as `roster start
 * --mcp-port` runs it) with the SDK's HTTP client. The SDK sends no answer to a cancelled request, so a
 * claim_task cancelled while it waited must claim nothing: the agent would never learn the
 * lease token, yet its heartbeats would keep the lease alive for as long as its session
 * lived, and the session's end would count it as a lost lease (three make a task fail,
 * AGENT_LEFT, for nothing it did). And a cancelled request must not keep a stdio session
 * waiting for an answer that never comes: the session ends as any other, its agent
 * deregistered, the process exiting 0.
 */
let temp: TempDir | null = null;
let store: Store | null = null;
const clients: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of clients.splice(0).reverse()) await c.close().catch(() => undefined);
  await store?.close();
  store = null;
  temp?.cleanup();
  temp = null;
});

async function setUp(): Promise<{ db: string; store: Store }> {
  requireBuild();
  temp = makeTempDir("roster-mcp-cancelled-");
  const personasDir = temp.path("personas");
  writePersona(personasDir, { id: "ext", leaseMs: 60_000, maxAttempts: 1 });
  const db = temp.path("roster.db");
  store = await openStore({ path: db });
  await syncPersonaFolder(store, personasDir);
  return { db, store };
}

async function worker(db: string, name: string): Promise<SpawnedClient> {
  const spawned = await spawnMcpClient({ db, profile: "worker", name, cwd: temp!.path() });
  clients.push(spawned);
  return spawned;
}

/** A worker client over each transport, on the database `db`. */
const transports = [
  { name: "stdio", connect: async (db: string) => (await worker(db, "canceller")).client },
  {
    name: "http",
    connect: async () => {
      const http = await startMcpHttp({ store: store!, port: 0 });
      clients.push(http);
      const client = new Client({ name: "canceller", version: "0.0.0" });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${http.url}/worker`)));
      clients.push(client);
      return client;
    },
  },
];

/** The server process behind a stdio client (the SDK keeps it private). */
const serverProcess = (spawned: SpawnedClient): ChildProcess => (spawned.transport as unknown as { _process: ChildProcess })._process;

describe("MCP calls the agent cancels", () => {
  it.each(transports)("a claim_task cancelled as its task arrives leaves the task unclaimed, or released uncounted, never held by the agent ($name)", async (transport) => {
    const { db, store } = await setUp();
    const agent = { client: await transport.connect(db) };
    const agentId = (await call(agent.client, "register_agent", {})).agentId as string;
    for (let round = 0; round < 5; round++) {
      const cancel = new AbortController();
      const claim = agent.client
        .callTool({ name: "claim_task", arguments: { persona: "ext", waitMs: 20_000 } }, undefined, { signal: cancel.signal })
        .then(
          () => "answered",
          () => "cancelled",
        );
      await new Promise((r) => setTimeout(r, 200 + round * 50)); // the claim is waiting
      // The task arrives and the agent gives up at once: the wake-up and the cancel race.
      const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "ext", title: `arrives ${round}` }], now: Date.now() });
      cancel.abort("the agent gave up waiting");
      expect(await claim).toBe("cancelled");
      const taskId = ids[0]!;
      // Whatever the server did in the race is settled once its next call is answered (calls run in order of arrival).
      const beat = await call(agent.client, "heartbeat", {});
      expect(beat.renewed, `round ${round}: the heartbeat renews a lease the agent never saw`).toEqual([]);
      const task = await store.tasks.get({ taskId, eventLimit: 100 });
      const trail = task.events.map((e) => e.type).join(", ");
      // Never claimed, or claimed and given back at once: ready for the next claimant, nothing counted.
      expect(task, trail).toMatchObject({ status: "pending", attempts: 0, assignedAgentId: null, error: null });
      const claimed = task.events.filter((e) => e.type === "task:claimed").length;
      const released = task.events.filter((e) => e.type === "task:released");
      expect(released.length, trail).toBe(claimed);
      for (const e of released) expect(e.data).toMatchObject({ reason: expect.stringContaining("claim_task cancelled") });
      // The next claim gets it, with its lease token.
      const next = await call(agent.client, "claim_task", { persona: "ext" });
      expect(next.task?.id).toBe(taskId);
      expect(typeof next.leaseToken).toBe("string");
      await call(agent.client, "complete_task", { taskId, leaseToken: next.leaseToken, result: { round } });
      expect((await store.tasks.get({ taskId })).status).toBe("completed");
    }
    expect((await store.agents.get({ agentId }))?.status).toBe("active");
  });

  it("a stdio session whose client cancelled a call and then closed ends as any other: agent deregistered, process exit 0", async () => {
    const { db, store } = await setUp();
    const agent = await worker(db, "gives-up");
    const agentId = (await call(agent.client, "register_agent", {})).agentId as string;
    const cancel = new AbortController();
    const claim = agent.client.callTool({ name: "claim_task", arguments: { persona: "ext", waitMs: 20_000 } }, undefined, { signal: cancel.signal }).catch(() => "cancelled");
    await new Promise((r) => setTimeout(r, 200));
    cancel.abort("the agent gave up waiting");
    expect(await claim).toBe("cancelled");
    const server = serverProcess(agent);
    const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
    await agent.close();
    // Before: the cancelled request stayed "pending" forever, the drain never came, and Node
    // exited 13 (an unsettled top-level await) without deregistering the agent.
    expect(await exited).toBe(0);
    await until(async () => (await store.agents.get({ agentId }))?.status === "deregistered", "the agent to be deregistered", 30_000);
  });
});
