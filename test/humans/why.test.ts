import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatWhy } from "../../src/cli/commands/why.js";
import type { WhyReport } from "../../src/store/index.js";
import { WHY_HOLDERS_MAX } from "../../src/store/why.js";
import { TEST_PERSONAS, syncTestPersonas } from "../helpers/personas.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { HUMAN_PERSONAS } from "../store/conformance/humans.js";

/** `roster why` on a fixture with a task in each situation: the codes (JSON) and the words (text). */
describe("roster why", () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
    await syncTestPersonas(t.store, t.clock.now(), [...TEST_PERSONAS, ...HUMAN_PERSONAS]);
  });
  afterEach(async () => t.close());

  const why = (taskId: number): Promise<WhyReport> => t.store.why.explain({ taskId, now: t.clock.now() });
  const codes = async (taskId: number): Promise<string[]> => (await why(taskId)).reasons.map((r) => r.code);
  const enqueue = async (tasks: Parameters<TestStore["store"]["tasks"]["enqueue"]>[0]["tasks"]) =>
    (await t.store.tasks.enqueue({ tasks, now: t.clock.now() })).ids;

  it("names unmet dependencies with their states, and a missing supervisor", async () => {
    const [a, b] = await enqueue([{ ref: "a", persona: "worker", title: "a" }, { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] }]);
    const report = await why(b!);
    expect(report.reasons.map((r) => r.code)).toEqual(["dependencies_unmet", "no_supervisor"]);
    expect(report.reasons[0]!.data).toEqual({ dependencies: [{ id: a, title: "a", status: "pending" }] });
    expect(formatWhy(report)).toContain(`dependencies_unmet: 1 dependency is not completed: ${a} (pending)`);
  });

  it("says an external persona's task waits for an MCP agent, not for a supervisor that would never run it", async () => {
    const worker = TEST_PERSONAS.find((p) => p.id === "worker")!;
    await t.store.personas.sync({ personas: [...TEST_PERSONAS, { ...worker, id: "outside", name: "Outside", config: { ...worker.config, id: "outside", external: true } }], now: t.clock.now() });
    const [task] = await enqueue([{ persona: "outside", title: "for an agent" }]);
    const report = await why(task!);
    expect(report.reasons.map((r) => r.code)).toEqual(["external_persona"]);
    expect(formatWhy(report)).toContain('its persona "outside" is external: only MCP agents claim its tasks');
  });

  it("says a run_at in the future is backoff after attempt N, with the error, or a delay", async () => {
    await t.store.agents.register({ id: "sup", name: "s", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: t.clock.now() });
    const [retried, delayed] = await enqueue([{ persona: "worker", title: "flaky" }, { persona: "reviewer", title: "later", delayMs: 60_000 }]);
    const [claimed] = await t.store.tasks.claim({ persona: "worker", agentId: "sup", now: t.clock.now() });
    await t.store.tasks.failIfLeased({ taskId: retried!, leaseToken: claimed!.leaseToken, error: { code: "ADAPTER_FAILED", message: "boom" }, now: t.clock.now(), random: () => 0.5 });
    const backoff = await why(retried!);
    expect(backoff.reasons.map((r) => r.code)).toEqual(["scheduled_later"]);
    expect(backoff.reasons[0]!.data).toMatchObject({ cause: "backoff", attempt: 1 });
    expect(formatWhy(backoff)).toMatch(/backoff after attempt 1 failed \(ADAPTER_FAILED: boom\)/);
    const delay = await why(delayed!);
    expect(delay.reasons[0]).toMatchObject({ code: "scheduled_later", data: { cause: "delay", runAt: t.clock.now() + 60_000 } });
  });

  it("names the tasks holding a persona's slots when every supervisor is at its limit, and says ready otherwise", async () => {
    await t.store.agents.register({ id: "sup", name: "s", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: t.clock.now() });
    const ids = await enqueue([1, 2, 3].map((i) => ({ persona: "reviewer", title: `r${i}` })));
    expect(await codes(ids[0]!)).toEqual(["ready"]);
    const held = await t.store.tasks.claim({ persona: "reviewer", agentId: "sup", limit: 2, now: t.clock.now() });
    const report = await why(ids[2]!);
    expect(report.reasons.map((r) => r.code)).toEqual(["persona_at_limit"]);
    expect(report.reasons[0]!.data).toEqual({ concurrency: 2, held: 2, holders: held.map((h) => ({ taskId: h.id, agentId: "sup" })) });
    expect(await codes(held[0]!.id)).toEqual(["running"]);
  });

  it("counts every holder of a persona whose concurrency is above the holders it lists", async () => {
    const wide = { ...TEST_PERSONAS[0]!, id: "wide", name: "Wide", config: { ...TEST_PERSONAS[0]!.config, id: "wide", name: "Wide", concurrency: WHY_HOLDERS_MAX + 20 } };
    await syncTestPersonas(t.store, t.clock.now(), [...TEST_PERSONAS, ...HUMAN_PERSONAS, wide]);
    await t.store.agents.register({ id: "sup", name: "s", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: t.clock.now() });
    const ids = await enqueue(Array.from({ length: WHY_HOLDERS_MAX + 21 }, (_, i) => ({ persona: "wide", title: `w${i}` })));
    const waiting = ids.at(-1)!;
    await t.store.tasks.claim({ persona: "wide", agentId: "sup", limit: WHY_HOLDERS_MAX + 19, now: t.clock.now() });
    expect(await codes(waiting)).toEqual(["ready"]);
    await t.store.tasks.claim({ persona: "wide", agentId: "sup", limit: 1, now: t.clock.now() });
    const report = await why(waiting);
    // Before: only the first WHY_HOLDERS_MAX holders were counted, so this said "ready".
    expect(report.reasons.map((r) => r.code)).toEqual(["persona_at_limit"]);
    expect(report.reasons[0]!.data).toMatchObject({ concurrency: WHY_HOLDERS_MAX + 20, held: WHY_HOLDERS_MAX + 20 });
    expect((report.reasons[0]!.data as { holders: unknown[] }).holders).toHaveLength(WHY_HOLDERS_MAX);
    expect(formatWhy(report)).toContain("and 20 more");
  });

  it("names approvals and questions waiting for a person, the failed task that blocks, who cancelled, and a retired persona", async () => {
    const [gate, blocked] = await enqueue([{ ref: "g", persona: "approver-default", title: "ok?" }, { ref: "x", persona: "worker", title: "x", dependsOn: ["g"] }]);
    expect(await codes(gate!)).toEqual(["awaiting_approval"]);
    expect(formatWhy(await why(gate!))).toMatch(/approved by default/);
    await t.store.humans.reject({ taskId: gate!, reason: "no", by: "cli", now: t.clock.now() });
    const blockedReport = await why(blocked!);
    expect(blockedReport.reasons.map((r) => r.code)).toEqual(["blocked_by", "dependencies_unmet"]);
    expect(blockedReport.reasons[0]!.data).toEqual({ tasks: [{ id: gate, title: "ok?", status: "failed" }] });

    const [asker, doomed] = await enqueue([{ persona: "worker", title: "asks" }, { persona: "reviewer", title: "doomed" }]);
    const [claimed] = await t.store.tasks.claim({ persona: "worker", agentId: "a", now: t.clock.now() });
    await t.store.humans.askIfLeased({ taskId: asker!, leaseToken: claimed!.leaseToken, question: "which branch?", now: t.clock.now() });
    const asked = await why(asker!);
    expect(asked.reasons[0]).toMatchObject({ code: "awaiting_input", data: { question: "which branch?", attempt: 1 } });

    await t.store.tasks.cancel({ taskId: doomed!, reason: "not needed", by: "cli:ann", now: t.clock.now() });
    expect((await why(doomed!)).reasons[0]).toMatchObject({ code: "cancelled", data: { by: "cli:ann", reason: "not needed" } });

    const [idle] = await enqueue([{ persona: "planner", title: "p" }]);
    await t.store.personas.retire({ id: "planner", retired: true, now: t.clock.now() });
    expect(await codes(idle!)).toEqual(["persona_retired", "no_supervisor"]);
    expect(JSON.parse(JSON.stringify(await why(idle!)))).toMatchObject({ taskId: idle, status: "pending", reasons: [{ code: "persona_retired" }, { code: "no_supervisor" }] });
  });

  it("refuses an unknown task with TASK_NOT_FOUND", async () => {
    await expect(why(12345)).rejects.toMatchObject({ code: "TASK_NOT_FOUND" });
  });
});
