import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adapterTask } from "../../src/adapters/task-view.js";
import { openStore, type Store } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { CLAIM_CONTEXT_CHARS } from "../../src/mcp/claim-view.js";
import { RESULT_CUT_CHARS_DEFAULT } from "../../src/mcp/context.js";
import { call, requireBuild, spawnMcpClient, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * claim_task gives an agent the task view adapters get (src/adapters/task-view.ts), `previous`
 * included: how the last failed attempt ended. It used to be dropped, so an agent retrying a
 * task never learnt why the last attempt failed. Over stdio, against the built `roster mcp`.
 */
describe("roster mcp over stdio: a retried task's claim says how the last attempt ended", () => {
  let temp: TempDir;
  let store: Store;
  let mcp: SpawnedClient | null = null;

  beforeEach(async () => {
    requireBuild();
    temp = makeTempDir("roster-mcp-previous-");
    // Retries at once (backoff 0), so a failed task is claimable again straight away.
    writePersona(temp.path("personas"), { id: "coder" });
    store = await openStore({ path: temp.path("roster.db") });
    await syncPersonaFolder(store, temp.path("personas"));
    mcp = await spawnMcpClient({ db: temp.path("roster.db"), profile: "all" });
  });

  afterEach(async () => {
    await mcp?.close();
    mcp = null;
    await store.close();
    temp.cleanup();
  });

  it("carries the error an agent gave in fail_task into the next claim, and none into the first", async () => {
    const client = mcp!.client;
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "coder", title: "fix the build" }] });
    const first = await call(client, "claim_task", { persona: "coder" });
    expect(first.task.id).toBe(ids[0]);
    expect(first.task).not.toHaveProperty("previous");
    const failed = await call(client, "fail_task", { taskId: ids[0], leaseToken: first.leaseToken, error: "tests do not pass: 3 failures in parser.test.ts" });
    expect(failed).toMatchObject({ status: "pending", attempt: 1 });

    const second = await call(client, "claim_task", { persona: "coder" });
    expect(second.task).toMatchObject({ id: ids[0], attempt: 2 });
    expect(second.task.previous).toEqual({ code: "ADAPTER_FAILED", message: "tests do not pass: 3 failures in parser.test.ts", retryable: true });
    await call(client, "complete_task", { taskId: ids[0], leaseToken: second.leaseToken, result: "fixed" });
    expect(await store.tasks.get({ taskId: ids[0] as number, eventLimit: 0 })).toMatchObject({ status: "completed", attempts: 2 });
  });

  it("shows an agent the same previous attempt an adapter is given, details included", async () => {
    const client = mcp!.client;
    // Two twin tasks whose first attempts fail alike, as an agent CLI's attempt does (its session id in details).
    const { ids } = await store.tasks.enqueue({ tasks: [0, 1].map((i) => ({ persona: "coder", title: `twin ${i}` })), now: Date.now() });
    for (const taskId of ids) {
      const claimed = await store.tasks.claimById({ taskId, agentId: "supervisor-1", now: Date.now() });
      const error = { name: "RosterError", code: "AGENT_EXITED", message: "claude exited with code 1", retryable: true, stack: "at run", details: { sessionId: "s-42", exitCode: 1 } };
      expect(await store.tasks.failIfLeased({ taskId, leaseToken: claimed!.leaseToken, error, now: Date.now() })).toMatchObject({ ok: true, outcome: "retrying" });
    }
    const adapterView = adapterTask((await store.tasks.claimById({ taskId: ids[0]!, agentId: "supervisor-1", now: Date.now() }))!);
    const agentView = (await call(client, "claim_task", { persona: "coder" })).task;
    expect(agentView.id).toBe(ids[1]);
    expect(adapterView.previous).toEqual({ code: "AGENT_EXITED", message: "claude exited with code 1", retryable: true, details: { sessionId: "s-42", exitCode: 1 } });
    expect(agentView.previous).toEqual(adapterView.previous);
    expect(await store.tasks.get({ taskId: ids[1]!, eventLimit: 0 })).toMatchObject({ status: "in_progress", attempts: 2 });
  });

  it("bounds a long message and large details the way it bounds dependency results", async () => {
    const client = mcp!.client;
    const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "noisy failure" }], now: Date.now() });
    const claimed = await store.tasks.claimById({ taskId: ids[0]!, agentId: "supervisor-1", now: Date.now() });
    const message = "m".repeat(CLAIM_CONTEXT_CHARS + 500);
    const details = { log: "x".repeat(RESULT_CUT_CHARS_DEFAULT * 3) };
    await store.tasks.failIfLeased({ taskId: ids[0]!, leaseToken: claimed!.leaseToken, error: { code: "ADAPTER_FAILED", message, retryable: true, details }, now: Date.now() });
    const view = (await call(client, "claim_task", { persona: "coder" })).task;
    expect(view.previous).toEqual({
      code: "ADAPTER_FAILED",
      message: message.slice(0, CLAIM_CONTEXT_CHARS),
      messageChars: message.length,
      retryable: true,
      detailsPreview: JSON.stringify(details).slice(0, RESULT_CUT_CHARS_DEFAULT),
      detailsChars: JSON.stringify(details).length,
      truncated: true,
    });
    expect(await store.tasks.get({ taskId: ids[0]!, eventLimit: 0 })).toMatchObject({ status: "in_progress", attempts: 2 });
  });
});
