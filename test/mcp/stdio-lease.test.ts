import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, callFailing, doubleHolds, requireBuild, spawnMcpClient, until, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/** Short enough that the test waits a second or two for a lease to run out. */
const LEASE_MS = 1_500;

/**
 * Lease loss across processes: two built `roster mcp` processes on one database
 * file; the first worker stops heartbeating, the reaper (run here, as a supervisor
 * would) returns its task to pending, the second worker completes it, and the
 * first worker's late complete_task is fenced off with LEASE_LOST.
 */
describe("roster mcp over stdio: a worker that stops heartbeating", () => {
  let temp: TempDir;
  let store: Store;
  const clients: SpawnedClient[] = [];

  beforeEach(async () => {
    requireBuild();
    temp = makeTempDir("roster-mcp-lease-");
    const personasDir = temp.path("personas");
    writePersona(personasDir, { id: "quick", leaseMs: LEASE_MS, maxAttempts: 3 });
    store = await openStore({ path: temp.path("roster.db") });
    await syncPersonaFolder(store, personasDir);
  });

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await store.close();
    temp.cleanup();
  });

  it("loses its lease to the reaper; another worker completes the task; its late complete_task gets LEASE_LOST", async () => {
    const db = temp.path("roster.db");
    const [first, second] = await Promise.all([spawnMcpClient({ db, profile: "all", name: "first" }), spawnMcpClient({ db, profile: "worker", name: "second" })]);
    clients.push(first!, second!);
    const a = first!.client;
    const b = second!.client;

    const { ids } = await call(a, "create_tasks", { tasks: [{ persona: "quick", title: "fragile work" }] });
    const taskId = ids[0] as number;
    const agentA = (await call(a, "register_agent", { name: "A" })).agentId as string;
    const agentB = (await call(b, "register_agent", { name: "B" })).agentId as string;
    const claimA = await call(a, "claim_task", { agentId: agentA, persona: "quick" });
    expect(claimA.task.id).toBe(taskId);
    expect(claimA.task.leaseMs).toBe(LEASE_MS);

    // A goes silent. Once its lease has run out, the reaper takes the task back.
    await until(async () => {
      const reaped = await store.maintenance.reapExpired({ now: Date.now() });
      return reaped.retried.some((r) => r.taskId === taskId);
    }, "the reaper to collect A's expired lease");
    expect((await store.tasks.get({ taskId })).status).toBe("pending");

    const claimB = await call(b, "claim_task", { agentId: agentB, persona: "quick", waitMs: 5_000 });
    // A's reaped attempt is not counted (docs/ARCHITECTURE.md rule 6): B's claim is attempt 1 again.
    expect(claimB.task).toMatchObject({ id: taskId, attempt: 1 });
    expect((await call(b, "heartbeat", { agentId: agentB })).renewed).toEqual([taskId]);
    await call(b, "report_progress", { taskId, leaseToken: claimB.leaseToken, fraction: 0.5 });
    await call(b, "complete_task", { taskId, leaseToken: claimB.leaseToken, result: { by: "B" } });

    // A wakes up: its heartbeat says the lease is gone, and its result is refused.
    expect((await call(a, "heartbeat", { agentId: agentA })).lost).toEqual([taskId]);
    const late = await callFailing(a, "complete_task", { taskId, leaseToken: claimA.leaseToken, result: { by: "A" } });
    expect(late.error).toMatchObject({ code: "LEASE_LOST", field: "leaseToken" });

    const detail = await store.tasks.get({ taskId, eventLimit: 100 });
    expect(detail.status).toBe("completed");
    expect(detail.result).toEqual({ by: "B" });
    const events = await store.tasks.events({ taskId });
    expect(doubleHolds(taskId, events)).toEqual([]);
    expect(events.find((e) => e.type === "lease:expired")?.agentId).toBe(agentA);
    expect(events.filter((e) => e.type === "task:completed").map((e) => e.agentId)).toEqual([agentB]);
  });
});
