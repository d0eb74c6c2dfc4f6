import { afterEach, describe, expect, it } from "vitest";
import type { SupervisorEventMap } from "../../src/supervisor/events.js";
import { createLogger } from "../../src/logging/logger.js";
import { rosterOk } from "../cli/helpers.js";
import { finished, harness, next, type Harness, type TestPersona } from "../supervisor/helpers.js";

/**
 * Issue 17's acceptance through a real supervisor (the one `roster start` runs:
 * worker threads, a file database, the scheduler) and the real CLI in child
 * processes: a module adapter and a shell script ask a person, the parked attempt
 * is not counted (maxAttempts 1: a counted one would leave no attempt to answer
 * with), `roster answer` answers, the next attempt sees the answer; a plan behind
 * an approval is not claimed until `roster approve`, `roster reject` blocks it,
 * and a deadline's default decides for a person who does not.
 */
const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

type RunFinished = SupervisorEventMap["task:run-finished"];

describe("humans in the loop through a real supervisor and the CLI", () => {
  let h: Harness | null = null;

  afterEach(async () => {
    await h?.close();
    h = null;
  });

  /** Starts a supervisor on these personas, with test/fixtures files copied beside them. */
  async function start(personas: TestPersona[], fixtures: string[], options: { exitWhenIdle?: boolean } = {}): Promise<Harness> {
    h = await harness(personas, { fixtures, supervisor: options.exitWhenIdle ? { exitWhenIdle: true } : {} });
    await h.supervisor.start();
    return h;
  }

  async function askedThenAnswered(h: Harness, persona: string): Promise<void> {
    const [taskId] = (await h.store.tasks.enqueue({ tasks: [{ persona, title: "needs a branch" }], now: Date.now() })).ids;
    const parked = await next(h.supervisor.events, "task:run-finished", (e) => e.taskId === taskId);
    // The attempt gave its lease back: it is reported as released, not failed (completer.ts outcomeOf).
    expect(parked).toMatchObject({ outcome: "released", errorCode: "INPUT_REQUESTED", attempt: 1 });
    const waiting = await h.store.tasks.get({ taskId: taskId! });
    expect(waiting).toMatchObject({ status: "awaiting_input", attempts: 0, assignedAgentId: null });

    const done = next(h.supervisor.events, "task:run-finished", (e: RunFinished) => e.taskId === taskId);
    const out = await rosterOk(["answer", String(taskId), "release/2.3", "--db", h.dbPath]);
    expect(out).toContain(String(taskId));
    expect(await done).toMatchObject({ outcome: "completed", attempt: 1 });
    const task = await h.store.tasks.get({ taskId: taskId!, eventLimit: 100 });
    expect(task).toMatchObject({ status: "completed", attempts: 1 });
    expect(JSON.stringify(task.result)).toContain("release/2.3");
    expect(task.events.map((e) => e.type)).toEqual(expect.arrayContaining(["input:requested", "input:answered", "task:completed"]));
    expect(task.events.filter((e) => e.type === "task:claimed")).toHaveLength(2);
  }

  it("a module adapter's ctx.askHuman parks the task uncounted; roster answer answers; the next attempt gets the answer and completes", async () => {
    const h = await start([{ id: "asker", adapter: { kind: "module", path: "./ask-human.mjs" }, retry: once }], ["ask-human.mjs"]);
    await askedThenAnswered(h, "asker");
    const [task] = await h.store.tasks.list({ persona: "asker" });
    expect(task!.result).toEqual({ branch: "release/2.3", attempt: 1, asked: ["Which branch?"] });
  });

  it("a shell script's ::roster:ask line (exit 3) parks the task uncounted; roster answer answers; the next run reads the answer on stdin", async () => {
    const h = await start([{ id: "sh-asker", adapter: { kind: "shell", command: "./ask.sh", args: [] }, retry: once }], ["ask.sh"]);
    await askedThenAnswered(h, "sh-asker");
  });

  const gated: TestPersona[] = [
    { id: "lead", adapter: { kind: "planner" }, retry: once, ...({ planApproval: "approver" } as object) },
    { id: "approver", adapter: { kind: "human" } },
    { id: "implementer", adapter: { kind: "echo" }, retry: once },
    { id: "reviewer", adapter: { kind: "echo" }, retry: once },
  ];
  const goal = (title: string) => ({ persona: "lead", title, payload: { goal: `${title}: parse, render`, depth: 1 } });

  /** The planner runs; returns the approval task and the plan behind it. */
  async function planned(h: Harness, title: string): Promise<{ gate: number; plan: number[] }> {
    const [goalId] = (await h.store.tasks.enqueue({ tasks: [goal(title)], now: Date.now() })).ids;
    await next(h.supervisor.events, "task:run-finished", (e) => e.taskId === goalId && e.outcome === "completed");
    const children = await h.store.tasks.list({ parentId: goalId! });
    const gate = children.find((t) => t.persona === "approver")!;
    expect(gate.status).toBe("awaiting_approval");
    expect(gate.description).toContain("[implementer] parse");
    const plan = children.filter((t) => t !== gate);
    expect(plan.map((t) => t.persona).sort()).toEqual(["implementer", "implementer", "reviewer"]);
    return { gate: gate.id, plan: plan.map((t) => t.id) };
  }

  it("an approval gate between a planner and its implementers: nothing of the plan is claimed until roster approve, then all of it runs", async () => {
    const h = await start(gated, []);
    const { gate, plan } = await planned(h, "ship");
    // Counted where it is, once (migration 0007: the gate trigger no longer leaves a phantom pending count).
    expect((await h.store.tasks.counts()).approver).toEqual({ awaiting_approval: 1 });
    // Several claim passes go by with the plan waiting behind the gate.
    for (let i = 0; i < 5; i++) await next(h.supervisor.events, "loop:tick");
    for (const id of plan) expect(await h.store.tasks.get({ taskId: id, eventLimit: 100 })).toMatchObject({ status: "waiting", attempts: 0 });

    const ran = finished(h.supervisor.events, 3, (e) => plan.includes(e.taskId) && e.outcome === "completed");
    await rosterOk(["approve", String(gate), "--note", "go ahead", "--by", "ann", "--db", h.dbPath]);
    await ran;
    const approved = await h.store.tasks.get({ taskId: gate, eventLimit: 100 });
    expect(approved).toMatchObject({ status: "completed", result: { approved: true, note: "go ahead", by: "cli:ann" } });
    expect(approved.events.filter((e) => e.type === "task:claimed")).toEqual([]);
  });

  it("roster reject fails the gate and blocks the whole plan, none of it ever claimed", async () => {
    const h = await start(gated, []);
    const { gate, plan } = await planned(h, "ship");
    await rosterOk(["reject", String(gate), "--reason", "not this week", "--db", h.dbPath]);
    for (let i = 0; i < 3; i++) await next(h.supervisor.events, "loop:tick");
    expect(await h.store.tasks.get({ taskId: gate })).toMatchObject({ status: "failed", error: { code: "REJECTED" } });
    for (const id of plan) {
      const task = await h.store.tasks.get({ taskId: id, eventLimit: 100 });
      expect(task).toMatchObject({ status: "blocked", attempts: 0 });
      expect(task.events.filter((e) => e.type === "task:claimed")).toEqual([]);
    }
  });

  it("a deadline's default approves for a person who does not answer, and the plan runs", async () => {
    const personas = gated.map((p) => (p.id === "approver" ? { ...p, adapter: { kind: "human", deadlineMs: 300, default: "approve" } } : p));
    const h = await start(personas, []);
    const [goalId] = (await h.store.tasks.enqueue({ tasks: [goal("ship")], now: Date.now() })).ids;
    const ran = finished(h.supervisor.events, 3, (e) => e.taskId !== goalId && e.outcome === "completed");
    await ran;
    const gate = (await h.store.tasks.list({ parentId: goalId!, persona: "approver" }))[0]!;
    const detail = await h.store.tasks.get({ taskId: gate.id, eventLimit: 100 });
    expect(detail).toMatchObject({ status: "completed", result: { approved: true, by: "deadline" } });
    expect(detail.events.find((e) => e.type === "approval:approved")?.agentId).toBe("deadline");
  });

  it("--exit-when-idle stops once nothing can run without a person, and says so", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "info", pretty: false, destination: { write: (line: string) => lines.push(line) } });
    h = await harness([{ id: "asker", adapter: { kind: "module", path: "./ask-human.mjs" }, retry: once }], { fixtures: ["ask-human.mjs"], supervisor: { exitWhenIdle: true, logger } });
    await h.store.tasks.enqueue({ tasks: [{ persona: "asker", title: "needs a branch" }, { persona: "asker", title: "needs one too" }], now: Date.now() });
    await h.supervisor.start();
    expect(await h.supervisor.done).toBe("idle");
    expect((await h.store.tasks.list({ persona: "asker" })).map((t) => t.status)).toEqual(["awaiting_input", "awaiting_input"]);
    const said = lines.map((line) => JSON.parse(line) as { msg: string; parked?: number }).find((l) => l.msg.startsWith("exit when idle"));
    expect(said).toMatchObject({ parked: 2, held: 0, msg: expect.stringContaining("until a person acts (2 parked for a person: roster answer / approve / reject)") });
  });

  it("--exit-when-idle does not stop while an approval's deadline default will still decide", async () => {
    const personas = gated.map((p) => (p.id === "approver" ? { ...p, adapter: { kind: "human", deadlineMs: 400, default: "approve" } } : p));
    h = await harness(personas, { supervisor: { exitWhenIdle: true } });
    const [goalId] = (await h.store.tasks.enqueue({ tasks: [goal("ship")], now: Date.now() })).ids;
    await h.supervisor.start();
    expect(await h.supervisor.done).toBe("idle");
    // It stayed for the deadline: everything ran before it left.
    const counts = await h.store.tasks.counts({ rootId: goalId! });
    expect(Object.values(counts).flatMap((s) => Object.entries(s)).filter(([state, n]) => state !== "completed" && n > 0)).toEqual([]);
  });
});
