/**
 * The measures that run roster's real supervisor (worker threads, events, fencing,
 * dependency counters, batched claims and completions), each in a child process of its
 * own (see support/child.ts). Every function creates its database and personas in
 * `dir`, enqueues through the store, runs the supervisor, and returns plain figures.
 */
import { join } from "node:path";
import type { Store, TaskInput } from "../../src/store/index.js";
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { writePersona, writeStampAdapter } from "./support/personas.js";
import { cpuOverWindow, sampleRss, threadCpu } from "./support/resources.js";
import { quantile } from "./support/stats.js";
import { startBenchSupervisor, type BenchSupervisor } from "./support/supervisor.js";
import { openStore } from "../../src/store/index.js";

const ENQUEUE_CHUNK = 10_000;

async function enqueueNoops(store: Store, persona: string, count: number, payload: (i: number) => TaskInput["payload"] = (i) => ({ i })): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i += ENQUEUE_CHUNK) {
    const tasks: TaskInput[] = [];
    for (let j = i; j < Math.min(count, i + ENQUEUE_CHUNK); j++) tasks.push({ persona, title: `bench ${j}`, payload: payload(j) });
    await store.tasks.enqueue({ tasks, now: Date.now() });
  }
  return performance.now() - t0;
}

/**
 * Resolves when `count` tasks have completed (per the store's events); rejects on the
 * first task that fails or retries, since a no-op benchmark must not.
 */
function completions(store: Store, count: number, onEach?: (done: number, at: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const offs = [
      store.events.on("task:completed", () => {
        done++;
        onEach?.(done, performance.now());
        if (done === count) {
          for (const off of offs) off();
          resolve(performance.now());
        }
      }),
      store.events.on("task:failed", (e) => reject(new Error(`task ${e.taskId} failed during the benchmark`))),
      store.events.on("task:retrying", (e) => reject(new Error(`task ${e.taskId} was retried during the benchmark`))),
    ];
  });
}

export interface SupervisedRun {
  system: string;
  jobs: number;
  enqueueMs: number;
  processMs: number;
  jobsPerSec: number;
  peakRssMb: number;
  settings: Record<string, unknown>;
  /** Write transactions of the supervisor's store while processing, by name: count and total ms. */
  transactions?: Record<string, { count: number; ms: number }>;
  /** CPU time per task while processing: the main thread's, and every other thread's (Linux only). */
  cpu?: { mainUsPerTask: number; otherUsPerTask: number };
}

/** `throughput`: N no-op (echo) tasks enqueued, then the supervisor started and timed until the last completes. */
export async function throughputRun(args: { dir: string; jobs: number; concurrency: number; synchronous: "NORMAL" | "FULL"; dbUrl?: string }): Promise<SupervisedRun> {
  const rss = sampleRss();
  const personasDir = join(args.dir, "personas");
  writePersona(personasDir, { id: "noop", adapter: { kind: "echo" }, concurrency: args.concurrency });
  // A SQLite file in the run's folder, or the PostgreSQL database it was given (synchronous is then moot).
  const dbPath = args.dbUrl ?? join(args.dir, "roster.db");
  // Enqueue through a store of our own, then hand the database to the supervisor.
  const seed = await openStore({ path: dbPath, synchronous: args.synchronous });
  let enqueueMs: number;
  try {
    const { loadPersonaDir, toPersonaUpsert } = await import("../../src/personas/load.js");
    await seed.personas.sync({ personas: loadPersonaDir(personasDir).map(toPersonaUpsert), now: Date.now() });
    enqueueMs = await enqueueNoops(seed, "noop", args.jobs);
  } finally {
    await seed.close();
  }
  // Write transactions by name while processing: what the supervisor asks of SQLite per task.
  const transactions: Record<string, { count: number; ms: number }> = {};
  let counting = true;
  const cpu = threadCpu();
  const t0 = performance.now();
  const supervisor = await startBenchSupervisor({
    dbPath,
    personasDir,
    synchronous: args.synchronous,
    concurrency: args.concurrency,
    onTransaction: (name, ms) => {
      if (!counting) return;
      const t = (transactions[name] ??= { count: 0, ms: 0 });
      t.count++;
      t.ms += ms;
    },
  });
  const end = await completions(supervisor.store, args.jobs);
  counting = false;
  const used = cpu?.stop();
  const processMs = end - t0;
  await supervisor.stop();
  return {
    system: args.dbUrl === undefined ? `roster supervisor (${args.synchronous})` : "roster supervisor (PostgreSQL)",
    jobs: args.jobs,
    enqueueMs,
    processMs,
    jobsPerSec: (args.jobs / processMs) * 1000,
    peakRssMb: rss.stop().peakRssMb,
    settings: { ...supervisor.settings, ...(args.dbUrl === undefined ? { synchronous: args.synchronous } : {}), concurrency: args.concurrency },
    transactions,
    ...(used === undefined ? {} : { cpu: { mainUsPerTask: (used.mainMs * 1000) / args.jobs, otherUsPerTask: (used.otherMs * 1000) / args.jobs } }),
  };
}

export interface ConcurrencyRun {
  tasks: number;
  sleepMs: number;
  wallMs: number;
  peakRssMb: number;
  rssAtStartMb: number;
  settings: Record<string, unknown>;
}

/** `concurrency`: an idle supervisor; `tasks` sleep tasks enqueued in one batch; wall time until the last completes. */
export async function concurrencyRun(args: { dir: string; tasks: number; sleepMs: number; concurrency: number }): Promise<ConcurrencyRun> {
  const personasDir = join(args.dir, "personas");
  writePersona(personasDir, { id: "sleeper", adapter: { kind: "sleep", ms: args.sleepMs }, concurrency: args.concurrency });
  const supervisor = await startBenchSupervisor({ dbPath: join(args.dir, "roster.db"), personasDir, concurrency: args.concurrency });
  await new Promise((r) => setTimeout(r, 300));
  const rss = sampleRss(20);
  const rssAtStartMb = process.memoryUsage.rss() / 1048576;
  const done = completions(supervisor.store, args.tasks);
  const t0 = performance.now();
  await enqueueNoops(supervisor.store, "sleeper", args.tasks, () => ({ ms: args.sleepMs }));
  const end = await done;
  const wallMs = end - t0;
  const { peakRssMb } = rss.stop();
  await supervisor.stop();
  return { tasks: args.tasks, sleepMs: args.sleepMs, wallMs, peakRssMb, rssAtStartMb, settings: supervisor.settings };
}

export interface LatencyRun {
  samples: number;
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  idleCpuPercent: number;
  idleWindowMs: number;
  settings: Record<string, unknown>;
}

/**
 * `latency`, supervisor side: start the supervisor on an empty database, measure its
 * CPU over an idle window, then let a second process enqueue one task at a time; each
 * task's `module` adapter returns the time it started, and the enqueuer recorded when
 * its enqueue committed. Both on performance.timeOrigin + performance.now().
 */
export async function latencyRun(args: {
  dir: string;
  samples: number;
  idleWindowMs: number;
  gapMs: [number, number];
  /** A PostgreSQL database instead of a SQLite file in `dir`; the enqueuer then reaches it at `enqueuerDbUrl` (default the same). */
  dbUrl?: string;
  enqueuerDbUrl?: string;
  /** The network namespace (another "host") the enqueuer runs in. */
  enqueuerNetns?: string;
}): Promise<LatencyRun> {
  const personasDir = join(args.dir, "personas");
  const path = writeStampAdapter(personasDir);
  writePersona(personasDir, { id: "stamp", adapter: { kind: "module", path }, concurrency: 16 });
  const dbPath = args.dbUrl ?? join(args.dir, "roster.db");
  const supervisor = await startBenchSupervisor({ dbPath, personasDir, concurrency: 16 });
  try {
    // Let start-up work (threads, first polls) settle, then measure the idle cost.
    await new Promise((r) => setTimeout(r, 1_000));
    const idle = await cpuOverWindow(args.idleWindowMs);
    const done = completions(supervisor.store, args.samples);
    const enqueued = await runInChild<Array<{ id: number; committedAt: number }>>({
      modulePath: benchModule("scenarios/supervised-child"),
      fn: "latencyEnqueuer",
      args: { dbPath: args.enqueuerDbUrl ?? dbPath, samples: args.samples, gapMs: args.gapMs },
      ...(args.enqueuerNetns === undefined ? {} : { netns: args.enqueuerNetns }),
    });
    await done;
    const latencies: number[] = [];
    for (const e of enqueued) {
      const task = await supervisor.store.tasks.get({ taskId: e.id });
      const startedAt = (task.result as { startedAt?: number } | null)?.startedAt;
      if (typeof startedAt !== "number") throw new Error(`task ${e.id} has no start stamp (result ${JSON.stringify(task.result)})`);
      latencies.push(startedAt - e.committedAt);
    }
    return {
      samples: latencies.length,
      latenciesMs: latencies,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: Math.max(...latencies),
      idleCpuPercent: idle.cpuPercent,
      idleWindowMs: idle.windowMs,
      settings: supervisor.settings,
    };
  } finally {
    await supervisor.stop();
  }
}

/** `latency`, enqueuer side (another process): one task at a time, a random gap between them. */
export async function latencyEnqueuer(args: { dbPath: string; samples: number; gapMs: [number, number] }): Promise<Array<{ id: number; committedAt: number }>> {
  const store = await openStore({ path: args.dbPath });
  const out: Array<{ id: number; committedAt: number }> = [];
  try {
    for (let i = 0; i < args.samples; i++) {
      const gap = args.gapMs[0] + Math.random() * (args.gapMs[1] - args.gapMs[0]);
      await new Promise((r) => setTimeout(r, gap));
      const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "stamp", title: `latency ${i}` }], now: Date.now() });
      // The enqueue has committed when it returns.
      out.push({ id: ids[0]!, committedAt: performance.timeOrigin + performance.now() });
    }
  } finally {
    await store.close();
  }
  return out;
}

export interface HeartbeatRun {
  running: number;
  leaseMs: number;
  windowMs: number;
  ticks: number;
  writeTransactions: number;
  byName: Record<string, number>;
  perTick: number;
}

/**
 * `heartbeat`: `tasks` long sleep tasks all running; over a window of several renewal
 * ticks (leaseMs / 3), every write transaction the supervisor's store commits is counted
 * through the store's onTransaction hook.
 */
export async function heartbeatRun(args: { dir: string; tasks: number; leaseMs: number; ticks: number }): Promise<HeartbeatRun> {
  const personasDir = join(args.dir, "personas");
  const tickMs = args.leaseMs / 3;
  const windowMs = tickMs * args.ticks;
  const sleepMs = Math.round(windowMs * 3 + 10_000);
  writePersona(personasDir, { id: "sleeper", adapter: { kind: "sleep", ms: sleepMs }, concurrency: args.tasks, leaseMs: args.leaseMs, timeoutMs: sleepMs * 2 });
  let counting = false;
  const byName: Record<string, number> = {};
  const supervisor: BenchSupervisor = await startBenchSupervisor({
    dbPath: join(args.dir, "roster.db"),
    personasDir,
    concurrency: args.tasks,
    onTransaction: (name) => {
      if (counting) byName[name] = (byName[name] ?? 0) + 1;
    },
  });
  try {
    let started = 0;
    const allStarted = new Promise<void>((resolve) => {
      const off = supervisor.store.events.on("task:started", () => {
        if (++started === args.tasks) {
          off();
          resolve();
        }
      });
    });
    await enqueueNoops(supervisor.store, "sleeper", args.tasks, () => ({ ms: sleepMs }));
    await allStarted;
    // One tick for stragglers (the last starts, a first renewal), then count.
    await new Promise((r) => setTimeout(r, tickMs));
    counting = true;
    await new Promise((r) => setTimeout(r, windowMs));
    counting = false;
    const writeTransactions = Object.values(byName).reduce((a, b) => a + b, 0);
    return { running: args.tasks, leaseMs: args.leaseMs, windowMs, ticks: args.ticks, writeTransactions, byName, perTick: writeTransactions / args.ticks };
  } finally {
    await supervisor.stop({ abort: true });
  }
}

export interface SoakRun {
  tasks: number;
  enqueueMs: number;
  /** Seconds each tenth of the tasks took to complete, in order. */
  tenthsSec: number[];
  tenthsJobsPerSec: number[];
  lastOverFirst: number;
  rss: Array<[number, number]>;
  peakRssMb: number;
  totalMs: number;
}

/** `soak`: `tasks` no-op tasks through the supervisor; throughput per tenth and RSS over time. */
export async function soakRun(args: { dir: string; tasks: number; concurrency: number }): Promise<SoakRun> {
  const personasDir = join(args.dir, "personas");
  writePersona(personasDir, { id: "noop", adapter: { kind: "echo" }, concurrency: args.concurrency });
  const dbPath = join(args.dir, "roster.db");
  const seed = await openStore({ path: dbPath });
  let enqueueMs: number;
  try {
    const { loadPersonaDir, toPersonaUpsert } = await import("../../src/personas/load.js");
    await seed.personas.sync({ personas: loadPersonaDir(personasDir).map(toPersonaUpsert), now: Date.now() });
    enqueueMs = await enqueueNoops(seed, "noop", args.tasks);
  } finally {
    await seed.close();
  }
  const rss = sampleRss(1_000);
  const tenth = Math.max(1, Math.floor(args.tasks / 10));
  const marks: number[] = [];
  let firstAt = 0;
  const t0 = performance.now();
  const supervisor = await startBenchSupervisor({ dbPath, personasDir, concurrency: args.concurrency });
  // Tenths are timed from the first completion, so start-up (threads) is in none of them.
  const end = await completions(supervisor.store, args.tasks, (done, at) => {
    if (done === 1) firstAt = at;
    if (done % tenth === 0 && marks.length < 10) marks.push(at);
  });
  await supervisor.stop();
  const { peakRssMb, samples } = rss.stop();
  const tenthsSec = marks.map((m, i) => (m - (i === 0 ? firstAt : marks[i - 1]!)) / 1000);
  const tenthsJobsPerSec = tenthsSec.map((s, i) => (i === 0 ? tenth - 1 : tenth) / s);
  return {
    tasks: args.tasks,
    enqueueMs,
    tenthsSec,
    tenthsJobsPerSec,
    lastOverFirst: tenthsJobsPerSec[tenthsJobsPerSec.length - 1]! / tenthsJobsPerSec[0]!,
    rss: samples,
    peakRssMb,
    totalMs: end - t0,
  };
}
