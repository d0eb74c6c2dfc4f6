import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adapterTask } from "../../src/adapters/task-view.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

/**
 * The store hands a claim the last failed attempt's stored error (ClaimedTask.previous),
 * so an agent CLI can resume that attempt's session (src/adapters/agent/resume.ts).
 */
let h: TestStore;
beforeEach(async () => {
  h = await openTestStore();
});
afterEach(async () => h.close());

describe("the previous attempt on a claim", () => {
  it("is absent on a first claim and carries the failed attempt's code, message and details (its session id) on the next, through to the worker's task", async () => {
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "resumable" }], now: h.clock.now() });
    const [first] = await h.store.tasks.claim({ persona: "worker", agentId: "a", limit: 1, now: h.clock.now() });
    expect(first!.previous).toBeUndefined();
    expect(adapterTask(first!).previous).toBeUndefined();
    const error = { name: "RosterError", code: "ADAPTER_FAILED", message: "claude exited with code 1 (server error; will retry): API Error: 500", retryable: true, details: { failure: "server", sessionId: "41f4e89f-f75c-4ad1-b308-717dab80cfcb", home: "/tmp/roster-home-x" } };
    const failed = await h.store.tasks.failIfLeased({ taskId: ids[0]!, leaseToken: first!.leaseToken, error, now: h.clock.now(), random: () => 0 });
    expect(failed).toMatchObject({ ok: true, outcome: "retrying" });
    h.clock.advance(120_000);
    const [second] = await h.store.tasks.claim({ persona: "worker", agentId: "a", limit: 1, now: h.clock.now() });
    expect(second!.attempt).toBe(2);
    const previous = { code: "ADAPTER_FAILED", message: error.message, retryable: true, details: error.details };
    expect(second!.previous).toEqual(previous);
    expect(adapterTask(second!).previous).toEqual(previous);
  });
});
