import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkChaos, type ChaosSnapshot } from "../../bench/chaos/checks.js";
import { emptyHistory, type ChaosHistory, type SupervisorRecord } from "../../bench/chaos/history.js";
import { CLAIM_ALLOWANCE_MS, FAULT_RECOVERY_ALLOWANCE_MS, findStalls } from "../../bench/chaos/stalls.js";
import { writeChaosPersonas } from "../../bench/chaos/plan.js";
import { openChaosDatabase } from "../../bench/chaos/database.js";
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
    leaseMs: null,
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

  it("read a reaped attempt recorded as not counted (rule 6): the next claim repeats its number, and a reap fails the task only at its lost-lease bound", () => {
    const lostExpired = (id: number, attempt: number, lost: number) => ev(id, "lease:expired", attempt, { silentMs: 2, leaseMs: 1, leasesLost: lost });
    const lostRetrying = (id: number, attempt: number, lost: number) => ev(id, "task:retrying", attempt, { runAt: 0, error: { code: "LEASE_EXPIRED", message: "x" }, counted: false, leasesLost: lost });
    const lostFailed = (id: number, attempt: number, lost: number) => ev(id, "task:failed", attempt, { error: { code: "LEASE_EXPIRED", message: "x" }, retryable: true, blocked: 0, counted: false, leasesLost: lost });
    const ok = check(
      [task(1, "echo", { attempts: 1, maxAttempts: 1 }), task(2, "fail", { attempts: 0, maxAttempts: 1, status: "failed" })],
      [
        claim(1, 1), lostExpired(1, 1, 1), lostRetrying(1, 1, 1), { ...ev(1, "lease:given-back", null, { leasesLost: 0 }) }, claim(1, 1), lostExpired(1, 1, 1), lostRetrying(1, 1, 1), claim(1, 1), completed(1, 1),
        claim(2, 1), lostExpired(2, 1, 1), lostRetrying(2, 1, 1), claim(2, 1), lostExpired(2, 1, 2), lostRetrying(2, 1, 2), claim(2, 1), lostExpired(2, 1, 3), lostFailed(2, 1, 3),
      ],
    );
    expect(ok.violations).toEqual([]);
    // Failed at the second lost lease (the bound is 3 for maxAttempts 1): the policy said retry.
    const early = check([task(1, "echo", { attempts: 0, maxAttempts: 1, status: "failed" })], [claim(1, 1), lostExpired(1, 1, 1), lostRetrying(1, 1, 1), claim(1, 1), lostExpired(1, 1, 2), lostFailed(1, 1, 2)]);
    expect(early.violations.join("\n")).toContain("attempt 1: expired-failed (LEASE_EXPIRED), the policy says expired-retrying");
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

/**
 * Histories with the runner's record (issue 12): events placed in true time by an
 * event clock (`timed`: each event committed at the given ms), supervisors with
 * their agent ids, lifetimes and pauses, faults.
 */
function timed(...pairs: Array<[TaskEvent, number]>): { events: TaskEvent[]; clock: Array<[number, number]> } {
  // As the runner samples: the last sample before each event still shows the previous id.
  const sorted = [...pairs].sort((a, b) => a[0].id - b[0].id);
  const clock: Array<[number, number]> = [];
  sorted.forEach(([e, t], i) => clock.push([t, i === 0 ? 0 : sorted[i - 1]![0].id], [t, e.id]));
  return { events: pairs.map(([e, t]) => ({ ...e, at: t })), clock };
}

function sup(agentId: string, fields: Partial<SupervisorRecord> = {}): SupervisorRecord {
  return { label: `supervisor ${agentId}`, cycle: 1, pid: 1, agentId, spawnAt: 0, readyAt: 0, endAt: null, pollIntervalMs: 50, concurrency: 8, pauses: [], clockOffsetMs: 0, measuredOffsetMs: null, ...fields };
}

function historyOf(clock: Array<[number, number]>, fields: Partial<ChaosHistory> = {}): ChaosHistory {
  return { ...emptyHistory(500), eventClock: clock, endAt: 60_000, ...fields };
}

const enqueued = (id: number) => ev(id, "task:enqueued", 0, { status: "pending" });
const claimBy = (id: number, attempt: number, agentId: string) => ({ ...claim(id, attempt), agentId });
const BOUND = 2 * 50 + CLAIM_ALLOWANCE_MS;

describe("the crash suite's wrongly-failed rule", () => {
  it("flags an echo task that ended failed, with its error code", () => {
    const figures = check([task(1, "echo", { status: "failed", attempts: 1, maxAttempts: 1 })], [claim(1, 1), failed(1, 1, "WORKER_CRASHED")]);
    expect(figures.wronglyFailed).toHaveLength(1);
    expect(figures.wronglyFailed[0]).toContain('task 1 (echo "task 1"): wrongly failed: WORKER_CRASHED');
  });

  it("flags a sleep task whose leases expired under a live, unpaused supervisor until its attempts ran out", () => {
    const h = timed([claimBy(1, 1, "a"), 100], [{ ...expired(1, 1), data: { leaseExpiresAt: 600 } }, 700], [{ ...retrying(1, 1, "LEASE_EXPIRED") }, 700], [claimBy(1, 2, "a"), 900], [{ ...expired(1, 2), data: { leaseExpiresAt: 1_400 } }, 1_500], [failed(1, 2, "LEASE_EXPIRED"), 1_500]);
    const figures = check([task(1, "sleep", { status: "failed", attempts: 2, maxAttempts: 2 })], h.events, { history: historyOf(h.clock, { supervisors: [sup("a")] }) });
    expect(figures.wronglyFailed.join("\n")).toContain("wrongly failed: LEASE_EXPIRED");
  });

  it("accepts an echo task that failed because the harness killed the holder of every attempt", () => {
    const h = timed([claimBy(1, 1, "a"), 100], [{ ...expired(1, 1), data: { leaseExpiresAt: 600 } }, 700], [{ ...retrying(1, 1, "LEASE_EXPIRED"), agentId: "a" }, 700], [claimBy(1, 2, "b"), 900], [{ ...expired(1, 2), agentId: "b", data: { leaseExpiresAt: 1_400 } }, 1_500], [{ ...failed(1, 2, "LEASE_EXPIRED"), agentId: "b" }, 1_500]);
    const history = historyOf(h.clock, { supervisors: [sup("a", { endAt: 300 }), sup("b", { pauses: [{ from: 1_000, to: 2_000 }] })] });
    const figures = check([task(1, "echo", { status: "failed", attempts: 2, maxAttempts: 2 })], h.events, { history });
    expect(figures.wronglyFailed).toEqual([]);
    expect(figures.violations).toEqual([]);
    expect(figures.harnessLostAttempts).toBe(2);
  });

  it("flags a cancelled and retried echo task that ended failed, and accepts one that completed", () => {
    const cancelled = ev(1, "task:cancelled", 1, { from: "in_progress" });
    const retried = ev(1, "task:retried", 0, { from: "cancelled", status: "pending" });
    const bad = check([task(1, "echo", { status: "failed", attempts: 1, maxAttempts: 1 })], [claim(1, 1), cancelled, retried, claim(1, 1), failed(1, 1, "ABORTED")], {
      history: { ...emptyHistory(500), cancels: [{ taskId: 1, cycle: 1, cancelAt: 0, cancelled: true, retryAt: 1, retried: true, error: null }] },
    });
    expect(bad.wronglyFailed.join("\n")).toContain("wrongly failed: ABORTED, after a cancel and retry");
    const good = check([task(2, "echo", { attempts: 1 })], [claim(2, 1), { ...cancelled, taskId: 2 }, { ...retried, taskId: 2 }, claim(2, 1), completed(2, 1)]);
    expect(good.violations).toEqual([]);
    expect(good.wronglyFailed).toEqual([]);
  });

  it("accepts a hung task that failed TIMEOUT and flags one that failed with another code", () => {
    const good = check([task(1, "hang", { status: "failed", attempts: 1, maxAttempts: 1 })], [claim(1, 1), failed(1, 1, "TIMEOUT")]);
    expect(good.violations).toEqual([]);
    const bad = check([task(2, "hang", { status: "failed", attempts: 1, maxAttempts: 1 })], [claim(2, 1), failed(2, 1, "WORKER_CRASHED")]);
    expect(bad.wronglyFailed.join("\n")).toContain("wrongly failed: WORKER_CRASHED, its own failure is TIMEOUT");
  });

  it("flags an innocent sleep task charged an attempt for its thread-mate's hang", () => {
    const figures = check([task(1, "sleep", { attempts: 2 })], [claim(1, 1), retrying(1, 1, "WORKER_CRASHED"), claim(1, 2), completed(1, 2)]);
    expect(figures.violations.join("\n")).toContain("attempt 1: retrying (WORKER_CRASHED), the policy says completed");
  });

  it("accepts a tree attempt whose leader the harness killed, and flags a grandchild that outlived the kill", () => {
    const h = timed([claimBy(1, 1, "a"), 100], [{ ...retrying(1, 1, "ADAPTER_FAILED"), agentId: "a" }, 900], [claimBy(1, 2, "a"), 1_000], [{ ...completed(1, 2), agentId: "a" }, 2_000]);
    const base = historyOf(h.clock, { supervisors: [sup("a")], leaderKills: [{ taskId: 1, attempt: 1, pid: 10, at: 500, cycle: 1 }] });
    const t = task(1, "tree", { attempts: 2, result: { attempt: 2 } });
    expect(check([t], h.events, { history: base }).violations).toEqual([]);
    const orphan = check([t], h.events, { history: { ...base, grandchildren: [{ event: "gcdone", taskId: 1, attempt: 1, pid: 11, at: 2_600 }] } });
    expect(orphan.orphanGrandchildren).toBe(1);
    expect(orphan.violations.join("\n")).toContain("grandchild pid 11 finished 2100 ms after its leader (pid 10) was killed");
  });

  it("does not charge a killed run with the grandchildren of a later run of the same attempt number (a reaped lease is not counted)", () => {
    const h = timed(
      [claimBy(1, 1, "a"), 100],
      [{ ...expired(1, 1), agentId: "a" }, 900],
      [{ ...retrying(1, 1, "LEASE_EXPIRED"), agentId: "a" }, 900],
      [claimBy(1, 1, "b"), 1_000],
      [{ ...completed(1, 1), agentId: "b" }, 9_000],
    );
    const base = historyOf(h.clock, { supervisors: [sup("a", { endAt: 600 }), sup("b")] });
    const grandchildren = [
      { event: "gcstart" as const, taskId: 1, attempt: 1, pid: 21, at: 1_500 },
      { event: "gcdone" as const, taskId: 1, attempt: 1, pid: 21, at: 8_000 },
    ];
    const figures = check([task(1, "tree", { attempts: 1, result: { attempt: 1 } })], h.events, { history: { ...base, grandchildren } });
    expect(figures.orphanGrandchildren).toBe(0);
    // One the killed run started is still its own.
    const own = [{ event: "gcstart" as const, taskId: 1, attempt: 1, pid: 22, at: 300 }, { event: "gcdone" as const, taskId: 1, attempt: 1, pid: 22, at: 8_000 }];
    expect(check([task(1, "tree", { attempts: 1, result: { attempt: 1 } })], h.events, { history: { ...base, grandchildren: own } }).orphanGrandchildren).toBe(1);
  });

  it("flags a lease collected before it expired by the true clock (a reaper whose clock runs ahead)", () => {
    const h = timed([claimBy(1, 1, "a"), 100], [{ ...expired(1, 1), at: 30_700, data: { leaseExpiresAt: 600 } }, 300], [{ ...retrying(1, 1, "LEASE_EXPIRED"), agentId: "a" }, 300], [claimBy(1, 2, "a"), 400], [{ ...completed(1, 2), agentId: "a" }, 500]);
    const figures = check([task(1, "echo", { attempts: 2 })], h.events, { history: historyOf(h.clock, { supervisors: [sup("a")] }) });
    expect(figures.earlyReaps).toBe(1);
    expect(figures.violations.join("\n")).toContain("collected 300 ms before it expired by the true clock");
  });
});

describe("the crash suite's stall rule", () => {
  const stalls = (tasks: TaskRecord[], pairs: Array<[TaskEvent, number]>, fields: Partial<ChaosHistory>) => {
    const h = timed(...pairs);
    const events = new Map<number, TaskEvent[]>(tasks.map((t) => [t.id, h.events.filter((e) => e.taskId === t.id)]));
    return findStalls({ tasks, events, history: historyOf(h.clock, fields), personaConcurrency: () => 3 });
  };

  it("judges a task due by each supervisor's own clock: one 30 s behind is not stalled before its clock reaches the run_at, one on time is", () => {
    const pairs: Array<[TaskEvent, number]> = [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 31_500], [{ ...completed(1, 1), agentId: "a" }, 31_600]];
    expect(stalls([task(1, "sleep")], pairs, { supervisors: [sup("a", { clockOffsetMs: -30_000 })] })).toEqual([]);
    expect(stalls([task(1, "sleep")], pairs, { supervisors: [sup("a")] })).toHaveLength(1);
  });

  it("flags a task left ready past the bound beside a live supervisor with free slots, with its id, wait and persona", () => {
    const found = stalls([task(1, "sleep")], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 4_000], [{ ...completed(1, 1), agentId: "a" }, 4_500]], { supervisors: [sup("a")] });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ taskId: 1, persona: "sleep", waitedMs: 3_000, boundMs: BOUND, claimed: true });
    expect(found[0]!.supervisor).toContain("supervisor a");
  });

  it("flags a task never claimed while a supervisor with free slots ran to the end", () => {
    const found = stalls([task(1, "echo", { status: "pending", attempts: 0 })], [[enqueued(1), 1_000]], { supervisors: [sup("a", { endAt: 5_000 })] });
    expect(found).toMatchObject([{ taskId: 1, claimed: false, waitedMs: 4_000 }]);
  });

  it("passes a claim within the bound", () => {
    expect(stalls([task(1, "sleep")], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 1_000 + BOUND - 100], [{ ...completed(1, 1), agentId: "a" }, 3_000]], { supervisors: [sup("a")] })).toEqual([]);
  });

  it("passes a wait while the only supervisor was SIGSTOPped, or dead, or not yet ready", () => {
    const pairs: Array<[TaskEvent, number]> = [[enqueued(1), 1_000], [claimBy(1, 1, "b"), 5_000], [{ ...completed(1, 1), agentId: "b" }, 5_500]];
    expect(stalls([task(1, "sleep")], pairs, { supervisors: [sup("a", { pauses: [{ from: 500, to: 4_500 }] }), sup("b", { readyAt: 4_500 })] })).toEqual([]);
    expect(stalls([task(1, "sleep")], pairs, { supervisors: [sup("a", { endAt: 1_200 }), sup("b", { readyAt: 4_500 })] })).toEqual([]);
  });

  it("passes a wait while the supervisor's slots for the persona were full", () => {
    const busy: Array<[TaskEvent, number]> = [2, 3, 4].flatMap((id): Array<[TaskEvent, number]> => [[claimBy(id, 1, "a"), 500], [{ ...completed(id, 1), agentId: "a" }, 4_000]]);
    const pairs: Array<[TaskEvent, number]> = [...busy, [enqueued(1), 1_000], [claimBy(1, 1, "a"), 4_100], [{ ...completed(1, 1), agentId: "a" }, 4_600]];
    const found = stalls([task(1, "sleep"), task(2, "sleep"), task(3, "sleep"), task(4, "sleep")], pairs.sort((x, y) => x[1] - y[1] || x[0].id - y[0].id), { supervisors: [sup("a")] });
    expect(found).toEqual([]);
  });

  it("passes a wait while other claimants hold the persona's whole concurrency, which the store shares between them", () => {
    // Supervisor b holds all 3 sleep slots until 4,000; a, idle, may not take a fourth.
    const busy: Array<[TaskEvent, number]> = [2, 3, 4].flatMap((id): Array<[TaskEvent, number]> => [[claimBy(id, 1, "b"), 500], [{ ...completed(id, 1), agentId: "b" }, 4_000]]);
    const tasks = [task(1, "sleep"), task(2, "sleep"), task(3, "sleep"), task(4, "sleep")];
    const pairs = [...busy, [enqueued(1), 1_000], [claimBy(1, 1, "a"), 4_100], [{ ...completed(1, 1), agentId: "a" }, 4_600]] as Array<[TaskEvent, number]>;
    expect(stalls(tasks, pairs.sort((x, y) => x[1] - y[1] || x[0].id - y[0].id), { supervisors: [sup("a"), sup("b")] })).toEqual([]);
  });

  it("passes a wait inside a held write lock and restarts the bound when the lock ends", () => {
    const lock = { kind: "lock" as const, cycle: 1, from: 500, to: 4_000, detail: "lock", taskIds: [] };
    const within = stalls([task(1, "echo")], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 4_000 + FAULT_RECOVERY_ALLOWANCE_MS + BOUND - 100], [{ ...completed(1, 1), agentId: "a" }, 8_000]], { supervisors: [sup("a")], faults: [lock] });
    expect(within).toEqual([]);
    const after = stalls([task(1, "echo")], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 4_000 + FAULT_RECOVERY_ALLOWANCE_MS + BOUND + 1_000], [{ ...completed(1, 1), agentId: "a" }, 12_000]], { supervisors: [sup("a")], faults: [lock] });
    expect(after).toMatchObject([{ taskId: 1, waitedMs: BOUND + 1_000 }]);
    expect(after[0]!.faults).toEqual(["lock (cycle 1)"]);
  });

  it("counts a delayed task as ready only from its run_at, and a retry only after its backoff", () => {
    const delayed = stalls([task(1, "echo")], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 5_000], [{ ...completed(1, 1), agentId: "a" }, 5_100]], { supervisors: [sup("a")], dueAt: { 1: 4_500 } });
    expect(delayed).toEqual([]);
    const backoff = { ...retrying(1, 1), agentId: "a", data: { runAt: 3_500, error: { code: "ADAPTER_FAILED", message: "x" } } };
    const retried = stalls([task(1, "flaky", { attempts: 2 })], [[enqueued(1), 1_000], [claimBy(1, 1, "a"), 1_100], [backoff, 1_500], [claimBy(1, 2, "a"), 3_600], [{ ...completed(1, 2), agentId: "a" }, 3_700]], { supervisors: [sup("a")] });
    expect(retried).toEqual([]);
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
      const chaosDb = openChaosDatabase(dbPath);
      expect(await chaosDb.derivedProblems()).toEqual([]);

      const db = new Database(dbPath);
      db.prepare("UPDATE task_status SET unmet_deps = 0 WHERE task_id = ?").run(ids[1]);
      db.prepare("UPDATE task_counts SET n = n + 1 WHERE persona_id = 'echo' AND status = 'pending'").run();
      db.close();
      expect(await chaosDb.derivedProblems()).toEqual([
        "task_counts says 2 echo tasks are pending, there are 1",
        `task ${ids[1]}: unmet_deps is 0, 1 dependencies are not completed`,
      ]);
      await chaosDb.close();
    } finally {
      temp.cleanup();
    }
  });
});
