import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { startMcpHttp, type McpHttpServer } from "../../src/mcp/http.js";
import { openStore, type Store, type TaskDetail } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, callFailing, doubleHolds, requireBuild, spawnMcpClient, until, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * MCP agents and the leases they can no longer hold (docs/ARCHITECTURE.md rules 6 and 12,
 * src/mcp/give-back.ts), on a SQLite file and on PostgreSQL, with real `roster mcp`
 * processes over stdio and a real HTTP client. A task never ends failed, nor waits
 * through a reaper's backoff, because its agent's session ended or its agent paused and
 * came back; only a task whose agents go silent and never come back fails, at its bound
 * of lost leases. (Losing the database itself: test/reliability/mcp-connection-loss.test.ts.)
 */
const pg = await usePostgres();

const engines = [
  { name: "sqlite", db: (temp: TempDir) => Promise.resolve(temp.path("roster.db")) },
  ...(pg.available ? [{ name: "postgres", db: () => pg.server().newDatabase("roster_giveback") }] : []),
];

/** A lease the test's reaper takes about a second after the agent goes silent. */
const BRIEF_LEASE_MS = 1_000;

let temp: TempDir | null = null;
let store: Store | null = null;
const clients: SpawnedClient[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  await store?.close();
  store = null;
  temp?.cleanup();
  temp = null;
});

async function setUp(engine: (typeof engines)[number]): Promise<{ db: string; store: Store }> {
  requireBuild();
  temp = makeTempDir("roster-mcp-giveback-");
  const personasDir = temp.path("personas");
  // maxAttempts 1: one counted failure would end the task, and its bound of lost leases is 3 (lost-leases.ts).
  writePersona(personasDir, { id: "long", leaseMs: 60_000, maxAttempts: 1 });
  writePersona(personasDir, { id: "brief", leaseMs: BRIEF_LEASE_MS, maxAttempts: 1 });
  const db = await engine.db(temp);
  store = await openStore({ path: db });
  await syncPersonaFolder(store, personasDir);
  return { db, store };
}

async function worker(db: string, name: string): Promise<SpawnedClient> {
  const spawned = await spawnMcpClient({ db, profile: "worker", name, cwd: temp!.path() });
  clients.push(spawned);
  return spawned;
}

async function httpWorker(http: McpHttpServer): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${http.url}/worker`));
  const client = new Client({ name: "http worker", version: "0.0.0" });
  await client.connect(transport);
  closers.push(() => client.close());
  return { client, transport };
}

const details = (s: Store, ids: readonly number[]): Promise<TaskDetail[]> => Promise.all(ids.map((taskId) => s.tasks.get({ taskId, eventLimit: 1_000 })));
const types = (task: TaskDetail): string[] => task.events.map((e) => e.type);

/** Reaps, as a supervisor's reaper would, until `taskId`'s lease is collected. */
async function reaped(s: Store, taskId: number): Promise<void> {
  await until(async () => {
    const out = await s.maintenance.reapExpired({ now: Date.now() });
    return [...out.retried, ...out.failed].some((r) => r.taskId === taskId);
  }, `the reaper to collect task ${taskId}'s lease`);
}

describe.each(engines)("MCP agents give back leases they can no longer hold ($name)", (engine) => {
  it("a session that ends while holding tasks releases them at once, uncounted: stdio (stdin closed) and HTTP (DELETE)", async () => {
    const { db, store } = await setUp(engine);
    const ids = (await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "long", title: `held ${i}` })), now: Date.now() })).ids;
    const http = await startMcpHttp({ store, port: 0 });
    closers.push(() => http.close());

    const overStdio = await worker(db, "stdio worker");
    const overHttp = await httpWorker(http);
    for (const client of [overStdio.client, overStdio.client, overHttp.client, overHttp.client]) {
      expect((await call(client, "claim_task", { persona: "long" })).task.attempt).toBe(1);
    }
    const holders = new Set((await details(store, ids)).map((t) => t.assignedAgentId));
    expect(holders.size).toBe(2);

    // The stdio client closes the server's stdin and waits for it to exit; the HTTP client DELETEs its session.
    await overStdio.close();
    await overHttp.transport.terminateSession();
    // 60 s leases: only the sessions' ends can have put the tasks back this soon.
    await until(async () => (await details(store, ids)).every((t) => t.status === "pending"), "every held task back in the queue");
    for (const task of await details(store, ids)) {
      expect(task.attempts, `task ${task.id}: ${types(task).join(", ")}`).toBe(0);
      expect(task.events.find((e) => e.type === "task:released")).toMatchObject({ data: { reason: expect.stringMatching(/^session ended: the MCP session of mcp-\S+ ended holding it; lease 1 of 3 /) } });
      expect(types(task)).not.toContain("lease:expired");
    }
    for (const agentId of holders) expect((await store.agents.get({ agentId: agentId! }))?.status).toBe("deregistered");

    // Another agent does the work: each task completed once, as attempt 1, never held by two.
    const next = await worker(db, "next worker");
    for (let i = 0; i < ids.length; i++) {
      const claim = await call(next.client, "claim_task", { persona: "long" });
      expect(claim.task.attempt).toBe(1);
      await call(next.client, "complete_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, result: { by: "next" } });
    }
    for (const task of await details(store, ids)) {
      expect(task.status).toBe("completed");
      expect(types(task).filter((t) => t === "task:completed")).toHaveLength(1);
      expect(doubleHolds(task.id, task.events)).toEqual([]);
    }
  });

  it("an agent that pauses past its lease and comes back (a heartbeat, a late result) gives the lease back: on its last attempt the task outlives four reaps and completes", async () => {
    const { db, store } = await setUp(engine);
    const [id] = (await store.tasks.enqueue({ tasks: [{ persona: "brief", title: "slow thinker" }], now: Date.now() })).ids as [number];
    const a = await worker(db, "pausing worker");
    // Four pauses, one more than the task may lose (max(maxAttempts 1, 3)) were none given back.
    for (let round = 1; round <= 4; round++) {
      const claim = await call(a.client, "claim_task", { persona: "brief", waitMs: 5_000 });
      expect(claim.task).toMatchObject({ id, attempt: 1 });
      const agentId = (await store.tasks.get({ taskId: id })).assignedAgentId;
      await reaped(store, id);
      // Back: its heartbeat says the lease is lost, or (every other round) its late result is refused; either way the server gives it back.
      if (round % 2 === 1) expect((await call(a.client, "heartbeat")).lost).toEqual([id]);
      else {
        const late = await callFailing(a.client, "complete_task", { taskId: id, leaseToken: claim.leaseToken, result: { late: round } });
        expect(late.error).toMatchObject({ code: "LEASE_LOST", details: { reason: "expired" } });
      }
      const task = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
      expect(task.status, `round ${round}: ${types(task).join(", ")}`).toBe("pending");
      // The reap counted one lost lease (not the attempt); the give-back took it off again.
      expect(task.events.filter((e) => e.type === "task:retrying").at(-1)?.data).toMatchObject({ counted: false, leasesLost: 1 });
      expect(task.events.at(-1)).toMatchObject({ type: "lease:given-back", agentId, data: { leasesLost: 0 } });
    }
    const last = await call(a.client, "claim_task", { persona: "brief", waitMs: 5_000 });
    await call(a.client, "complete_task", { taskId: id, leaseToken: last.leaseToken, result: { done: true } });
    const task = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
    expect(task).toMatchObject({ status: "completed", attempts: 1, result: { done: true } });
    expect(types(task).filter((t) => t === "lease:expired")).toHaveLength(4);
    expect(types(task).filter((t) => t === "lease:given-back")).toHaveLength(4);
    expect(types(task)).not.toContain("task:failed");
    expect(doubleHolds(id, task.events)).toEqual([]);
  });

  it("agents that go silent and never come back: the task fails at its bound of lost leases, and their sessions' ends give nothing back", async () => {
    const { db, store } = await setUp(engine);
    const [id] = (await store.tasks.enqueue({ tasks: [{ persona: "brief", title: "silences its agents" }], now: Date.now() })).ids as [number];
    const silent: SpawnedClient[] = [];
    for (let i = 0; i < 3; i++) {
      const agent = await worker(db, `silent ${i}`);
      silent.push(agent);
      expect((await call(agent.client, "claim_task", { persona: "brief", waitMs: 5_000 })).task.id).toBe(id);
      await reaped(store, id);
    }
    const failed = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
    expect(failed.status, types(failed).join(", ")).toBe("failed");
    expect(failed.error?.code).toBe("LEASE_EXPIRED");
    expect(types(failed).filter((t) => t === "lease:expired")).toHaveLength(3);
    // Their clients exit: none of them heartbeated after going silent, so no lost lease was theirs to give back.
    await Promise.all(silent.map((c) => c.close()));
    const after = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
    expect(after.status).toBe("failed");
    expect(types(after)).not.toContain("lease:given-back");
  });
});
