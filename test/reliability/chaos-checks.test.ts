import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkChaos, type ChaosSnapshot } from "../../bench/chaos/checks.js";
import { writeChaosPersonas } from "../../bench/chaos/plan.js";
import { derivedProblems } from "../../bench/chaos/run.js";
import { plan } from "../../src/adapters/planner.js";
import { openStore, type Json, type TaskEvent, type TaskRecord, type TaskState } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { makeTempDir } from "../helpers/tmp.js";

/**
 * The crash suite's checks (bench/chaos/checks.ts) on hand-made histories: each
 * rule of issue 7 must be able to fail, and a correct history must pass.
 */
let nextEventId = 1;

function task(id: number, persona: string, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    title: `task ${id}`,
    description: "",
    persona,
    payload: null,
    parentId: null,
    rootId: id,
    createdBy: "chaos",
    priority: 0,
    idempotencyKey: null,
    createdAt: 0,
    policy: { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 },
    timeoutMs: 30_000,
    status: "completed" as TaskState,
    unmetDependencies: 0,
    runAt: 0,
    attempts: 1,
    maxAttempts: 3,
    assignedAgentId: null,
    leaseExpiresAt: null,
    claimedAt: null,
    startedAt: null,
    finishedAt: null,
    progress: null,
    progressMessage: null,
    result: null,
    error: null,
    updatedAt: 0,
    dependsOn: [],
    ...fields,
  };
}

function ev(taskId: number, type: string, attempt: number | null, data: Json | null = null): TaskEvent {
  return { id: nextEventId++, taskId, type, at: 0, agentId: "a", attempt, data };
}

const claim = (id: number, attempt: number) => ev(id, "task:claimed", attempt);
const completed = (id: number, attempt: number, data: Json = { readied: 0 }) => ev(id, "task:completed", attempt, data);
const retrying = (id: number, attempt: number, code = "ADAPTER_FAILED") => ev(id, "task:retrying", attempt, { runAt: 0, error: { code, message: "x" } });
const failed = (id: number, attempt: number, code = "ADAPTER_FAILED", retryable = true) => ev(id, "task:failed", attempt, { error: { code, message: "x" }, retryable, blocked: 0 });
const expired = (id: number, attempt: number) => ev(id, "lease:expired", attempt, { leaseExpiresAt: 0 });

function check(tasks: TaskRecord[], history: TaskEvent[], extra: Partial<ChaosSnapshot> = {}) {
  const events = new Map<number, TaskEvent[]>();
  for (const t of tasks) events.set(t.id, []);
  for (const e of history) events.get(e.taskId!)!.push(e);
  return checkChaos({ tasks, events, integrity: "ok", shellLog: [], ...extra });
}

describe("the crash suite's checks", () => {
  it("pass a history where a lease expiry and a retry end in one completion", () => {
    const figures = check(
      [task(1, "echo", { attempts: 2 }), task(2, "flaky", { attempts: 3, payload: { failTimes: 1 }, result: { done: "task 2", attempt: 3 } })],
      [claim(1, 1), expired(1, 1), retrying(1, 1, "LEASE_EXPIRED"), claim(1, 2), completed(1, 2), claim(2, 1), retrying(2, 1), claim(2, 2), expired(2, 2), retrying(2, 2, "LEASE_EXPIRED"), claim(2, 3), completed(2, 3)],
    );
    expect(figures.violations).toEqual([]);
    expect(figures).toMatchObject({ duplicates: 0, lost: 0, claims: 5, leaseExpiries: 2 });
  });

  it("count a task with two task:completed events as a duplicate", () => {
    const figures = check([task(1, "echo", { attempts: 2 })], [claim(1, 1), completed(1, 1), claim(1, 2), completed(1, 2)]);
    expect(figures.duplicates).toBe(1);
    expect(figures.violations.join("\n")).toContain("2 task:completed events");
  });

  it("flag a claim while the previous claim of the task had no outcome", () => {
    const figures = check([task(1, "echo", { attempts: 2 })], [claim(1, 1), claim(1, 2), completed(1, 2)]);
    expect(figures.violations.join("\n")).toContain("while attempt 1");
  });

  it("flag an outcome that no claim opened", () => {
    const figures = check([task(1, "echo")], [claim(1, 1), completed(1, 1), completed(1, 1)]);
    expect(figures.violations.join("\n")).toContain("has no claim open before it");
  });

  it("flag a lease expiry that the reaper did not settle", () => {
    const figures = check([task(1, "echo", { attempts: 2 })], [claim(1, 1), expired(1, 1), claim(1, 2), completed(1, 2)]);
    expect(figures.violations.join("\n")).toContain("lease:expired of attempt 1 is followed by task:claimed");
  });

  it("flag an outcome recorded by another agent than the claimer", () => {
    const other = { ...completed(1, 1), agentId: "b" };
    const figures = check([task(1, "echo")], [claim(1, 1), other]);
    expect(figures.violations.join("\n")).toContain("is by agent b, attempt 1 was claimed by a");
  });

  it("flag a lease collected before it expired", () => {
    const early = { ...expired(1, 1), at: 5, data: { leaseExpiresAt: 10 } };
    const figures = check([task(1, "echo", { attempts: 2 })], [claim(1, 1), early, retrying(1, 1, "LEASE_EXPIRED"), claim(1, 2), completed(1, 2)]);
    expect(figures.violations.join("\n")).toContain("before the lease's expiry 10");
  });

  it("count a task left claimed as lost", () => {
    const figures = check([task(1, "sleep", { status: "claimed" })], [claim(1, 1)]);
    expect(figures.lost).toBe(1);
    expect(figures.violations.join("\n")).toContain("not terminal: claimed (claimed, no outcome)");
  });

  it("count a task left pending as lost", () => {
    const figures = check([task(1, "sleep", { status: "pending", attempts: 0 })], []);
    expect(figures.lost).toBe(1);
  });

  it("flag attempts above maxAttempts", () => {
    const figures = check(
      [task(1, "fail", { status: "failed", attempts: 2, maxAttempts: 1, payload: { retryable: true } })],
      [claim(1, 1), retrying(1, 1), claim(1, 2), failed(1, 2)],
    );
    expect(figures.violations.join("\n")).toContain("attempts 2 > maxAttempts 1");
  });

  it("flag a non-retryable failure that was retried", () => {
    const figures = check(
      [task(1, "fail", { status: "failed", attempts: 2, payload: { retryable: false } })],
      [claim(1, 1), retrying(1, 1), claim(1, 2), failed(1, 2, "ADAPTER_FAILED", false)],
    );
    expect(figures.violations.join("\n")).toContain("attempt 1: retrying (ADAPTER_FAILED), the policy says failed");
  });

  it("flag a flaky task that completed on an attempt its adapter fails", () => {
    const figures = check([task(1, "flaky", { payload: { failTimes: 2 }, result: { attempt: 1 } })], [claim(1, 1), completed(1, 1)]);
    expect(figures.violations.join("\n")).toContain("attempt 1: completed, the policy says retrying");
  });

  it("flag a task that failed while attempts were left", () => {
    const figures = check([task(1, "flaky", { status: "failed", payload: { failTimes: 5 } })], [claim(1, 1), failed(1, 1)]);
    expect(figures.violations.join("\n")).toContain("attempt 1: failed (ADAPTER_FAILED), the policy says retrying");
  });

  it("count a shell run that finished after its attempt's lease expired as an orphan, without failing", () => {
    const figures = check([task(1, "shell", { attempts: 2, result: { attempt: 2 } })], [claim(1, 1), expired(1, 1), retrying(1, 1, "LEASE_EXPIRED"), claim(1, 2), completed(1, 2)], {
      shellLog: ["1 1", "1 2"],
    });
    expect(figures.orphanShellRuns).toBe(1);
    expect(figures.violations).toEqual([]);
  });

  it("flag a result that is not the completing attempt's", () => {
    const figures = check([task(1, "shell", { attempts: 2, result: { attempt: 1 } })], [claim(1, 1), expired(1, 1), retrying(1, 1, "LEASE_EXPIRED"), claim(1, 2), completed(1, 2)], {
      shellLog: ["1 1", "1 2"],
    });
    expect(figures.violations.join("\n")).toContain("result is from attempt 1, attempt 2 completed");
  });

  it("flag a claim made before a dependency completed", () => {
    const early = claim(2, 1);
    const figures = check([task(1, "echo"), task(2, "echo", { dependsOn: [1] })], [claim(1, 1), early, completed(1, 1), completed(2, 1)]);
    expect(figures.violations.join("\n")).toContain(`attempt 1 claimed (event ${early.id}) before dependency 1 completed`);
  });

  it("count a blocked task whose dependencies all completed as lost", () => {
    const figures = check([task(1, "echo"), task(2, "echo", { status: "blocked", attempts: 0, dependsOn: [1] })], [claim(1, 1), completed(1, 1)]);
    expect(figures.lost).toBe(1);
    expect(figures.violations.join("\n")).toContain("blocked, but no dependency failed");
  });

  it("accept a dependent blocked behind a failed task", () => {
    const figures = check(
      [task(1, "fail", { status: "failed", payload: { retryable: false } }), task(2, "echo", { status: "blocked", attempts: 0, dependsOn: [1] })],
      [claim(1, 1), failed(1, 1, "ADAPTER_FAILED", false), ev(2, "task:blocked", null, { by: 1 })],
    );
    expect(figures.violations).toEqual([]);
    expect(figures.lost).toBe(0);
  });

  it("count a planner whose children were written twice as a duplicate", () => {
    const planner = task(1, "planner", { payload: { goal: "fix the flaky test", implementer: "sleep", reviewer: "echo" } });
    const planned = plan({ title: planner.title, payload: planner.payload, persona: "planner" }).tasks!.length;
    const children = Array.from({ length: planned * 2 }, (_, i) => task(10 + i, "echo", { parentId: 1, rootId: 1 }));
    const history = [claim(1, 1), completed(1, 1, { readied: 0, children: children.slice(0, planned).map((c) => c.id) })];
    for (const c of children) history.push(claim(c.id, 1), completed(c.id, 1));
    const figures = check([planner, ...children], history);
    expect(figures.duplicates).toBe(1);
    expect(figures.violations.join("\n")).toContain(`${planned * 2} children, the plan has ${planned}`);
  });

  it("flag derived state that a recount contradicts", () => {
    const figures = check([], [], { derived: ["task 3: unmet_deps is 1, 0 dependencies are not completed"] });
    expect(figures.violations).toEqual(["task 3: unmet_deps is 1, 0 dependencies are not completed"]);
  });

  it("flag a database that fails PRAGMA integrity_check", () => {
    const figures = check([], [], { integrity: "*** in database main ***\nPage 7: never used" });
    expect(figures.violations[0]).toContain("PRAGMA integrity_check");
  });
});

describe("the crash suite's recount of derived state, on a real database", () => {
  it("reports an unmet_deps and a task_counts row that disagree with the tasks", async () => {
    const temp = makeTempDir("roster-chaos-derived-");
    try {
      const dbPath = temp.path("roster.db");
      const personasDir = temp.path("personas");
      mkdirSync(personasDir);
      writeChaosPersonas(personasDir, { timing: { leaseMs: 500, maxAttempts: 3 }, workScript: "work.mjs", shellLog: temp.path("shell.log") });
      const store = await openStore({ path: dbPath });
      await syncPersonas(store, personasDir, Date.now());
      const { ids } = await store.tasks.enqueue({ tasks: [{ ref: "a", persona: "echo", title: "a" }, { persona: "echo", title: "b", dependsOn: ["a"] }], now: Date.now() });
      await store.close();
      expect(derivedProblems(dbPath)).toEqual([]);

      const db = new Database(dbPath);
      db.prepare("UPDATE task_status SET unmet_deps = 0 WHERE task_id = ?").run(ids[1]);
      db.prepare("UPDATE task_counts SET n = n + 1 WHERE persona_id = 'echo' AND status = 'pending'").run();
      db.close();
      expect(derivedProblems(dbPath)).toEqual([
        "task_counts says 2 echo tasks are pending, there are 1",
        `task ${ids[1]}: unmet_deps is 0, 1 dependencies are not completed`,
      ]);
    } finally {
      temp.cleanup();
    }
  });
});
