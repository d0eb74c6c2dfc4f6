import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import type { TestStore } from "../helpers/store.js";
import { call, callFailing, openMcpInProcess } from "./helpers.js";

/**
 * Bad tool input (DESIGN rule 11): an isError result that names the field, and
 * nothing written (every table's row count unchanged).
 */
describe("roster MCP tools given bad input", () => {
  let db: TestStore;
  let client: Client;
  let close: () => Promise<void>;

  beforeEach(async () => {
    ({ db, client, close } = await openMcpInProcess());
  });
  afterEach(() => close());

  /** Runs `body`, then checks no table gained or lost a row. */
  async function writesNothing(body: () => Promise<void>): Promise<void> {
    const before = await db.rowCounts();
    await body();
    expect(await db.rowCounts()).toEqual(before);
  }

  it("rejects wrong argument types with an isError result naming the field", async () => {
    await writesNothing(async () => {
      const out = await callFailing(client, "create_tasks", { tasks: [{ persona: "worker", title: 42 }] });
      expect(out.text).toMatch(/tasks\[0\]\.title/);
      const claim = await callFailing(client, "claim_task", { agentId: 7, persona: "worker" });
      expect(claim.text).toMatch(/agentId/);
      const waitTooLong = await callFailing(client, "claim_task", { agentId: "a", persona: "worker", waitMs: 10 ** 9 });
      expect(waitTooLong.text).toMatch(/waitMs/);
    });
  });

  it("answers a malformed tools/call (no tool name, a name that is not a string, arguments that are not an object) in the one error shape", async () => {
    await writesNothing(async () => {
      const raw = (params: Record<string, unknown>) => client.request({ method: "tools/call", params } as never, CallToolResultSchema);
      const missing = await raw({ arguments: {} });
      expect(missing.isError).toBe(true);
      expect(missing.structuredContent).toMatchObject({ error: { code: "VALIDATION", field: "name", message: expect.stringMatching(/^name: required: the tool to call \(tools: .*claim_task/) } });
      expect(JSON.parse((missing.content[0] as { text: string }).text)).toEqual(missing.structuredContent);
      expect((await raw({ name: 7 })).structuredContent).toMatchObject({ error: { code: "VALIDATION", field: "name", message: expect.stringMatching(/^name: must be a non-empty string/) } });
      expect((await raw({ name: "create_tasks", arguments: [1] })).structuredContent).toMatchObject({ error: { code: "VALIDATION" } });
      expect((await raw({ name: "create_tasks", arguments: "tasks" })).structuredContent).toMatchObject({ error: { code: "VALIDATION" } });
    });
  });

  it("rejects an unknown persona in create_tasks with PERSONA_NOT_FOUND and writes none of the batch", async () => {
    await writesNothing(async () => {
      const out = await callFailing(client, "create_tasks", {
        tasks: [
          { ref: "ok", persona: "worker", title: "fine" },
          { ref: "bad", persona: "nobody", title: "wrong persona" },
        ],
      });
      expect(out.error).toMatchObject({ code: "PERSONA_NOT_FOUND", field: "persona" });
      expect(out.error?.message).toContain("tasks[1]");
    });
  });

  it("rejects an unknown persona in claim_task with PERSONA_NOT_FOUND", async () => {
    const { agentId } = await call(client, "register_agent", { name: "w" });
    await writesNothing(async () => {
      const out = await callFailing(client, "claim_task", { agentId, persona: "nobody" });
      expect(out.error).toMatchObject({ code: "PERSONA_NOT_FOUND", field: "persona" });
    });
  });

  it("rejects a dependency cycle inside a batch with DEPENDENCY_CYCLE and writes nothing", async () => {
    await writesNothing(async () => {
      const out = await callFailing(client, "create_tasks", {
        tasks: [
          { ref: "a", persona: "worker", title: "a", dependsOn: ["c"] },
          { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
          { ref: "c", persona: "worker", title: "c", dependsOn: ["b"] },
        ],
      });
      expect(out.error).toMatchObject({ code: "DEPENDENCY_CYCLE", field: "dependsOn" });
      expect(out.error?.details?.cycle).toHaveLength(4);
    });
  });

  it("rejects add_dependency that would close a cycle with DEPENDENCY_CYCLE and writes nothing", async () => {
    const { refs } = await call(client, "create_tasks", {
      tasks: [
        { ref: "a", persona: "worker", title: "a" },
        { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
      ],
    });
    await writesNothing(async () => {
      const out = await callFailing(client, "add_dependency", { taskId: refs.a, dependsOn: refs.b });
      expect(out.error).toMatchObject({ code: "DEPENDENCY_CYCLE", field: "dependsOn" });
    });
  });

  it("rejects a fenced call without a lease token, naming leaseToken, and leaves the task held", async () => {
    const { agentId } = await call(client, "register_agent", { name: "w" });
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "held" }] });
    await call(client, "claim_task", { agentId, persona: "worker" });
    await writesNothing(async () => {
      const out = await callFailing(client, "complete_task", { taskId: ids[0], result: "done" });
      expect(out.text).toMatch(/leaseToken/);
    });
    expect((await call(client, "get_task", { taskId: ids[0] })).task.status).toBe("in_progress");
  });

  it("answers an unknown task id with TASK_NOT_FOUND naming taskId", async () => {
    await writesNothing(async () => {
      for (const name of ["get_task", "cancel_task", "retry_task"]) {
        const out = await callFailing(client, name, { taskId: 4242 });
        expect(out.error).toMatchObject({ code: "TASK_NOT_FOUND", field: "taskId" });
      }
    });
  });

  it("rejects a result that is not JSON-serialisable in size and leaves the task held", async () => {
    const { agentId } = await call(client, "register_agent", { name: "w" });
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "worker", title: "big" }] });
    const { leaseToken } = await call(client, "claim_task", { agentId, persona: "worker" });
    const out = await callFailing(client, "complete_task", { taskId: ids[0], leaseToken, result: "x".repeat(1024 * 1024 + 10) });
    expect(out.error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", field: "result" });
    expect((await call(client, "get_task", { taskId: ids[0] })).task.status).toBe("in_progress");
  });

  it("rejects bad child tasks in complete_task, naming the child and field, and completes nothing", async () => {
    const { agentId } = await call(client, "register_agent", { name: "w" });
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "planner", title: "plan" }] });
    const { leaseToken } = await call(client, "claim_task", { agentId, persona: "planner" });
    await writesNothing(async () => {
      const out = await callFailing(client, "complete_task", {
        taskId: ids[0],
        leaseToken,
        tasks: [{ persona: "worker", title: "ok" }, { persona: "worker", title: "bad", priority: "high" }],
      });
      expect(out.error?.code).toBe("VALIDATION");
      expect(out.error?.message).toContain("tasks[1].priority");
    });
    expect((await call(client, "get_task", { taskId: ids[0] })).task.status).toBe("in_progress");
  });
});
