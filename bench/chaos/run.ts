/**
 * The crash suite (issue 7): a run of mixed tasks with dependencies, during which
 * supervisor processes are killed with SIGKILL at seeded random moments and
 * restarted, many times; then one `roster start --exit-when-idle` runs until
 * idle, and checks.ts judges the database.
 *
 * Modes of one cycle: enqueue the batches due → spawn a supervisor (runStart in
 * bench/chaos/supervisor.mjs with short reaper and poll intervals; every
 * `binaryEvery`-th one is the real `roster start` binary) → either kill it at a
 * random moment after spawning (often before it is ready: during its persona sync
 * and start-up reap), or wait until it is ready and kill it at a random moment
 * while it works, sometimes sending SIGTERM first so the kill lands inside the
 * graceful shutdown (releases, deregistration) → wait for its exit. Every random draw comes from the seed, in
 * the same order whatever the timing, so `--seed` replays the schedule.
 */
import Database from "better-sqlite3";
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store, type TaskEvent } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { repoRoot } from "../lib/paths.js";
import { checkChaos, type ChaosFigures } from "./checks.js";
import { chaosBatch, PERSONA_TIMING_DEFAULT, writeChaosPersonas } from "./plan.js";
import { randomInt, seededRandom } from "./random.js";

export interface ChaosOptions {
  /** SIGKILLs to deliver (one per supervisor started, before the final one). */
  kills: number;
  seed: number;
  /** Tasks enqueued by the runner (planners add their children on top). */
  tasks: number;
  /** Lease length of every persona, in ms. Default 500. */
  leaseMs?: number;
  /** The chaos supervisors' reaper interval, in ms. Default 150. */
  reapIntervalMs?: number;
  /** Longest a supervisor works (after it is ready) before its kill, in ms. Default 1500. */
  maxRunMs?: number;
  /** Every n-th chaos supervisor is the real `roster start` binary (0: never). Default 4. */
  binaryEvery?: number;
  /** How long the final supervisor may take to reach idle, in ms. Default 180000. */
  drainTimeoutMs?: number;
  /** Keep the temp folder (database, personas, logs) even when every check passes. */
  keep?: boolean;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  options: Required<Omit<ChaosOptions, "log" | "keep">>;
  /** SIGKILLs delivered to a live supervisor. */
  kills: number;
  /** Of those, kills before the supervisor said it was ready (start-up, persona sync, first reap). */
  killsBeforeReady: number;
  /** Of the kills, those of a companion supervisor that ran beside another one. */
  overlapKills: number;
  /** SIGTERMs sent before a kill (the kill then lands in the graceful shutdown, unless it finished first). */
  terms: number;
  /** Supervisors that finished their graceful stop before the SIGKILL came (no kill counted). */
  gracefulStops: number;
  /** Supervisors that exited on their own before their kill (each is a failure). */
  unexpectedExits: string[];
  drained: boolean;
  drainExitCode: number | null;
  figures: ChaosFigures;
  wallMs: number;
  /** 1-minute load average of the machine at the start and the end. */
  loadAverage: { before: number; after: number };
  dir: string;
  /** Every check passed. */
  ok: boolean;
  failures: string[];
}

const BATCH_SIZE = 15;
/** The first cycles start on no database at all and are killed early: inside migrations and the first persona sync. */
const FRESH_CYCLES = 3;
const STDERR_TAIL = 4_000;
const CHILD_READY_TIMEOUT_MS = 60_000;

interface Child {
  process: ChildProcess;
  ready: Promise<boolean>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
  /** Set once the ready line was seen. */
  isReady: boolean;
  stderrTail(): string;
}

function startChild(args: string[], logFile: string, label: string, readyPattern: RegExp): Child {
  appendFileSync(logFile, `\n=== ${label} ${new Date().toISOString()}\n`);
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  let out = "";
  const state: Child = {
    process: child,
    exited: false,
    isReady: false,
    ready: new Promise<boolean>((resolve) => {
      const check = () => {
        if (state.isReady || !(readyPattern.test(out) || readyPattern.test(tail))) return;
        state.isReady = true;
        resolve(true);
      };
      child.stdout!.on("data", (d: Buffer) => {
        out = (out + d.toString()).slice(-STDERR_TAIL);
        check();
      });
      child.stderr!.on("data", (d: Buffer) => {
        appendFileSync(logFile, d);
        tail = (tail + d.toString()).slice(-STDERR_TAIL);
        check();
      });
      child.on("exit", () => resolve(false));
    }),
    exit: new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        state.exited = true;
        resolve({ code, signal });
      }),
    ),
    stderrTail: () => tail,
  };
  return state;
}

function timeout(ms: number): { promise: Promise<"timeout">; cancel(): void } {
  let timer: NodeJS.Timeout;
  const promise = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A private copy of the built roster (dist/src, package.json, migrations/, and a
 * link to node_modules) for the run's supervisors: other people rebuilding dist/
 * during a long run would otherwise hand a supervisor a half-written file. Returns
 * the copy's dist/src folder.
 */
export function snapshotBuild(root: string, to: string): string {
  cpSync(join(root, "dist", "src"), join(to, "dist", "src"), { recursive: true });
  cpSync(join(root, "migrations"), join(to, "migrations"), { recursive: true });
  copyFileSync(join(root, "package.json"), join(to, "package.json"));
  symlinkSync(join(root, "node_modules"), join(to, "node_modules"), "junction");
  return join(to, "dist", "src");
}

/** Waits until no lease in the database is still live, so the next supervisor's start-up reap collects them all. */
async function leasesExpired(store: Store): Promise<void> {
  for (;;) {
    const leased = await store.tasks.list({ status: ["claimed", "in_progress"], limit: 0 });
    const latest = Math.max(0, ...leased.map((t) => t.leaseExpiresAt ?? 0));
    if (Date.now() > latest) return;
    await sleep(Math.min(100, latest - Date.now() + 5));
  }
}

/**
 * State the store derives and keeps in the same transactions as the transitions,
 * recomputed from scratch (bench code may read SQLite directly): the per-persona
 * counts of task_counts, and each task's unmet dependency count.
 */
export function derivedProblems(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const counts = db
      .prepare(
        `SELECT c.persona_id AS persona, c.status, c.n,
           (SELECT count(*) FROM task_status s WHERE s.persona_id = c.persona_id AND s.status = c.status) AS actual
         FROM task_counts c`,
      )
      .all() as Array<{ persona: string; status: string; n: number; actual: number }>;
    const unmet = db
      .prepare(
        `SELECT s.task_id AS id, s.unmet_deps AS stored,
           (SELECT count(*) FROM task_dependencies d JOIN task_status o ON o.task_id = d.depends_on
            WHERE d.task_id = s.task_id AND o.status <> 'completed') AS actual
         FROM task_status s`,
      )
      .all() as Array<{ id: number; stored: number; actual: number }>;
    return [
      ...counts.filter((c) => c.n !== c.actual).map((c) => `task_counts says ${c.n} ${c.persona} tasks are ${c.status}, there are ${c.actual}`),
      ...unmet.filter((u) => u.stored !== u.actual).map((u) => `task ${u.id}: unmet_deps is ${u.stored}, ${u.actual} dependencies are not completed`),
    ];
  } finally {
    db.close();
  }
}

/** Everything the checks read: tasks, each task's events, integrity, derived state, the shell script's log. */
export async function snapshot(store: Store, shellLog: string, dbPath: string) {
  const tasks = await store.tasks.list({ limit: 0 });
  const events = new Map<number, TaskEvent[]>();
  for (const task of tasks) events.set(task.id, await store.tasks.events({ taskId: task.id, limit: 0 }));
  const integrity = await store.maintenance.integrityCheck();
  const lines = existsSync(shellLog) ? readFileSync(shellLog, "utf8").split("\n") : [];
  return { tasks, events, integrity, shellLog: lines, derived: derivedProblems(dbPath) };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const log = options.log ?? (() => undefined);
  const opts = {
    kills: options.kills,
    seed: options.seed >>> 0,
    tasks: options.tasks,
    leaseMs: options.leaseMs ?? PERSONA_TIMING_DEFAULT.leaseMs,
    reapIntervalMs: options.reapIntervalMs ?? 150,
    maxRunMs: options.maxRunMs ?? 1_500,
    binaryEvery: options.binaryEvery ?? 4,
    drainTimeoutMs: options.drainTimeoutMs ?? 180_000,
  };
  if (!Number.isInteger(opts.kills) || opts.kills < 0) throw new Error(`kills: must be an integer >= 0, got ${opts.kills}`);
  if (!Number.isInteger(opts.tasks) || opts.tasks < 1) throw new Error(`tasks: must be a positive integer, got ${opts.tasks}`);
  const random = seededRandom(opts.seed);
  const root = repoRoot();
  for (const file of [join(root, "dist", "src", "cli", "bin.js"), join(root, "dist", "src", "main.js")]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  }

  const dir = mkdtempSync(join(tmpdir(), "roster-chaos-"));
  const build = snapshotBuild(root, join(dir, "build"));
  const bin = join(build, "cli", "bin.js");
  const childScript = join(root, "bench", "chaos", "supervisor.mjs");
  const personasDir = join(dir, "personas");
  mkdirSync(personasDir);
  const dbPath = join(dir, "roster.db");
  const shellLog = join(dir, "shell-runs.log");
  const supervisorLog = join(dir, "supervisors.log");
  writeFileSync(shellLog, "");
  writeChaosPersonas(personasDir, { timing: { leaseMs: opts.leaseMs, maxAttempts: PERSONA_TIMING_DEFAULT.maxAttempts }, workScript: join(root, "bench", "chaos", "work.mjs"), shellLog });

  // The runner opens the database only after the first supervisors: they create it (migrations, persona sync) and are killed doing so.
  let opened: Store | null = null;
  const openRunnerStore = async (): Promise<Store> => {
    if (opened === null) {
      opened = await openStore({ path: dbPath });
      await syncPersonas(opened, personasDir, Date.now());
    }
    return opened;
  };
  const failures: string[] = [];
  const unexpectedExits: string[] = [];
  let kills = 0;
  let killsBeforeReady = 0;
  let terms = 0;
  let gracefulStops = 0;
  let overlapKills = 0;
  let drained = false;
  let drainExitCode: number | null = null;
  let figures: ChaosFigures;
  try {
    // The tasks arrive in batches spread over the kills, so every stretch of the run has work.
    const batches = Math.max(1, Math.ceil(opts.tasks / BATCH_SIZE));
    const enqueued: number[] = [];
    let nextBatch = 0;
    const enqueueDue = async (cycle: number) => {
      while (nextBatch < batches && (opts.kills === 0 || Math.floor((nextBatch * opts.kills) / batches) <= cycle)) {
        const size = Math.min(BATCH_SIZE, opts.tasks - nextBatch * BATCH_SIZE);
        const tasks = chaosBatch({ random, size, batch: nextBatch, earlier: enqueued, maxAttempts: PERSONA_TIMING_DEFAULT.maxAttempts });
        const { ids } = await (await openRunnerStore()).tasks.enqueue({ tasks, createdBy: "chaos", now: Date.now() });
        enqueued.push(...ids);
        nextBatch++;
      }
    };

    const baseConfig = {
      dbPath,
      personasDir,
      logLevel: "warn",
      threads: 2,
      concurrency: 8,
      pollIntervalMs: 50,
      reapIntervalMs: opts.reapIntervalMs,
      // Short, so a SIGTERM often aborts running attempts and releases their leases before the kill.
      shutdownGraceMs: 300,
      metrics: { enabled: false },
    };
    // A cycle whose supervisor stopped gracefully on its SIGTERM delivered no kill: cycles go on until `kills` kills landed.
    for (let cycle = 0; kills < opts.kills && cycle < 2 * opts.kills + 10; cycle++) {
      const fresh = cycle < FRESH_CYCLES && kills < FRESH_CYCLES;
      if (!fresh) await enqueueDue(cycle);
      // Draw every random number of the cycle first: the schedule depends on the seed only.
      const early = random() < 0.15 || fresh;
      const delayMs = early ? randomInt(random, 0, 700) : randomInt(random, 0, opts.maxRunMs);
      // Sometimes SIGTERM first (graceful stop: releases, deregistration), then SIGKILL in the middle of it.
      const term = !early && random() < 0.2;
      const termMs = randomInt(random, 0, 1_300);
      // Sometimes a second supervisor runs beside this one (a restart that overlaps a slow death) and is killed on its own clock.
      const companion = random() < 0.2 && !fresh;
      const companionMs = randomInt(random, 200, opts.maxRunMs + 700);
      const binary = opts.binaryEvery > 0 && cycle % opts.binaryEvery === opts.binaryEvery - 1;
      const side = companion ? startChild([childScript, JSON.stringify(baseConfig), build], supervisorLog, `cycle ${cycle} companion supervisor.mjs`, /^ready /m) : null;
      const sideDone =
        side === null
          ? Promise.resolve()
          : (async () => {
              const t = timeout(companionMs);
              await Promise.race([t.promise, side.exit]);
              t.cancel();
              if (side.exited) {
                const { code, signal } = await side.exit;
                unexpectedExits.push(`cycle ${cycle} (companion): exited on its own (code ${code}, signal ${signal}): ${side.stderrTail().trim().slice(-1_000)}`);
                return;
              }
              side.process.kill("SIGKILL");
              const { signal } = await side.exit;
              if (signal === "SIGKILL") {
                kills++;
                overlapKills++;
                if (!side.isReady) killsBeforeReady++;
              } else {
                unexpectedExits.push(`cycle ${cycle} (companion): exited before the kill landed (signal ${signal}): ${side.stderrTail().trim().slice(-1_000)}`);
              }
            })();
      try {
        const child = binary
          ? startChild([bin, "start", "--db", dbPath, "--personas", personasDir, "--no-metrics", "--threads", "2", "--log-level", "info"], supervisorLog, `cycle ${cycle} roster start`, /"msg":"supervisor started"/)
          : startChild([childScript, JSON.stringify(baseConfig), build], supervisorLog, `cycle ${cycle} supervisor.mjs`, /^ready /m);
        let wasReady = false;
        if (early) {
          const t = timeout(delayMs);
          await Promise.race([t.promise, child.exit]);
          t.cancel();
          wasReady = child.isReady;
        } else {
          const t = timeout(CHILD_READY_TIMEOUT_MS);
          const ready = await Promise.race([child.ready, t.promise]);
          t.cancel();
          wasReady = ready === true;
          if (ready === "timeout") failures.push(`cycle ${cycle}: the supervisor was not ready within ${CHILD_READY_TIMEOUT_MS} ms`);
          if (wasReady) {
            const run = timeout(delayMs);
            await Promise.race([run.promise, child.exit]);
            run.cancel();
          }
          if (term && !child.exited) {
            child.process.kill("SIGTERM");
            terms++;
            const grace = timeout(termMs);
            const ended = await Promise.race([grace.promise, child.exit]);
            grace.cancel();
            if (ended !== "timeout") {
              // Stopped gracefully before the kill: runStart returns 0 after a signal's clean stop.
              if (ended.code === 0) gracefulStops++;
              else unexpectedExits.push(`cycle ${cycle}: SIGTERM ended with code ${ended.code} (signal ${ended.signal}): ${child.stderrTail().trim().slice(-1_000)}`);
              continue;
            }
          }
        }
        // A SIGTERM'd supervisor may finish its clean stop between the grace timer and the kill.
        const stoppedCleanly = async () => term && (await child.exit).code === 0;
        if (child.exited) {
          const { code, signal } = await child.exit;
          if (await stoppedCleanly()) {
            gracefulStops++;
            continue;
          }
          unexpectedExits.push(`cycle ${cycle} (${binary ? "roster start" : "supervisor.mjs"}): exited on its own (code ${code}, signal ${signal}): ${child.stderrTail().trim().slice(-1_000)}`);
        } else {
          child.process.kill("SIGKILL");
          const { signal } = await child.exit;
          if (signal === "SIGKILL") {
            kills++;
            if (!wasReady) killsBeforeReady++;
          } else if (await stoppedCleanly()) {
            gracefulStops++;
            continue;
          } else {
            unexpectedExits.push(`cycle ${cycle}: exited before the kill landed (signal ${signal}): ${child.stderrTail().trim().slice(-1_000)}`);
          }
        }
        if (kills % 10 === 0 || kills === opts.kills) {
          const counts = await (await openRunnerStore()).tasks.counts();
          const open = Object.values(counts).reduce((n, s) => n + (s.pending ?? 0) + (s.waiting ?? 0) + (s.claimed ?? 0) + (s.in_progress ?? 0), 0);
          log(`cycle ${cycle + 1}: ${kills}/${opts.kills} kills, ${terms} SIGTERMs first (${gracefulStops} stopped before the kill), ${overlapKills} of a companion, ${open} tasks open`);
        }
      } finally {
        await sideDone;
      }
    }
    await enqueueDue(Number.MAX_SAFE_INTEGER);

    // The last supervisor: the real binary, after every lease has expired, until idle.
    const store = await openRunnerStore();
    await leasesExpired(store);
    log("final supervisor: roster start --exit-when-idle");
    const final = startChild(
      [bin, "start", "--db", dbPath, "--personas", personasDir, "--no-metrics", "--threads", "2", "--log-level", "warn", "--exit-when-idle"],
      supervisorLog,
      "final roster start --exit-when-idle",
      /$^/,
    );
    const t = timeout(opts.drainTimeoutMs);
    const ended = await Promise.race([final.exit, t.promise]);
    t.cancel();
    if (ended === "timeout") {
      final.process.kill("SIGKILL");
      await final.exit;
      failures.push(`the final roster start did not reach idle within ${opts.drainTimeoutMs} ms`);
    } else {
      drained = ended.code === 0;
      drainExitCode = ended.code;
      if (!drained) failures.push(`the final roster start exited with ${ended.code} (signal ${ended.signal}): ${final.stderrTail().trim().slice(-1_000)}`);
    }

    figures = checkChaos(await snapshot(store, shellLog, dbPath));
  } finally {
    await (opened as Store | null)?.close();
  }
  failures.push(...unexpectedExits);
  if (kills < opts.kills) failures.push(`${kills} of ${opts.kills} kills landed on a live supervisor`);
  if (figures.duplicates > 0) failures.push(`${figures.duplicates} duplicates`);
  if (figures.lost > 0) failures.push(`${figures.lost} lost tasks`);
  failures.push(...figures.violations);
  const ok = failures.length === 0;
  if (ok && options.keep !== true) rmSync(dir, { recursive: true, force: true });
  return {
    seed: opts.seed,
    options: opts,
    kills,
    killsBeforeReady,
    terms,
    gracefulStops,
    overlapKills,
    unexpectedExits,
    drained,
    drainExitCode,
    figures,
    wallMs: Date.now() - started,
    loadAverage: { before: loadBefore, after: loadavg()[0]! },
    dir,
    ok,
    failures,
  };
}
