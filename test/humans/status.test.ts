import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { rosterJson, rosterOk } from "../cli/helpers.js";
import { TEST_PERSONAS, syncTestPersonas } from "../helpers/personas.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { HUMAN_PERSONAS } from "../store/conformance/humans.js";

/** `roster status` (the real CLI) lists the tasks parked for a person, with what moves each. */
describe("roster status and tasks that need a person", () => {
  let temp: TempDir;
  let db: string;
  let ids: { gate: number; asked: number; plain: number };

  beforeEach(async () => {
    temp = makeTempDir("roster-status-humans-");
    db = temp.path("roster.db");
    const store: Store = await openStore({ path: db });
    try {
      const now = Date.now();
      await syncTestPersonas(store, now, [...TEST_PERSONAS, ...HUMAN_PERSONAS]);
      const { refs } = await store.tasks.enqueue({
        tasks: [
          { ref: "gate", persona: "approver-default", title: "approve the release", description: "v2.3\nall green" },
          { ref: "asked", persona: "worker", title: "pick a branch" },
          { ref: "plain", persona: "reviewer", title: "just waiting", dependsOn: ["gate"] },
        ],
        now,
      });
      const [claim] = await store.tasks.claim({ persona: "worker", agentId: "w1", limit: 1, now });
      expect(await store.humans.askIfLeased({ taskId: claim!.id, leaseToken: claim!.leaseToken, question: "Which branch?\nmain or release?", now })).toEqual({ ok: true });
      ids = { gate: refs.gate!, asked: refs.asked!, plain: refs.plain! };
    } finally {
      await store.close();
    }
  });

  afterEach(() => temp.cleanup());

  it("prints each parked task with its question or approval, its deadline default, and the command that moves it", async () => {
    const out = await rosterOk(["status", "--db", db]);
    expect(out).toContain("needs a person (2):");
    expect(out).toMatch(new RegExp(`#${ids.gate} approver-default awaits approval: approve the release, approved by default at .+  \\(roster approve ${ids.gate} / roster reject ${ids.gate} --reason …\\)`));
    expect(out).toContain(`#${ids.asked} worker asks: Which branch? main or release?  (roster answer ${ids.asked} "…")`);
    expect(out).not.toContain(`#${ids.plain} `);
    // Each persona's line counts its parked tasks too, as the heading above does.
    expect(out).toMatch(/^approver-default +\[[^\]]*\] 0\/1 done  0 completed, 1 awaiting approval$/m);
    expect(out).toMatch(/^worker +\[[^\]]*\] 0\/1 done  0 completed, 1 awaiting an answer$/m);
  });

  it("roster retry of a rejected approval says, and records, that it awaits approval again", async () => {
    await rosterOk(["reject", String(ids.gate), "--reason", "not yet", "--db", db]);
    expect((await rosterOk(["retry", String(ids.gate), "--db", db])).trim()).toBe(`task ${ids.gate}: awaiting_approval; waiting again: ${ids.plain}`);
    const json = await rosterJson<{ status: string }>(["show", String(ids.gate), "--json", "--db", db]);
    expect(json.status).toBe("awaiting_approval");
    const events = await rosterJson<Array<{ type: string; data: Record<string, unknown> }>>(["events", String(ids.gate), "--json", "--db", db]);
    expect(events.find((e) => e.type === "task:retried")?.data).toMatchObject({ from: "failed", status: "awaiting_approval" });
  });

  it("--json lists them under parked, with parkedTotal", async () => {
    const json = await rosterJson<{ parked: Array<Record<string, unknown>>; parkedTotal: number; counts: Record<string, Record<string, number>> }>(["status", "--json", "--db", db]);
    expect(json.parkedTotal).toBe(2);
    expect(json.parked).toEqual([
      expect.objectContaining({ id: ids.gate, persona: "approver-default", status: "awaiting_approval", default: "approve", deadlineAt: expect.any(Number) }),
      expect.objectContaining({ id: ids.asked, persona: "worker", status: "awaiting_input", question: "Which branch?\nmain or release?", default: null, deadlineAt: null }),
    ]);
    expect(json.counts["approver-default"]).toEqual({ awaiting_approval: 1 });
    expect(json.counts.worker).toEqual({ awaiting_input: 1 });
  });

  it("says nothing about people when no task waits for one", async () => {
    const store = await openStore({ path: db });
    try {
      await store.humans.approve({ taskId: ids.gate, now: Date.now() });
      await store.humans.answer({ taskId: ids.asked, answer: "main", now: Date.now() });
    } finally {
      await store.close();
    }
    expect(await rosterOk(["status", "--db", db])).not.toContain("needs a person");
    expect(await rosterJson(["status", "--json", "--db", db])).toMatchObject({ parked: [], parkedTotal: 0 });
  });
});
