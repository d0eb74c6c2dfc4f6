import { writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { roster, rosterOk } from "../cli/helpers.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * `roster start --exit-when-idle` (the real CLI) against pending tasks that only a person can
 * release (src/supervisor/held-by-hand.ts): it exits, naming what holds them and the command that
 * lifts it, as it does for parked tasks; a task that becomes runnable by itself keeps it running.
 */
describe("--exit-when-idle with tasks held by a spent budget", () => {
  let temp: TempDir;
  let db: string;

  beforeEach(async () => {
    temp = makeTempDir("roster-idle-held-");
    db = temp.path("roster.db");
    await rosterOk(["init", "--db", db], { cwd: temp.dir });
  });

  afterEach(() => temp.cleanup());

  async function enqueueHeld(): Promise<{ held: number; goal: number; child: number; delayed: number }> {
    const store = await openStore({ path: db });
    try {
      const now = Date.now();
      const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "held by its budget" }], now });
      const { refs } = await store.tasks.enqueue({
        tasks: [
          { ref: "goal", persona: "reviewer", title: "a goal held by its budget" },
          { ref: "child", persona: "implementer", title: "after the goal's first task", dependsOn: ["goal"] },
        ],
        now,
      });
      // Runnable by itself in 2 s: the supervisor must wait for it, then run it.
      const delayed = (await store.tasks.enqueue({ tasks: [{ persona: "implementer", title: "delayed", delayMs: 2_000 }], now })).ids[0]!;
      const held = ids[0]!;
      await store.economics.setBudget({ scope: "task", key: String(held), maxTokens: 0, now });
      await store.economics.setBudget({ scope: "goal", key: String(refs.goal), maxCostUsd: 0, now });
      return { held, goal: refs.goal!, child: refs.child!, delayed };
    } finally {
      await store.close();
    }
  }

  it("runs what becomes runnable by itself, then exits 0 naming each held task and the command that lifts it", async () => {
    const ids = await enqueueHeld();
    const res = await roster(["start", "--db", db, "--exit-when-idle", "--no-metrics", "--threads", "1"], { cwd: temp.dir, timeoutMs: 120_000 });
    expect(res.code, res.stderr.slice(-2_000)).toBe(0);
    const line = res.stderr.split("\n").find((l) => l.includes("exit when idle"));
    expect(line).toBeDefined();
    const logged = JSON.parse(line!) as { held: number; parked: number; lifts: string[] };
    expect(logged).toMatchObject({ held: 2, parked: 0 });
    expect(logged.lifts).toEqual(
      expect.arrayContaining([`goal ${ids.goal}'s budget is spent (1 task): roster budget raise --goal ${ids.goal} --usd N`, `task ${ids.held}'s budget is spent: roster budget raise --task ${ids.held} --tokens N`]),
    );
    const store = await openStore({ path: db, readonly: true });
    try {
      const state = async (id: number) => (await store.tasks.get({ taskId: id, eventLimit: 0 })).status;
      expect(await state(ids.delayed)).toBe("completed");
      expect([await state(ids.held), await state(ids.goal), await state(ids.child)]).toEqual(["pending", "pending", "waiting"]);
    } finally {
      await store.close();
    }
  }, 150_000);

  it("once the budget is raised, runs the task and exits idle with nothing held", async () => {
    const ids = await enqueueHeld();
    await rosterOk(["budget", "raise", "--db", db, "--task", String(ids.held), "--tokens", "1000"], { cwd: temp.dir });
    await rosterOk(["budget", "rm", "--db", db, "--goal", String(ids.goal)], { cwd: temp.dir });
    const res = await roster(["start", "--db", db, "--exit-when-idle", "--no-metrics", "--threads", "1"], { cwd: temp.dir, timeoutMs: 120_000 });
    expect(res.code, res.stderr.slice(-2_000)).toBe(0);
    expect(res.stderr).not.toContain("exit when idle");
    const store = await openStore({ path: db, readonly: true });
    try {
      for (const id of Object.values(ids)) expect((await store.tasks.get({ taskId: id, eventLimit: 0 })).status).toBe("completed");
    } finally {
      await store.close();
    }
  }, 150_000);

  it("exits naming a provider paused until resumed (providerAutoResume: false), and runs the task once it is resumed", async () => {
    writeFileSync(temp.path("personas", "limited.md"), "---\nid: limited\nname: Limited\nadapter: { kind: echo }\nproviderAutoResume: false\n---\nHits a rate limit.\n");
    await rosterOk(["init", "--db", db], { cwd: temp.dir });
    const store = await openStore({ path: db });
    let id: number;
    try {
      const now = Date.now();
      id = (await store.tasks.enqueue({ tasks: [{ persona: "limited", title: "rate limited" }], now })).ids[0]!;
      const [task] = await store.tasks.claim({ persona: "limited", agentId: "test-agent", now });
      const failed = await store.tasks.failIfLeased({ taskId: id, leaseToken: task!.leaseToken, error: { name: "Error", message: "429", retryable: true, details: { failure: "rate-limit" } }, now });
      // A rate limit gives the attempt back uncounted; the task is pending again, behind the pause.
      expect(failed).toMatchObject({ ok: true, outcome: "released" });
      expect((await store.economics.pauses({ now }))[0]).toMatchObject({ provider: "persona:limited", until: null });
    } finally {
      await store.close();
    }
    const res = await roster(["start", "--db", db, "--exit-when-idle", "--no-metrics", "--threads", "1"], { cwd: temp.dir, timeoutMs: 120_000 });
    expect(res.code, res.stderr.slice(-2_000)).toBe(0);
    const line = res.stderr.split("\n").find((l) => l.includes("exit when idle"));
    expect((JSON.parse(line!) as { lifts: string[] }).lifts).toEqual(['provider "persona:limited" is paused (rate-limit) until resumed: roster provider resume persona:limited']);
    await rosterOk(["provider", "resume", "persona:limited", "--db", db], { cwd: temp.dir });
    expect((await roster(["start", "--db", db, "--exit-when-idle", "--no-metrics", "--threads", "1"], { cwd: temp.dir, timeoutMs: 120_000 })).code).toBe(0);
    const after = await openStore({ path: db, readonly: true });
    try {
      expect((await after.tasks.get({ taskId: id, eventLimit: 0 })).status).toBe("completed");
    } finally {
      await after.close();
    }
  }, 150_000);
});
