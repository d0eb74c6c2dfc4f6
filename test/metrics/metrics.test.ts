import { afterEach, describe, expect, it } from "vitest";
import { register as globalRegistry } from "prom-client";
import { ManualClock } from "../../src/clock.js";
import { createLoopHealth, createMetrics, createTransactionRecorder, startMetricsServer, type MetricsServer, type RosterMetrics } from "../../src/metrics/index.js";
import type { Store } from "../../src/store/index.js";
import { LOST_LEASES_MIN } from "../../src/store/lost-leases.js";
import { SupervisorEventBus } from "../../src/supervisor/events.js";
import { httpGet, parseExposition, sumOf, tempStore, valueOf } from "./helpers.js";

describe("metrics fed by the store's events", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(): Promise<{ store: Store; metrics: RosterMetrics; clock: ManualClock; server: MetricsServer }> {
    const recorder = createTransactionRecorder();
    const clock = new ManualClock();
    const { store, cleanup } = await tempStore({ onTransaction: recorder.onTransaction, monotonic: () => clock.now() });
    const metrics = createMetrics({ store });
    recorder.bind(metrics);
    const server = await startMetricsServer({ metrics, host: "127.0.0.1", port: 0, health: createLoopHealth({ lastTickAt: () => clock.now(), clock }) });
    cleanups.push(cleanup, async () => metrics.detach(), () => server.close());
    return { store, metrics, clock, server };
  }

  async function scrape(server: MetricsServer) {
    const res = await httpGet(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.contentType).toContain("text/plain");
    return parseExposition(res.body);
  }

  it("counts enqueued, claimed and finished tasks exactly as the database records them", async () => {
    const { store, clock, server } = await setup();
    const now = () => clock.now();
    await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "coder", title: `c${i}` })), now: now() });
    await store.tasks.enqueue({ tasks: [{ persona: "planner", title: "p1" }, { persona: "planner", title: "p2" }], now: now() });
    const coder = await store.tasks.claim({ persona: "coder", agentId: "a1", limit: 3, now: now() });
    await store.tasks.completeIfLeased({ taskId: coder[0]!.id, leaseToken: coder[0]!.leaseToken, now: now() });
    await store.tasks.failIfLeased({ taskId: coder[1]!.id, leaseToken: coder[1]!.leaseToken, error: { message: "boom" }, now: now() }); // retried
    await store.tasks.failIfLeased({ taskId: coder[2]!.id, leaseToken: coder[2]!.leaseToken, error: { message: "no", retryable: false}, now: now() });
    const planner = await store.tasks.claim({ persona: "planner", agentId: "a1", limit: 1, now: now() });
    await store.tasks.failIfLeased({ taskId: planner[0]!.id, leaseToken: planner[0]!.leaseToken, error: { message: "x" }, now: now() }); // 1 attempt: failed
    const [, p2] = (await store.tasks.list({ persona: "planner" })).map((t) => t.id);
    await store.tasks.cancel({ taskId: p2!, now: now() });

    const samples = await scrape(server);
    const tasks = await store.tasks.list({});
    const events = await Promise.all(tasks.map((t) => store.tasks.events({ taskId: t.id })));
    const byType = (persona: string, type: string) =>
      events.flat().filter((e) => e.type === type && tasks.find((t) => t.id === e.taskId)!.persona === persona).length;
    for (const persona of ["coder", "planner"]) {
      expect(valueOf(samples, "roster_tasks_enqueued_total", { persona })).toBe(tasks.filter((t) => t.persona === persona).length);
      expect(valueOf(samples, "roster_tasks_claimed_total", { persona })).toBe(byType(persona, "task:claimed"));
      for (const [outcome, type] of [["completed", "task:completed"], ["failed", "task:failed"], ["retried", "task:retrying"], ["cancelled", "task:cancelled"]] as const) {
        expect(valueOf(samples, "roster_tasks_finished_total", { persona, outcome }), `${persona} ${outcome}`).toBe(byType(persona, type));
      }
    }
    expect(valueOf(samples, "roster_tasks_finished_total", { persona: "coder", outcome: "retried" })).toBe(1);
  });

  it("does not count an idempotent enqueue that returned an existing task", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a", idempotencyKey: "k1" }], now: clock.now() });
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a", idempotencyKey: "k1" }, { persona: "planner", title: "p" }], now: clock.now() });

    const samples = await scrape(server);
    expect(valueOf(samples, "roster_tasks_enqueued_total", { persona: "coder" })).toBe(1);
    expect(valueOf(samples, "roster_tasks_enqueued_total", { persona: "planner" })).toBe(1);
    expect(sumOf(samples, "roster_tasks_enqueued_total")).toBe((await store.tasks.list({})).length);
  });

  it("reads tasks by persona and state from the database at scrape time", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a", ref: "a" }, { persona: "coder", title: "b", dependsOn: ["a"] }, { persona: "planner", title: "p" }], now: clock.now() });
    await store.tasks.claim({ persona: "planner", agentId: "a1", now: clock.now() });

    const samples = await scrape(server);
    const counts = await store.tasks.counts();
    for (const [persona, byState] of Object.entries(counts)) {
      for (const state of ["waiting", "pending", "claimed", "in_progress", "completed", "failed", "cancelled", "blocked"] as const) {
        expect(valueOf(samples, "roster_tasks", { persona, state }), `${persona}/${state}`).toBe(byState[state] ?? 0);
      }
    }
    expect(sumOf(samples, "roster_tasks")).toBe(3);
    expect(valueOf(samples, "roster_tasks", { persona: "coder", state: "waiting" })).toBe(1);
  });

  it("observes the wait from ready to claim in seconds", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }], now: clock.now() });
    clock.advance(1_500);
    await store.tasks.claim({ persona: "coder", agentId: "a1", now: clock.now() });

    const samples = await scrape(server);
    expect(valueOf(samples, "roster_task_queue_wait_seconds_count", { persona: "coder" })).toBe(1);
    expect(valueOf(samples, "roster_task_queue_wait_seconds_sum", { persona: "coder" })).toBeCloseTo(1.5, 6);
    expect(valueOf(samples, "roster_task_queue_wait_seconds_bucket", { persona: "coder", le: "1" })).toBe(0);
    expect(valueOf(samples, "roster_task_queue_wait_seconds_bucket", { persona: "coder", le: "2.5" })).toBe(1);
  });

  it("counts expired leases by persona and outcome", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }, { persona: "planner", title: "b" }], now: clock.now() });
    await store.tasks.claim({ persona: "coder", agentId: "a1", leaseMs: 1_000, now: clock.now() });
    await store.tasks.claim({ persona: "planner", agentId: "a1", leaseMs: 1_000, now: clock.now() });
    clock.advance(5_000);
    const reaped = await store.maintenance.reapExpired({ now: clock.now() });

    const samples = await scrape(server);
    expect(reaped.retried.length + reaped.failed.length).toBe(2);
    expect(valueOf(samples, "roster_lease_expirations_total", { persona: "coder", outcome: "retrying" })).toBe(1);
    // The planner allows one attempt, but a reaped attempt is not counted (docs/ARCHITECTURE.md rule 6): it retries too.
    expect(valueOf(samples, "roster_lease_expirations_total", { persona: "planner", outcome: "retrying" })).toBe(1);
    // A task that loses its lease as many times as it may (src/store/lost-leases.ts) fails: that reap counts as "failed".
    for (let lost = 2; lost <= LOST_LEASES_MIN; lost++) {
      clock.advance(120_000);
      await store.tasks.claim({ persona: "planner", agentId: "a1", leaseMs: 1_000, now: clock.now() });
      clock.advance(5_000);
      await store.maintenance.reapExpired({ now: clock.now() });
    }
    const after = await scrape(server);
    expect(valueOf(after, "roster_lease_expirations_total", { persona: "planner", outcome: "retrying" })).toBe(LOST_LEASES_MIN - 1);
    expect(valueOf(after, "roster_lease_expirations_total", { persona: "planner", outcome: "failed" })).toBe(1);
  });

  it("counts fenced writes refused for a lost lease", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }], now: clock.now() });
    const [task] = await store.tasks.claim({ persona: "coder", agentId: "a1", now: clock.now() });
    const result = await store.tasks.completeIfLeased({ taskId: task!.id, leaseToken: "not-the-token", now: clock.now() });

    expect(result.ok).toBe(false);
    expect(valueOf(await scrape(server), "roster_leases_lost_total", { op: "complete" })).toBe(1);
  });

  it("records every write transaction's duration through the store's onTransaction hook", async () => {
    const { store, clock, server } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }], now: clock.now() });
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "b" }], now: clock.now() });

    const samples = await scrape(server);
    expect(valueOf(samples, "roster_db_transaction_duration_seconds_count", { name: "tasks.enqueue" })).toBe(2);
    expect(valueOf(samples, "roster_db_transaction_duration_seconds_sum", { name: "tasks.enqueue" })).toBeGreaterThan(0);
  });

  it("counts heartbeat failures and observes run durations from the supervisor's events, and reads its slots at scrape time", async () => {
    const { metrics, server } = await setup();
    const events = new SupervisorEventBus();
    let stats = { busy: 3, capacity: 8, lastTickAt: 1_700_000_000_000 as number | null };
    metrics.attachSupervisor({ events, stats: () => stats });
    events.emit("lease:renewed", { count: 5, lost: 0 });
    events.emit("lease:renewed", { count: 5, lost: 2 });
    events.emit("supervisor:error", { where: "leaseKeeper.heartbeat", error: new Error("disk I/O error") });
    events.emit("supervisor:error", { where: "waker.poll", error: new Error("x") });
    events.emit("task:run-finished", { taskId: 1, persona: "coder", attempt: 1, durationMs: 2_000, outcome: "completed" });

    let samples = await scrape(server);
    expect(valueOf(samples, "roster_heartbeat_failures_total", { reason: "lost" })).toBe(2);
    expect(valueOf(samples, "roster_heartbeat_failures_total", { reason: "error" })).toBe(1);
    expect(valueOf(samples, "roster_supervisor_errors_total", { where: "waker.poll" })).toBe(1);
    expect(valueOf(samples, "roster_task_run_duration_seconds_sum", { persona: "coder", outcome: "completed" })).toBe(2);
    expect(valueOf(samples, "roster_worker_slots", { state: "busy" })).toBe(3);
    expect(valueOf(samples, "roster_worker_slots", { state: "idle" })).toBe(5);
    expect(valueOf(samples, "roster_supervisor_last_tick_timestamp_seconds")).toBe(1_700_000_000);

    expect(valueOf(samples, "roster_database_reachable")).toBe(1);
    events.emit("db:unreachable", { reason: "no lease renewal committed for 3000 ms" });
    expect(valueOf(await scrape(server), "roster_database_reachable")).toBe(0);
    events.emit("db:reachable", { afterMs: 4_000 });
    expect(valueOf(await scrape(server), "roster_database_reachable")).toBe(1);

    stats = { busy: 8, capacity: 8, lastTickAt: null };
    samples = await scrape(server);
    expect(valueOf(samples, "roster_worker_slots", { state: "idle" })).toBe(0);
    expect(valueOf(samples, "roster_supervisor_last_tick_timestamp_seconds")).toBe(0); // before the first tick
  });

  it("keeps its series on its own registry, not prom-client's global one", async () => {
    const { metrics } = await setup();
    expect(metrics.registry).not.toBe(globalRegistry);
    expect(globalRegistry.getSingleMetric("roster_tasks_finished_total")).toBeUndefined();
    expect(metrics.registry.getSingleMetric("roster_tasks_finished_total")).toBeDefined();
  });

  it("includes Node's default process metrics", async () => {
    const { server } = await setup();
    const names = new Set((await scrape(server)).map((s) => s.name));
    expect(names.has("process_cpu_user_seconds_total")).toBe(true);
    expect(names.has("nodejs_heap_size_used_bytes")).toBe(true);
  });
});
