import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { call, callFailing, connectInProcess } from "./helpers.js";

/** The bound on a claim with four ~900 KB dependency results (docs/mcp.md, bench/RESULTS.md "## mcp sizes"). */
export const CLAIM_WITH_BIG_RESULTS_MAX_BYTES = 16_384;

describe("what a worker sees and what it costs", () => {
  let db: TestStore;

  beforeEach(async () => {
    db = await openTestStore({ maxPayloadBytes: 1024 * 1024 });
  });

  afterEach(async () => db.close());

  it("cuts dependency results in a claim, gives their full size, and read_task pages the rest", async () => {
    const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
    const { refs } = await call(client, "create_tasks", {
      tasks: [
        ...["a", "b", "c", "d"].map((ref) => ({ ref, persona: "worker", title: ref })),
        { ref: "sum", persona: "reviewer", title: "fan-in", dependsOn: ["a", "b", "c", "d"] },
      ],
    });
    const big = "x".repeat(900_000);
    for (let i = 0; i < 4; i++) {
      const c = await call(client, "claim_task", { persona: "worker" });
      await call(client, "complete_task", { taskId: c.task.id, leaseToken: c.leaseToken, result: { text: big } });
    }
    const raw = (await client.callTool({ name: "claim_task", arguments: { persona: "reviewer" } })) as CallToolResult;
    const bytes = Buffer.byteLength(JSON.stringify(raw));
    console.log(`claim with 4 x 900 KB dependency results: ${bytes} bytes`);
    expect(bytes).toBeLessThan(CLAIM_WITH_BIG_RESULTS_MAX_BYTES);
    const task = (raw.structuredContent as { task: { id: number; dependencies: Array<Record<string, unknown>> } }).task;
    expect(task.id).toBe(refs.sum);
    const dep = task.dependencies[0]!;
    expect(dep).toMatchObject({ truncated: true, resultChars: JSON.stringify({ text: big }).length });
    let text = "";
    for (let offset: number | null = 0; offset !== null; ) {
      const page = await call(client, "read_task", { taskId: dep.id, offset, limit: 64_000 });
      text += page.task.resultText;
      offset = page.task.nextOffset;
    }
    expect(JSON.parse(text)).toEqual({ text: big });
    await close();
  });

  it("introduces itself with roster's own version, the one roster --version prints", async () => {
    const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    expect(client.getServerVersion()).toMatchObject({ name: "roster", version: pkg.version });
    await close();
  });

  it("says why a lease was lost: cancelled by a planner", async () => {
    const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "t" }] });
    const claim = await call(client, "claim_task", { persona: "worker" });
    await call(client, "cancel_task", { taskId: ids[0], reason: "not needed" });
    const out = await callFailing(client, "complete_task", { taskId: ids[0], leaseToken: claim.leaseToken, result: 1 });
    expect(out.error).toMatchObject({ code: "LEASE_LOST", field: "leaseToken", details: { reason: "cancelled", status: "cancelled" } });
    await close();
  });

  it("releases a session's leases and deregisters its agent when the session ends", async () => {
    const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "t" }] });
    const claim = await call(client, "claim_task", { persona: "worker" });
    const agentId = (await db.store.tasks.get({ taskId: ids[0] })).assignedAgentId!;
    expect(claim.task.attempt).toBe(1);
    await close();
    const after = await db.store.tasks.get({ taskId: ids[0] });
    expect(after).toMatchObject({ status: "pending", attempts: 0 });
    expect((await db.store.agents.get({ agentId }))?.status).toBe("deregistered");
  });

  it("answers schema errors in the same shape as domain errors, naming an unknown key", async () => {
    const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
    const before = await db.rowCounts();
    const extra = await callFailing(client, "create_tasks", { tasks: [{ persona: "worker", title: "t" }], tsks: [] });
    expect(extra.error).toMatchObject({ code: "VALIDATION", field: "tsks" });
    const type = await callFailing(client, "get_task", { taskId: "three" });
    expect(type.error).toMatchObject({ code: "VALIDATION", field: "taskId" });
    const policy = await callFailing(client, "create_tasks", { tasks: [{ persona: "worker", title: "t", policy: { baseMs: 10, maxMs: 5 } }] });
    expect(policy.error).toMatchObject({ code: "VALIDATION", field: "tasks[0].policy.baseMs" });
    const resume = await callFailing(client, "register_agent", { agentId: "never-registered" });
    expect(resume.error).toMatchObject({ code: "AGENT_NOT_FOUND", field: "agentId" });
    expect(await db.rowCounts()).toEqual(before);
    // A supervisor's agent, stopped: not an MCP agent to resume (its kind and writes stay its own).
    await db.store.agents.register({ id: "supervisor-gone", name: "a stopped supervisor", kind: "supervisor", personaId: null, heartbeatTimeoutMs: 30_000, now: db.clock.now() });
    await db.store.agents.deregister({ agentId: "supervisor-gone", now: db.clock.now() });
    const before2 = await db.rowCounts();
    const foreign = await callFailing(client, "register_agent", { agentId: "supervisor-gone" });
    expect(foreign.error).toMatchObject({ code: "AGENT_NOT_FOUND", field: "agentId" });
    expect(foreign.error?.message).toContain("is a supervisor agent, not an MCP agent");
    expect((await db.store.agents.get({ agentId: "supervisor-gone" }))?.kind).toBe("supervisor");
    expect(await db.rowCounts()).toEqual(before2);
    const long = await callFailing(client, "register_agent", { agentId: "a".repeat(101) });
    expect(long.error).toMatchObject({ code: "VALIDATION", field: "agentId" });
    expect(JSON.parse(extra.text)).toEqual({ error: extra.error });
    expect(await db.rowCounts()).toEqual(before2);
    await close();
  });
});
