import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { RosterError } from "../errors.js";
import { TASK_STATES, type Store } from "../store/index.js";
import type { SupervisorEventMap, SupervisorEventName } from "../supervisor/events.js";
import type { SupervisorStats } from "../supervisor/options.js";

/**
 * Every roster metric, defined here and nowhere else, on a registry of its own
 * (never prom-client's global one, so two supervisors in one process, or a test
 * and the code under test, do not share series).
 *
 * Metrics are fed by events: the store's typed events (emitted after each
 * commit, so a counter never counts a rolled-back change), the supervisor's
 * typed events, and the store's `onTransaction` / `onBusyRetry` hooks. Gauges
 * that describe the database (tasks by persona and state) are read at scrape
 * time with one grouped query, so they are exact rather than reconstructed.
 *
 * Names follow Prometheus conventions: `roster_` prefix, base units (seconds),
 * counters end in `_total`. Node's default process metrics keep their standard
 * names (`process_*`, `nodejs_*`) so stock dashboards work.
 */

/** Agent work runs from tens of milliseconds (a built-in adapter) to an hour (a long agent session). In seconds. */
export const TASK_DURATION_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
/** SQLite write transactions: tenths of a millisecond to seconds (when a writer waits on the lock). In seconds. */
export const DB_TRANSACTION_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const LINT_FAILING_DEFAULT_METRICS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/** The slice of the supervisor the metrics need: its typed event bus and the stats they read at scrape time. */
export interface SupervisorSource {
  readonly events: {
    on<K extends SupervisorEventName>(name: K, listener: (payload: SupervisorEventMap[K]) => void): () => void;
  };
  stats(): Pick<SupervisorStats, "busy" | "capacity" | "lastTickAt">;
}

export interface CreateMetricsOptions {
  store: Store;
  /** Attach now, or later with `attachSupervisor`. */
  supervisor?: SupervisorSource;
  /** Collect Node's default process metrics (default true). */
  defaultMetrics?: boolean;
}

export interface RosterMetrics {
  readonly registry: Registry;
  /** The text exposition, as served at /metrics. */
  scrape(): Promise<string>;
  readonly contentType: string;
  /** For StoreOptions.onTransaction: records one write transaction's duration. */
  observeTransaction(name: string, durationMs: number): void;
  attachSupervisor(supervisor: SupervisorSource): void;
  /** Stops listening to the store's and the supervisor's events. */
  detach(): void;
}

/** The bridge between `openStore({ onTransaction })`, which runs before the metrics exist, and the metrics. */
export function createTransactionRecorder(): {
  onTransaction: (name: string, durationMs: number) => void;
  bind(metrics: Pick<RosterMetrics, "observeTransaction">): void;
} {
  let target: Pick<RosterMetrics, "observeTransaction"> | null = null;
  return {
    onTransaction: (name, durationMs) => target?.observeTransaction(name, durationMs),
    bind: (metrics) => {
      target = metrics;
    },
  };
}

export function createMetrics(options: CreateMetricsOptions): RosterMetrics {
  const { store } = options;
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // prom-client also exports these three gauges with a `_total` suffix, which
    // Prometheus reserves for counters (promtool flags them). The same numbers
    // stay available, split by type, as nodejs_active_{handles,requests,resources}.
    for (const name of LINT_FAILING_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }

  let supervisor: SupervisorSource | null = null;
  const unsubscribe: Array<() => void> = [];

  const enqueued = new Counter({
    name: "roster_tasks_enqueued_total",
    help: "Tasks written to the queue (new tasks, including children a planner returned), by persona.",
    labelNames: ["persona"] as const,
    registers,
  });
  const claimed = new Counter({
    name: "roster_tasks_claimed_total",
    help: "Task attempts leased to a worker, by persona.",
    labelNames: ["persona"] as const,
    registers,
  });
  const finished = new Counter({
    name: "roster_tasks_finished_total",
    help: "Task attempts that ended, by persona and outcome: completed, failed (for good), retried (back to pending with backoff), cancelled.",
    labelNames: ["persona", "outcome"] as const,
    registers,
  });
  const leaseExpired = new Counter({
    name: "roster_lease_expirations_total",
    help: "Leases the reaper found expired (the worker stopped heartbeating), by persona and what happened to the task: retrying or failed.",
    labelNames: ["persona", "outcome"] as const,
    registers,
  });
  const leaseLost = new Counter({
    name: "roster_leases_lost_total",
    help: "Fenced writes refused because the lease was no longer current, by operation (start, progress, complete, fail, release).",
    labelNames: ["op"] as const,
    registers,
  });
  const heartbeatFailures = new Counter({
    name: "roster_heartbeat_failures_total",
    help: "Lease renewals that failed: lost (a lease was no longer held) or error (the renewal itself failed).",
    labelNames: ["reason"] as const,
    registers,
  });
  const runDuration = new Histogram({
    name: "roster_task_run_duration_seconds",
    help: "Time one attempt ran in a worker, from dispatch to settlement, by persona and outcome.",
    labelNames: ["persona", "outcome"] as const,
    buckets: TASK_DURATION_BUCKETS_SECONDS,
    registers,
  });
  const queueWait = new Histogram({
    name: "roster_task_queue_wait_seconds",
    help: "Time a task waited between becoming ready (enqueue, last dependency done, or retry due) and being claimed, by persona.",
    labelNames: ["persona"] as const,
    buckets: TASK_DURATION_BUCKETS_SECONDS,
    registers,
  });
  const transactionDuration = new Histogram({
    name: "roster_db_transaction_duration_seconds",
    help: "Duration of the store's write transactions (BEGIN IMMEDIATE to COMMIT), by transaction name.",
    labelNames: ["name"] as const,
    buckets: DB_TRANSACTION_BUCKETS_SECONDS,
    registers,
  });
  const busyRetries = new Counter({
    name: "roster_db_busy_retries_total",
    help: "Write transactions retried because SQLITE_BUSY outlasted busy_timeout (another process held the write lock).",
    registers,
  });

  const readyOldest = new Gauge({
    name: "roster_ready_oldest_seconds",
    help: "How long the ready task a claim would take next has been ready, per persona the supervisor serves (0: none ready); updated every poll interval.",
    labelNames: ["persona"] as const,
    registers,
  });
  const stalls = new Counter({
    name: "roster_stalls_total",
    help: "Ready tasks that waited past the stall bound (2 x pollIntervalMs + 1 s) beside a free slot with no claim tried, by persona. Should stay 0.",
    labelNames: ["persona"] as const,
    registers,
  });
  const databaseReachable = new Gauge({
    name: "roster_database_reachable",
    help: "1 while the supervisor's database answers, 0 while it is unreachable (no claims; attempts stop a lease after their last renewal: docs/postgres.md, \"Losing the database\").",
    registers,
  });
  databaseReachable.set(1);
  const supervisorErrors = new Counter({
    name: "roster_supervisor_errors_total",
    help: "Failures inside the supervisor loop itself (a store call that threw), by where they happened; the loop goes on.",
    labelNames: ["where"] as const,
    registers,
  });

  const tokensTotal = new Counter({
    name: "roster_tokens_total",
    help: "Tokens attempts spent, by persona, model and kind (input, output, cacheRead, cacheWrite, reasoning; reasoning is part of output), as recorded with each attempt's outcome.",
    labelNames: ["persona", "model", "kind"] as const,
    registers,
  });
  const costTotal = new Counter({
    name: "roster_cost_usd_total",
    help: "US dollars attempts spent, by persona and model: the source's reported cost, else tokens priced from the model's price (unpriced attempts add 0).",
    labelNames: ["persona", "model"] as const,
    registers,
  });

  new Gauge({
    name: "roster_breaker_state",
    help: "Circuit breakers by persona, read from the database at scrape time: 1 for the state it is in (open, probing, closed with failures counted); a persona with no failures has no series.",
    labelNames: ["persona", "state"] as const,
    registers,
    async collect() {
      const breakers = await store.economics.breakers();
      this.reset();
      for (const b of breakers) this.set({ persona: b.persona, state: b.state }, 1);
    },
  });
  new Gauge({
    name: "roster_provider_paused_until_seconds",
    help: "Provider accounts paused after a rate or usage limit, read at scrape time: Unix time the pause ends (0: until resumed by hand).",
    labelNames: ["provider"] as const,
    registers,
    async collect() {
      const pauses = await store.economics.pauses({ now: Date.now() });
      this.reset();
      for (const p of pauses) this.set({ provider: p.provider }, p.until === null ? 0 : p.until / 1000);
    },
  });

  new Gauge({
    name: "roster_tasks",
    help: "Tasks in the database by persona and state, read with one grouped query at scrape time.",
    labelNames: ["persona", "state"] as const,
    registers,
    async collect() {
      const counts = await store.tasks.counts();
      this.reset();
      for (const [persona, byState] of Object.entries(counts)) {
        for (const state of TASK_STATES) this.set({ persona, state }, byState[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: "roster_worker_slots",
    help: "The supervisor's worker slots: busy (running a task) and idle (free to take one).",
    labelNames: ["state"] as const,
    registers,
    collect() {
      this.reset();
      if (supervisor === null) return;
      const { busy, capacity } = supervisor.stats();
      this.set({ state: "busy" }, busy);
      this.set({ state: "idle" }, Math.max(0, capacity - busy));
    },
  });
  new Gauge({
    name: "roster_supervisor_last_tick_timestamp_seconds",
    help: "Unix time of the supervisor loop's last tick (0 before the first); alert when time() minus this grows.",
    registers,
    collect() {
      this.reset();
      const lastTickAt = supervisor?.stats().lastTickAt ?? null;
      if (lastTickAt !== null) this.set(lastTickAt / 1000);
    },
  });

  const events = store.events;
  unsubscribe.push(
    events.on("task:enqueued", ({ ids, personas }) => {
      // `personas[i]` is the persona of new task `ids[i]`; an idempotent hit is in neither.
      ids.forEach((_, i) => enqueued.inc({ persona: personas[i] ?? "unknown" }));
    }),
    events.on("task:claimed", ({ tasks }) => {
      for (const task of tasks) {
        claimed.inc({ persona: task.persona });
        queueWait.observe({ persona: task.persona }, Math.max(0, task.claimedAt - task.readyAt) / 1000);
      }
    }),
    events.on("task:completed", ({ persona }) => finished.inc({ persona, outcome: "completed" })),
    events.on("task:failed", ({ persona }) => finished.inc({ persona, outcome: "failed" })),
    events.on("task:retrying", ({ persona }) => finished.inc({ persona, outcome: "retried" })),
    events.on("task:cancelled", ({ persona, taskIds }) => finished.inc({ persona, outcome: "cancelled" }, taskIds.length)),
    events.on("lease:expired", ({ persona, outcome }) => leaseExpired.inc({ persona, outcome })),
    events.on("lease:lost", ({ op }) => leaseLost.inc({ op })),
    events.on("db:busy-retry", () => busyRetries.inc()),
    events.on("usage:recorded", ({ persona, model, tokens, costUsd }) => {
      const m = model ?? "unknown";
      for (const [kind, n] of Object.entries(tokens)) if (n > 0) tokensTotal.inc({ persona, model: m, kind }, n);
      if (costUsd !== null && costUsd > 0) costTotal.inc({ persona, model: m }, costUsd);
    }),
  );

  const metrics: RosterMetrics = {
    registry,
    contentType: registry.contentType,
    scrape: () => registry.metrics(),
    observeTransaction(name, durationMs) {
      transactionDuration.observe({ name }, durationMs / 1000);
    },
    attachSupervisor(source) {
      if (supervisor !== null) throw new RosterError("INVALID_STATE", "metrics: a supervisor is already attached");
      supervisor = source;
      unsubscribe.push(
        source.events.on("task:run-finished", ({ persona, outcome, durationMs }) =>
          runDuration.observe({ persona, outcome }, Math.max(0, durationMs) / 1000),
        ),
        source.events.on("lease:renewed", ({ lost }) => {
          if (lost > 0) heartbeatFailures.inc({ reason: "lost" }, lost);
        }),
        source.events.on("ready:oldest", ({ persona, ageSeconds }) => readyOldest.set({ persona }, ageSeconds)),
        source.events.on("stall:detected", ({ persona }) => stalls.inc({ persona })),
        source.events.on("db:unreachable", () => databaseReachable.set(0)),
        source.events.on("db:reachable", () => databaseReachable.set(1)),
        source.events.on("supervisor:error", ({ where }) => {
          supervisorErrors.inc({ where });
          if (/heartbeat|renew/i.test(where)) heartbeatFailures.inc({ reason: "error" });
        }),
      );
    },
    detach() {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
  if (options.supervisor !== undefined) metrics.attachSupervisor(options.supervisor);
  return metrics;
}
