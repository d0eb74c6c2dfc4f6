import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { TestStore } from "../helpers/store.js";
import { call, callFailing, openMcpInProcess } from "./helpers.js";

/**
 * An MCP worker's running usage (report_progress `usage`, its total so far) against its task's
 * budget (docs/economics.md, "Streaming usage"): the report that reaches it ends the attempt as
 * BUDGET_EXHAUSTED, recorded and given back uncounted, the task held until the budget is raised.
 * In-process over the SDK's InMemoryTransport, on a real SQLite file.
 */
describe("report_progress with usage", () => {
  let db: TestStore;
  let client: Client;
  let close: () => Promise<void>;

  beforeEach(async () => {
    ({ db, client, close } = await openMcpInProcess());
  });
  afterEach(() => close());

  it("stops the attempt at the report whose total reaches the task's maxTokens, records it uncounted, holds the task, and a raise lets the next attempt complete", async () => {
    const agentId = (await call(client, "register_agent", { name: "w" })).agentId as string;
    const { ids } = await db.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "spends", policy: { maxTokens: 2_500 } }], now: db.clock.now() });
    const id = ids[0]!;
    const { leaseToken } = await call(client, "claim_task", { agentId, persona: "worker" });
    const at = (tokens: number) => ({ taskId: id, leaseToken, fraction: tokens / 5_000, usage: { model: "no-such-model", inputTokens: tokens } });
    await call(client, "report_progress", at(1_000));
    await call(client, "report_progress", at(2_000));
    const stopped = await callFailing(client, "report_progress", at(3_000));
    expect(stopped.error).toMatchObject({ code: "BUDGET_EXHAUSTED" });
    expect(stopped.text).toMatch(/stop working on this task/);
    expect(await db.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0 });
    expect((await db.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.inputTokens])).toEqual([["budget_exhausted", 3_000]]);
    expect((await db.store.why.explain({ taskId: id, now: db.clock.now() })).reasons.map((r) => r.code)).toContain("budget_exhausted");
    // Its lease is gone: a late completion is refused, and the held task is not claimed.
    expect((await callFailing(client, "complete_task", { taskId: id, leaseToken, result: "late" })).error).toMatchObject({ code: "LEASE_LOST" });
    expect((await call(client, "claim_task", { agentId, persona: "worker" })).task).toBeNull();

    await db.store.economics.raiseBudget({ scope: "task", key: String(id), addTokens: 10_000, now: db.clock.now(), by: "test" });
    const again = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(again.task.id).toBe(id);
    await call(client, "report_progress", { taskId: id, leaseToken: again.leaseToken, fraction: 0.5, usage: { model: "no-such-model", inputTokens: 4_000 } });
    await call(client, "complete_task", { taskId: id, leaseToken: again.leaseToken, result: "done", usage: { model: "no-such-model", inputTokens: 5_000 } });
    expect(await db.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1 });
    expect((await db.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.inputTokens])).toEqual([
      ["budget_exhausted", 3_000],
      ["completed", 5_000],
    ]);
  });

  it("refuses a usage that is not usage, naming the field, and writes nothing", async () => {
    const agentId = (await call(client, "register_agent", { name: "w" })).agentId as string;
    await db.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "p" }], now: db.clock.now() });
    const { task, leaseToken } = await call(client, "claim_task", { agentId, persona: "worker" });
    const bad = await callFailing(client, "report_progress", { taskId: task.id, leaseToken, fraction: 0.7, usage: { inputTokens: -1 } });
    expect(bad.error).toMatchObject({ code: "VALIDATION", field: "usage.inputTokens" });
    expect((await db.store.tasks.get({ taskId: task.id })).progress).toBeNull();
  });
});
