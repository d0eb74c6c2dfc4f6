import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { TEST_PERSONAS, syncTestPersonas } from "../helpers/personas.js";
import { HUMAN_PERSONAS } from "../store/conformance/humans.js";
import { call, callFailing, connectInProcess } from "./helpers.js";

/**
 * Humans in the loop over MCP (issue 17): a worker parks its task on a question
 * (request_input), a planner answers, approves, rejects and asks why; parked tasks
 * are what get_progress lists as needing attention.
 */
describe("MCP tools for humans", () => {
  let db: TestStore;

  beforeEach(async () => {
    db = await openTestStore();
    await syncTestPersonas(db.store, db.clock.now(), [...TEST_PERSONAS, ...HUMAN_PERSONAS]);
  });

  afterEach(async () => db.close());

  it("request_input parks the held task uncounted and releases the lease; answer_task returns it and the next claim carries the answer", async () => {
    const worker = await connectInProcess({ store: db.store, clock: db.clock, profile: "worker" });
    const planner = await connectInProcess({ store: db.store, clock: db.clock, profile: "planner" });
    try {
      const { goalId, refs } = await call(planner.client, "create_goal", {
        goal: { persona: "reviewer", title: "ship" },
        tasks: [{ ref: "q", persona: "worker", title: "pick a branch" }],
      });
      const first = await call(worker.client, "claim_task", { persona: "worker" });
      expect(first.task).toMatchObject({ id: refs.q, attempt: 1 });
      expect(first.task.inputs).toBeUndefined();
      expect(await call(worker.client, "request_input", { taskId: refs.q, leaseToken: first.leaseToken, question: "Which branch?" })).toEqual({ taskId: refs.q, status: "awaiting_input" });

      // The lease is gone: the old token is refused, saying the attempt gave it back.
      const late = await callFailing(worker.client, "complete_task", { taskId: refs.q, leaseToken: first.leaseToken, result: "x" });
      expect(late.error).toMatchObject({ code: "LEASE_LOST", details: { reason: "released", status: "awaiting_input" } });
      expect((await call(planner.client, "get_task", { taskId: refs.q })).task).toMatchObject({ status: "awaiting_input", attempts: 0 });
      expect(await call(worker.client, "claim_task", { persona: "worker" })).toEqual({ task: null });

      const progress = await call(planner.client, "get_progress", { rootId: goalId });
      expect(progress.settled).toBe(true);
      expect(progress.needsAttention).toEqual({ awaiting_input: { count: 1, ids: [refs.q] } });
      const why = await call(planner.client, "why", { taskId: refs.q });
      expect(why.reasons.map((r: { code: string }) => r.code)).toContain("awaiting_input");
      expect(why.reasons.find((r: { code: string }) => r.code === "awaiting_input").data.question).toBe("Which branch?");

      expect(await call(planner.client, "answer_task", { taskId: refs.q, answer: "release/2.3" })).toEqual({ taskId: refs.q, status: "pending" });
      const second = await call(worker.client, "claim_task", { persona: "worker" });
      expect(second.task).toMatchObject({ id: refs.q, attempt: 1, inputs: [{ question: "Which branch?", answer: "release/2.3" }] });
      await call(worker.client, "complete_task", { taskId: refs.q, leaseToken: second.leaseToken, result: "done" });
      const events = (await call(planner.client, "get_task", { taskId: refs.q, eventLimit: 50 })).task.events as Array<{ type: string }>;
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["input:requested", "input:answered"]));
    } finally {
      await worker.close();
      await planner.close();
    }
  });

  it("approve_task completes an approval with its note as the result dependents get; reject_task fails one and blocks its dependents", async () => {
    const planner = await connectInProcess({ store: db.store, clock: db.clock, profile: "all" });
    try {
      const { agentId } = await call(planner.client, "register_agent", { name: "lead" });
      const { refs } = await call(planner.client, "create_tasks", {
        tasks: [
          { ref: "gate", persona: "approver", title: "approve the plan" },
          { ref: "work", persona: "worker", title: "after approval", dependsOn: ["gate"] },
          { ref: "gate2", persona: "approver", title: "approve the merge" },
          { ref: "merge", persona: "worker", title: "after the merge approval", dependsOn: ["gate2"] },
        ],
      });
      expect(await call(planner.client, "claim_task", { persona: "worker" })).toEqual({ task: null });
      const attention = (await call(planner.client, "get_progress", {})).needsAttention;
      expect(attention.awaiting_approval).toEqual({ count: 2, ids: [refs.gate, refs.gate2] });
      expect((await call(planner.client, "why", { taskId: refs.work })).reasons.map((r: { code: string }) => r.code)).toContain("dependencies_unmet");
      expect((await call(planner.client, "why", { taskId: refs.gate })).reasons[0].code).toBe("awaiting_approval");

      expect(await call(planner.client, "approve_task", { taskId: refs.gate, note: "looks right" })).toEqual({ taskId: refs.gate, status: "completed", readied: [refs.work] });
      const claim = await call(planner.client, "claim_task", { persona: "worker" });
      expect(claim.task.id).toBe(refs.work);
      expect(claim.task.dependencies[0].result).toEqual({ approved: true, note: "looks right", by: agentId });

      expect(await call(planner.client, "reject_task", { taskId: refs.gate2, reason: "not this week" })).toEqual({ taskId: refs.gate2, status: "failed", blocked: [refs.merge] });
      expect((await call(planner.client, "get_task", { taskId: refs.gate2 })).task).toMatchObject({ status: "failed", error: { code: "REJECTED" } });
      const why = await call(planner.client, "why", { taskId: refs.merge });
      expect(why.reasons[0]).toMatchObject({ code: "blocked_by", data: { tasks: [{ id: refs.gate2, status: "failed" }] } });
    } finally {
      await planner.close();
    }
  });

  it("refuses what a person's tools cannot do, in the one error shape, writing nothing", async () => {
    const planner = await connectInProcess({ store: db.store, clock: db.clock, profile: "all" });
    try {
      const { ids } = await call(planner.client, "create_tasks", { tasks: [{ persona: "worker", title: "plain" }] });
      const before = await db.store.tasks.get({ taskId: ids[0], eventLimit: 100 });
      expect((await callFailing(planner.client, "approve_task", { taskId: ids[0] })).error).toMatchObject({ code: "INVALID_STATE", details: { status: "pending" } });
      expect((await callFailing(planner.client, "answer_task", { taskId: ids[0], answer: "x" })).error).toMatchObject({ code: "INVALID_STATE" });
      expect((await callFailing(planner.client, "answer_task", { taskId: ids[0], answer: "" })).error).toMatchObject({ code: "VALIDATION", field: "answer" });
      expect((await callFailing(planner.client, "reject_task", { taskId: ids[0] })).error).toMatchObject({ code: "VALIDATION", field: "reason" });
      expect((await callFailing(planner.client, "why", { taskId: 999 })).error).toMatchObject({ code: "TASK_NOT_FOUND", field: "taskId" });
      expect((await callFailing(planner.client, "request_input", { taskId: ids[0], leaseToken: "nope", question: "?" })).error).toMatchObject({ code: "LEASE_LOST", details: { reason: "unknown" } });
      expect(await db.store.tasks.get({ taskId: ids[0], eventLimit: 100 })).toEqual(before);
    } finally {
      await planner.close();
    }
  });

  it("lists the person's tools in the planner profile and request_input in the worker profile only", async () => {
    const names = async (profile: "planner" | "worker") => {
      const { client, close } = await connectInProcess({ store: db.store, profile });
      const list = (await client.listTools()).tools.map((t) => t.name);
      await close();
      return list;
    };
    const planner = await names("planner");
    expect(planner).toEqual(expect.arrayContaining(["approve_task", "reject_task", "answer_task", "why"]));
    expect(planner).not.toContain("request_input");
    const worker = await names("worker");
    expect(worker).toContain("request_input");
    expect(worker).not.toContain("approve_task");
  });
});
