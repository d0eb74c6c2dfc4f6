import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config.js";
import { createLoopHealth, createMetrics, createTransactionRecorder, startMetricsServer, type RosterMetrics } from "../../src/metrics/index.js";
import { TASK_STATES, type Store } from "../../src/store/index.js";
// The supervisor runs adapters on worker threads, which load the built JS: take it from dist/ (npm test builds first).
import { Supervisor } from "../helpers/built-supervisor.js";
import { findBinary, requireBinaryInCi } from "./binaries.js";
import { httpGet, parseExposition, personasFrom, sumOf, tempStore, valueOf } from "./helpers.js";

const PERSONAS = [
  { id: "writer", name: "Writer", adapter: { kind: "echo" }, concurrency: 4, retry: { maxAttempts: 1 } },
  { id: "flaky", name: "Flaky", adapter: { kind: "flaky", failTimes: 1 }, concurrency: 4, retry: { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
  { id: "doomed", name: "Doomed", adapter: { kind: "fail", retryable: false }, concurrency: 2, retry: { maxAttempts: 3 } },
];

const promtool = findBinary("promtool");
requireBinaryInCi("promtool", promtool);

describe("metrics of a real supervisor run", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** Runs the supervisor over a mixed workload until it is idle; metrics served over HTTP. */
  async function runWorkload(): Promise<{ store: Store; metrics: RosterMetrics; url: string; supervisor: Supervisor }> {
    const recorder = createTransactionRecorder();
    const t = await tempStore({ personas: PERSONAS, onTransaction: recorder.onTransaction, now: Date.now() });
    cleanups.push(t.cleanup);
    const { store } = t;
    const metrics = createMetrics({ store });
    recorder.bind(metrics);
    const config = loadConfig({ dbPath: t.path, personasDir: t.dir, concurrency: 8, threads: 1, pollIntervalMs: 20, reapIntervalMs: 1_000, shutdownGraceMs: 0 }, {});
    const supervisor = new Supervisor({ store, personas: personasFrom(PERSONAS), config, exitWhenIdle: true });
    metrics.attachSupervisor(supervisor);
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => supervisor.stats().lastTickAt }) });
    cleanups.push(() => server.close(), async () => metrics.detach());

    const now = Date.now();
    await store.tasks.enqueue({ tasks: [1, 2, 3, 4, 5].map((i) => ({ persona: "writer", title: `write ${i}` })), now });
    await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "flaky", title: `flaky ${i}` })), now });
    await store.tasks.enqueue({ tasks: [{ persona: "doomed", title: "doomed", ref: "d" }, { persona: "writer", title: "after doomed", dependsOn: ["d"] }], now });
    const [cancelMe] = (await store.tasks.enqueue({ tasks: [{ persona: "writer", title: "never", delayMs: 3_600_000 }], now })).ids;
    await store.tasks.cancel({ taskId: cancelMe!, now });

    await supervisor.start();
    cleanups.push(() => supervisor.stop("test"));
    await supervisor.done;
    return { store, metrics, url: server.url, supervisor };
  }

  it("serves counters and gauges over HTTP that equal the counts in the database", async () => {
    const { store, url } = await runWorkload();
    const res = await httpGet(`${url}/metrics`);
    expect(res.status).toBe(200);
    const samples = parseExposition(res.body);

    const counts = await store.tasks.counts();
    const tasks = await store.tasks.list({ limit: 0 });
    const events = (await Promise.all(tasks.map((t) => store.tasks.events({ taskId: t.id, limit: 0 })))).flat();
    const personaOf = new Map(tasks.map((t) => [t.id, t.persona]));
    const eventCount = (persona: string, type: string) => events.filter((e) => e.type === type && personaOf.get(e.taskId!) === persona).length;

    // The workload did what it was meant to, so the comparisons below are not 0 = 0.
    expect(counts).toEqual({ writer: { completed: 5, cancelled: 1, blocked: 1 }, flaky: { completed: 3 }, doomed: { failed: 1 } });

    for (const persona of ["writer", "flaky", "doomed"]) {
      for (const state of TASK_STATES) {
        expect(valueOf(samples, "roster_tasks", { persona, state }), `roster_tasks ${persona}/${state}`).toBe(counts[persona]?.[state] ?? 0);
      }
      expect(valueOf(samples, "roster_tasks_enqueued_total", { persona })).toBe(tasks.filter((t) => t.persona === persona).length);
      expect(valueOf(samples, "roster_tasks_claimed_total", { persona })).toBe(eventCount(persona, "task:claimed"));
      expect(valueOf(samples, "roster_tasks_finished_total", { persona, outcome: "completed" })).toBe(counts[persona]?.completed ?? 0);
      expect(valueOf(samples, "roster_tasks_finished_total", { persona, outcome: "failed" })).toBe(counts[persona]?.failed ?? 0);
      expect(valueOf(samples, "roster_tasks_finished_total", { persona, outcome: "cancelled" })).toBe(counts[persona]?.cancelled ?? 0);
      expect(valueOf(samples, "roster_tasks_finished_total", { persona, outcome: "retried" })).toBe(eventCount(persona, "task:retrying"));
      // One run-duration observation per attempt the supervisor ran, one queue-wait observation per claim.
      expect(sumOf(samples, "roster_task_run_duration_seconds_count", { persona })).toBe(eventCount(persona, "task:claimed"));
      expect(valueOf(samples, "roster_task_queue_wait_seconds_count", { persona })).toBe(eventCount(persona, "task:claimed"));
    }
    expect(valueOf(samples, "roster_tasks_finished_total", { persona: "flaky", outcome: "retried" })).toBe(3);
    expect(valueOf(samples, "roster_tasks_claimed_total", { persona: "flaky" })).toBe(6);
    // The supervisor stopped when idle: no slot busy, every slot idle.
    expect(valueOf(samples, "roster_worker_slots", { state: "busy" })).toBe(0);
    expect(valueOf(samples, "roster_worker_slots", { state: "idle" })).toBe(8);
    expect(sumOf(samples, "roster_db_transaction_duration_seconds_count")).toBeGreaterThan(0);
    expect(valueOf(samples, "roster_supervisor_last_tick_timestamp_seconds")).toBeGreaterThan(0);
  });

  it.skipIf(promtool === null)("passes promtool check metrics on a scrape taken after a supervisor run", async () => {
    const { url } = await runWorkload();
    const scrape = await httpGet(`${url}/metrics`);
    const check = spawnSync(promtool!, ["check", "metrics"], { input: scrape.body, encoding: "utf8" });
    expect(scrape.body).toContain("roster_task_run_duration_seconds_bucket{");
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);
  });

  it("answers /healthz 200 while the supervisor's loop ticks and 503 once it has stalled", async () => {
    const t = await tempStore({ personas: PERSONAS, now: Date.now() });
    cleanups.push(t.cleanup);
    const config = loadConfig({ dbPath: t.path, personasDir: t.dir, concurrency: 2, threads: 1, pollIntervalMs: 20, shutdownGraceMs: 0 }, {});
    const supervisor = new Supervisor({ store: t.store, personas: personasFrom(PERSONAS), config });
    const clock = new ManualClock(Date.now());
    const metrics = createMetrics({ store: t.store, defaultMetrics: false });
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => supervisor.stats().lastTickAt, clock, staleAfterMs: 5_000 }) });
    cleanups.push(() => server.close());
    expect((await httpGet(`${server.url}/healthz`)).status).toBe(503); // not started yet

    const ticked = new Promise<number>((resolve) => supervisor.events.once("loop:tick", ({ at }: { at: number }) => resolve(at)));
    await supervisor.start();
    cleanups.push(() => supervisor.stop("test"));
    clock.set(await ticked);
    expect((await httpGet(`${server.url}/healthz`)).status).toBe(200);

    // Injected stall: the loop stops ticking and the health clock moves past the threshold.
    await supervisor.stop("stall");
    const lastTickAt = supervisor.stats().lastTickAt!;
    clock.set(lastTickAt + 5_001);
    const res = await httpGet(`${server.url}/healthz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ status: "stalled", lastTickAt, sinceLastTickMs: 5_001 });
  });
});
