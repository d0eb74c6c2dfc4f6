import type { ChildProcess } from "node:child_process";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { startMcpHttp } from "../../src/mcp/http.js";
import { openStore, type Store, type TaskDetail } from "../../src/store/index.js";
import { call, callFailing, doubleHolds, requireBuild, spawnMcpClient, until, writePersona, type SpawnedClient } from "../mcp/helpers.js";
import { usePostgres } from "../helpers/postgres.js";
import { startMcpReaper } from "../helpers/roster-process.js";
import { startCutProxy, type CutProxy } from "../helpers/tcp-proxy.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * MCP servers that lose their PostgreSQL while their agents hold tasks (issue 19,
 * deliverable 5; src/mcp/give-back.ts). The server under test reaches PostgreSQL through
 * a TCP proxy the test cuts (connections reset, new ones refused) and restores; a
 * `roster mcp` reaping every 100 ms and the other agents reach it directly. Tasks allow
 * one attempt on 2 s leases. While cut, the agent keeps heartbeating and is told the
 * database is unreachable; the reaper takes its leases (a whole lease without a renewal)
 * and counts them lost. Once the server can write again, whatever the agent learns is
 * lost it gives back (the loss was its server's link, not the tasks'), so no task ends
 * failed; its late writes are refused (LEASE_LOST); nothing is completed twice. SQLite
 * has no connection to lose: its cases are in test/mcp/give-back.test.ts.
 */
const pg = await usePostgres();

const LEASE_MS = 2_000;

let temp: TempDir | null = null;
let proxy: CutProxy | null = null;
let store: Store | null = null;
const children: ChildProcess[] = [];
const clients: SpawnedClient[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  await proxy?.close();
  proxy = null;
  await store?.close();
  store = null;
  temp?.cleanup();
  temp = null;
});

async function setUp(): Promise<{ url: string; store: Store; proxy: CutProxy }> {
  requireBuild();
  temp = makeTempDir("roster-mcp-cut-");
  const personasDir = temp.path("personas");
  writePersona(personasDir, { id: "quick", leaseMs: LEASE_MS, maxAttempts: 1 });
  const url = await pg.server().newDatabase("roster_mcpcut");
  store = await openStore({ path: url });
  await syncPersonaFolder(store, personasDir);
  proxy = await startCutProxy("127.0.0.1", Number(new URL(url).port));
  children.push(startMcpReaper(url, 0));
  return { url, store, proxy };
}

async function stdioWorker(db: string, name: string): Promise<SpawnedClient> {
  const spawned = await spawnMcpClient({ db, profile: "worker", name, cwd: temp!.path() });
  clients.push(spawned);
  return spawned;
}

const details = (s: Store, ids: readonly number[]): Promise<TaskDetail[]> => Promise.all(ids.map((taskId) => s.tasks.get({ taskId, eventLimit: 1_000 })));
const types = (task: TaskDetail): string[] => task.events.map((e) => e.type);
const reapedAll = async (s: Store, ids: readonly number[]) =>
  until(async () => (await details(s, ids)).every((t) => types(t).includes("lease:expired")), "the reaper to collect the cut-off agent's leases", 20_000);

/** A heartbeat the server cannot write answers the agent DATABASE_IO. */
async function heartbeatRefused(client: Client): Promise<void> {
  const out = await callFailing(client, "heartbeat", {});
  expect(out.error?.code).toBe("DATABASE_IO");
}

/** Heartbeats until the server writes one again (its pool reconnects); the answer. */
async function heartbeatOnceBack(client: Client): Promise<{ renewed: number[]; lost: number[] }> {
  let answer: { renewed: number[]; lost: number[] } | null = null;
  await until(async () => {
    const result = (await client.callTool({ name: "heartbeat", arguments: {} })) as CallToolResult;
    if (result.isError === true) return false;
    answer = result.structuredContent as { renewed: number[]; lost: number[] };
    return true;
  }, "a heartbeat written again", 30_000, 200);
  return answer!;
}

describe.skipIf(!pg.available)("postgres: an MCP server that loses its database", () => {
  it("stdio: the agent, back, learns its leases are lost and gives them back; its late writes are refused; every task completes once", async () => {
    const { url, store, proxy } = await setUp();
    const [done, open] = (await store.tasks.enqueue({ tasks: [{ persona: "quick", title: "done by another" }, { persona: "quick", title: "taken up again" }], now: Date.now() })).ids as [number, number];
    const a = await stdioWorker(proxy.url(url), "cut-off worker");
    const claims = new Map<number, string>();
    for (let i = 0; i < 2; i++) {
      const claim = await call(a.client, "claim_task", { persona: "quick" });
      claims.set(claim.task.id as number, claim.leaseToken as string);
    }
    const agentA = (await store.tasks.get({ taskId: done })).assignedAgentId!;

    proxy.cut("reset");
    await heartbeatRefused(a.client);
    await reapedAll(store, [done, open]);
    // Another agent does one of them meanwhile.
    const b = await stdioWorker(url, "other worker");
    const claimB = await call(b.client, "claim_task", { persona: "quick", waitMs: 5_000 });
    const byB = claimB.task.id as number;
    await call(b.client, "complete_task", { taskId: byB, leaseToken: claimB.leaseToken, result: { by: "B" } });
    const left = byB === done ? open : done;

    proxy.restore();
    const back = await heartbeatOnceBack(a.client);
    expect(back.lost.sort()).toEqual([done, open].sort());
    // The lease of the task still to do is given back (lost leases 1 → 0); the completed one has nothing to give back to.
    const leftTask = await store.tasks.get({ taskId: left, eventLimit: 1_000 });
    expect(leftTask.events.find((e) => e.type === "lease:given-back"), types(leftTask).join(", ")).toMatchObject({ agentId: agentA, data: { leasesLost: 0 } });
    expect(leftTask.status).toBe("pending");
    // Its late writes are refused and change nothing.
    for (const [taskId, leaseToken] of claims) {
      const late = await callFailing(a.client, "complete_task", { taskId, leaseToken, result: { by: "A, late" } });
      expect(late.error?.code).toBe("LEASE_LOST");
    }
    const again = await call(a.client, "claim_task", { persona: "quick", waitMs: 5_000 });
    expect(again.task).toMatchObject({ id: left, attempt: 1 });
    await call(a.client, "complete_task", { taskId: left, leaseToken: again.leaseToken, result: { by: "A" } });

    for (const task of await details(store, [done, open])) {
      expect(task.status, `task ${task.id}: ${types(task).join(", ")}`).toBe("completed");
      expect(task.attempts).toBe(1);
      expect(task.result).toEqual({ by: task.id === byB ? "B" : "A" });
      expect(types(task).filter((t) => t === "task:completed")).toHaveLength(1);
      expect(types(task).filter((t) => t === "lease:expired")).toHaveLength(1);
      expect(types(task)).not.toContain("task:failed");
      expect(doubleHolds(task.id, task.events)).toEqual([]);
    }
  });

  it("HTTP: a session ended while cut off is deregistered once the database is back; the leases of the agent that heartbeated meanwhile are given back, the silent one's are not", async () => {
    const { url, store, proxy } = await setUp();
    const ids = (await store.tasks.enqueue({ tasks: ["alive 1", "alive 2", "silent"].map((title) => ({ persona: "quick", title })), now: Date.now() })).ids as [number, number, number];
    const serverStore = await openStore({ path: proxy.url(url) });
    closers.push(() => serverStore.close());
    const http = await startMcpHttp({ store: serverStore, port: 0 });
    closers.unshift(() => http.close());
    const session = async (name: string) => {
      const transport = new StreamableHTTPClientTransport(new URL(`${http.url}/worker`));
      const client = new Client({ name, version: "0.0.0" });
      await client.connect(transport);
      closers.unshift(() => client.close());
      return { client, transport };
    };
    const alive = await session("alive");
    const silent = await session("silent");
    await call(alive.client, "claim_task", { persona: "quick" });
    await call(alive.client, "claim_task", { persona: "quick" });
    await call(silent.client, "claim_task", { persona: "quick" });
    const holder = new Map((await details(store, ids)).map((t) => [t.id, t.assignedAgentId!]));
    const agentAlive = holder.get(ids[0])!;
    const agentSilent = holder.get(ids[2])!;
    expect(holder.get(ids[1])).toBe(agentAlive);
    expect(agentSilent).not.toBe(agentAlive);

    proxy.cut("reset");
    await heartbeatRefused(alive.client);
    // Both clients go away (DELETE) while the server cannot reach the database.
    await alive.transport.terminateSession();
    await silent.transport.terminateSession();
    await reapedAll(store, ids);
    expect((await store.agents.get({ agentId: agentAlive }))?.status).not.toBe("deregistered");

    proxy.restore();
    await until(async () => (await store.agents.get({ agentId: agentAlive }))?.status === "deregistered" && (await store.agents.get({ agentId: agentSilent }))?.status === "deregistered", "both agents deregistered once the database is back", 30_000);
    await until(async () => (await details(store, ids.slice(0, 2))).every((t) => types(t).includes("lease:given-back")), "the alive agent's leases given back");
    for (const task of await details(store, ids.slice(0, 2))) expect(task.events.find((e) => e.type === "lease:given-back")).toMatchObject({ agentId: agentAlive, data: { leasesLost: 0 } });
    expect(types(await store.tasks.get({ taskId: ids[2], eventLimit: 1_000 }))).not.toContain("lease:given-back");

    // Nothing failed or doubled: another agent completes all three, each as attempt 1.
    const b = await stdioWorker(url, "other worker");
    for (let i = 0; i < 3; i++) {
      const claim = await call(b.client, "claim_task", { persona: "quick", waitMs: 5_000 });
      expect(claim.task.attempt).toBe(1);
      await call(b.client, "complete_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, result: { by: "B" } });
    }
    for (const task of await details(store, ids)) {
      expect(task.status, `task ${task.id}: ${types(task).join(", ")}`).toBe("completed");
      expect(types(task).filter((t) => t === "task:completed")).toHaveLength(1);
      expect(types(task)).not.toContain("task:failed");
      expect(doubleHolds(task.id, task.events)).toEqual([]);
    }
  });
});
