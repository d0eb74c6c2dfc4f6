import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { TestStore } from "../helpers/store.js";
import { TEST_LEASE_MS } from "../helpers/personas.js";
import { call, callFailing, openMcpInProcess } from "./helpers.js";

/** Tool behaviour, in-process over the SDK's InMemoryTransport, on a real SQLite file and a ManualClock. */
describe("roster MCP tools", () => {
  let db: TestStore;
  let client: Client;
  let close: () => Promise<void>;

  beforeEach(async () => {
    ({ db, client, close } = await openMcpInProcess());
  });
  afterEach(() => close());

  const register = async (name = "w"): Promise<string> => (await call(client, "register_agent", { name })).agentId as string;

  it("create_tasks enqueues a batch with refs and dependencies and returns ids and refs", async () => {
    const out = await call(client, "create_tasks", {
      tasks: [
        { ref: "build", persona: "worker", title: "Build" },
        { ref: "check", persona: "reviewer", title: "Check", dependsOn: ["build"] },
      ],
    });
    expect(out.ids).toHaveLength(2);
    expect(out.refs).toEqual({ build: out.ids[0], check: out.ids[1] });
    const detail = (await call(client, "get_task", { taskId: out.refs.check })).task;
    expect(detail.status).toBe("waiting");
    expect(detail.dependencies.map((d: { id: number }) => d.id)).toEqual([out.refs.build]);
    const build = (await call(client, "get_task", { taskId: out.refs.build })).task;
    expect(build.dependents.map((d: { id: number }) => d.id)).toEqual([out.refs.check]);
    expect(build.events.map((e: { type: string }) => e.type)).toContain("task:enqueued");
  });

  it("list_tasks pages with afterId and nextAfterId and filters by status", async () => {
    await call(client, "create_tasks", { tasks: Array.from({ length: 5 }, (_, i) => ({ persona: "worker", title: `t${i}` })) });
    const first = await call(client, "list_tasks", { limit: 2 });
    expect(first.tasks.map((t: { title: string }) => t.title)).toEqual(["t0", "t1"]);
    const second = await call(client, "list_tasks", { limit: 2, afterId: first.nextAfterId });
    expect(second.tasks.map((t: { title: string }) => t.title)).toEqual(["t2", "t3"]);
    const last = await call(client, "list_tasks", { limit: 2, afterId: second.nextAfterId });
    expect(last.tasks.map((t: { title: string }) => t.title)).toEqual(["t4"]);
    expect(last.nextAfterId).toBeNull();
    expect((await call(client, "list_tasks", { status: "completed" })).tasks).toEqual([]);
    expect(Object.keys(first.tasks[0]).sort()).toEqual(["attempts", "id", "persona", "status", "title"]);
  });

  it("get_progress counts per persona and state for one goal's subtree", async () => {
    const goal = await call(client, "create_tasks", { tasks: [{ persona: "planner", title: "Goal" }] });
    await call(client, "create_tasks", { parentId: goal.ids[0], tasks: [{ persona: "worker", title: "a" }, { persona: "reviewer", title: "b" }] });
    await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "unrelated" }] });
    const sub = await call(client, "get_progress", { rootId: goal.ids[0] });
    expect(sub.counts).toEqual({ planner: { pending: 1 }, worker: { pending: 1 }, reviewer: { pending: 1 } });
    expect(sub.total).toBe(3);
    expect(sub.done).toBe(false);
    expect((await call(client, "get_progress")).total).toBe(4);
    const missing = await callFailing(client, "get_progress", { rootId: 999 });
    expect(missing.error).toMatchObject({ code: "TASK_NOT_FOUND", field: "rootId" });
  });

  it("claim_task returns the task with its dependencies' results and a lease token from the persona's leaseMs", async () => {
    const agentId = await register();
    const { refs } = await call(client, "create_tasks", {
      tasks: [
        { ref: "a", persona: "worker", title: "A" },
        { ref: "b", persona: "worker", title: "B", dependsOn: ["a"] },
      ],
    });
    const first = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(first.task.id).toBe(refs.a);
    expect(first.task.leaseMs).toBe(TEST_LEASE_MS);
    expect(first.task.heartbeatEveryMs).toBe(TEST_LEASE_MS / 3);
    expect(typeof first.leaseToken).toBe("string");
    expect((await call(client, "get_task", { taskId: refs.a })).task.status).toBe("in_progress");
    await call(client, "complete_task", { taskId: refs.a, leaseToken: first.leaseToken, result: { files: ["a.ts"] } });
    const second = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(second.task.id).toBe(refs.b);
    expect(second.task.dependencies).toEqual([{ id: refs.a, title: "A", persona: "worker", status: "completed", result: { files: ["a.ts"] } }]);
  });

  it("claim_task answers task null when nothing is ready", async () => {
    const agentId = await register();
    expect(await call(client, "claim_task", { agentId, persona: "worker" })).toEqual({ task: null });
  });

  it("claim_task waits up to waitMs and wakes when a task is enqueued", async () => {
    const agentId = await register();
    const waiting = call(client, "claim_task", { agentId, persona: "worker", waitMs: 20_000 });
    await new Promise((r) => setImmediate(r));
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "late" }] });
    const claimed = await waiting;
    expect(claimed.task.id).toBe(ids[0]);
  });

  it("heartbeat renews the agent's leases and reports the ones it lost", async () => {
    const agentId = await register();
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "x" }, { persona: "worker", title: "y" }] });
    const x = await call(client, "claim_task", { agentId, persona: "worker" });
    db.clock.advance(TEST_LEASE_MS - 1);
    expect(await call(client, "heartbeat", { agentId })).toEqual({ renewed: [ids[0]], lost: [] });
    db.clock.advance(TEST_LEASE_MS + 1);
    const reaped = await db.store.maintenance.reapExpired({ now: db.clock.now() });
    expect(reaped.retried.map((r) => r.taskId)).toEqual([ids[0]]);
    const y = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(y.task.id).not.toBe(x.task.id);
    const beat = await call(client, "heartbeat", { agentId });
    expect(beat.lost).toEqual([x.task.id]);
    expect(beat.renewed).toContain(y.task.id);
    const late = await callFailing(client, "complete_task", { taskId: x.task.id, leaseToken: x.leaseToken, result: "late" });
    expect(late.error).toMatchObject({ code: "LEASE_LOST", field: "leaseToken" });
  });

  it("a write with another of the agent's own tokens is LEASE_LOST 'unknown', not 'taken': the task stays the agent's", async () => {
    // 'taken' tells an agent another one holds the task and to drop it; said to the holder
    // itself (a typo, a token of its other task), it dropped a task it still held and kept
    // heartbeating it until its session ended, when the lease counted as lost.
    const agentId = await register();
    await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "one" }, { persona: "worker", title: "two" }] });
    const one = await call(client, "claim_task", { agentId, persona: "worker" });
    const two = await call(client, "claim_task", { agentId, persona: "worker" });
    const wrong = await callFailing(client, "complete_task", { taskId: one.task.id, leaseToken: two.leaseToken, result: "mixed up" });
    expect(wrong.error).toMatchObject({ code: "LEASE_LOST", field: "leaseToken", details: { reason: "unknown", status: "in_progress" } });
    expect((await call(client, "get_task", { taskId: one.task.id })).task).toMatchObject({ status: "in_progress", assignedAgentId: agentId });
    expect(await call(client, "complete_task", { taskId: one.task.id, leaseToken: one.leaseToken, result: "right" })).toMatchObject({ taskId: one.task.id });
    expect((await call(client, "get_task", { taskId: one.task.id })).task.status).toBe("completed");
  });

  it("report_progress records the fraction and message on the held task", async () => {
    const agentId = await register();
    await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "p" }] });
    const { task, leaseToken } = await call(client, "claim_task", { agentId, persona: "worker" });
    await call(client, "report_progress", { taskId: task.id, leaseToken, fraction: 0.4, message: "halfway-ish" });
    const detail = (await call(client, "get_task", { taskId: task.id })).task;
    expect(detail.progress).toBe(0.4);
    expect(detail.progressMessage).toBe("halfway-ish");
  });

  it("complete_task with child tasks enqueues them as children in the same step", async () => {
    const agentId = await register();
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "planner", title: "plan" }] });
    const { leaseToken } = await call(client, "claim_task", { agentId, persona: "planner" });
    const done = await call(client, "complete_task", {
      taskId: ids[0],
      leaseToken,
      result: "planned",
      tasks: [
        { ref: "impl", persona: "worker", title: "impl" },
        { persona: "reviewer", title: "review", dependsOn: ["impl"] },
      ],
    });
    expect(done.childIds).toHaveLength(2);
    const children = (await call(client, "get_task", { taskId: ids[0] })).task.children;
    expect(children.map((c: { id: number }) => c.id)).toEqual(done.childIds);
  });

  it("fail_task retries while attempts remain and fails for good when not retryable", async () => {
    const agentId = await register();
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "f" }] });
    const first = await call(client, "claim_task", { agentId, persona: "worker" });
    const retrying = await call(client, "fail_task", { taskId: ids[0], leaseToken: first.leaseToken, error: "flaky network" });
    expect(retrying.status).toBe("pending");
    db.clock.set(retrying.runAt);
    const second = await call(client, "claim_task", { agentId, persona: "worker" });
    expect(second.task.attempt).toBe(2);
    const failed = await call(client, "fail_task", { taskId: ids[0], leaseToken: second.leaseToken, error: "cannot be done", retryable: false });
    expect(failed.status).toBe("failed");
    const detail = (await call(client, "get_task", { taskId: ids[0] })).task;
    expect(detail.error.message).toBe("cannot be done");
  });

  it("release_task returns the task to pending without counting the attempt", async () => {
    const agentId = await register();
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "r" }] });
    const { leaseToken } = await call(client, "claim_task", { agentId, persona: "worker" });
    await call(client, "release_task", { taskId: ids[0], leaseToken, reason: "shutting down" });
    const detail = (await call(client, "get_task", { taskId: ids[0] })).task;
    expect(detail.status).toBe("pending");
    expect(detail.attempts).toBe(0);
  });

  it("cancel_task blocks dependents and retry_task brings them back", async () => {
    const { refs } = await call(client, "create_tasks", {
      tasks: [
        { ref: "a", persona: "worker", title: "a" },
        { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
      ],
    });
    const cancelled = await call(client, "cancel_task", { taskId: refs.a, reason: "not needed" });
    expect(cancelled).toMatchObject({ cancelled: [refs.a], blocked: [refs.b] });
    const retried = await call(client, "retry_task", { taskId: refs.a });
    expect(retried).toMatchObject({ status: "pending", unblocked: [refs.b] });
    const again = await callFailing(client, "retry_task", { taskId: refs.a });
    expect(again.error?.code).toBe("INVALID_STATE");
  });

  it("claim_task keeps a waiting agent alive: an agent marked expired comes back when it claims", async () => {
    const { agentId } = await call(client, "register_agent", { name: "idle", heartbeatTimeoutMs: 1_000 });
    db.clock.advance(2_000);
    expect((await db.store.maintenance.reapExpired({ now: db.clock.now() })).expiredAgents).toEqual([agentId]);
    await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "w" }] });
    expect((await call(client, "claim_task", { agentId, persona: "worker" })).task).not.toBeNull();
    expect((await db.store.agents.get({ agentId }))?.status).toBe("active");
  });

  it("claim_task refuses an agent that never registered", async () => {
    const out = await callFailing(client, "claim_task", { agentId: "ghost", persona: "worker" });
    expect(out.error).toMatchObject({ code: "AGENT_NOT_FOUND", field: "agentId" });
  });

  it("serves each persona's definition as the prompt persona:<id> and the resource roster://personas/<id>", async () => {
    const prompts = await client.listPrompts();
    expect(prompts.prompts.map((p) => p.name).sort()).toEqual(["persona:planner", "persona:reviewer", "persona:worker"]);
    const prompt = await client.getPrompt({ name: "persona:reviewer" });
    expect(JSON.stringify(prompt.messages)).toContain("Reviews the work.");
    const resources = await client.listResources();
    expect(resources.resources.map((r) => r.uri)).toContain("roster://personas/worker");
    const read = await client.readResource({ uri: "roster://personas/worker" });
    expect((read.contents[0] as { text: string }).text).toContain("Does the work.");
    const listed = await call(client, "list_personas");
    expect(listed.personas.find((p: { id: string }) => p.id === "reviewer")).toMatchObject({ leaseMs: 10_000, heartbeatEveryMs: 3_333 });
  });
});
