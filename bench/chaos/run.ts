/**
 * The crash suite (issues 7 and 12): a run of mixed tasks with dependencies, during
 * which supervisor processes are killed with SIGKILL at seeded random moments and
 * restarted, many times, and some cycles add one fault of issue 12 (faults.ts:
 * SIGSTOP past the leases, cancel + retry of running work, a hung adapter beside
 * innocent tasks, a held write lock across due times, a full disk, kill -9 of
 * shell leaders with grandchildren, a skewed clock); then one `roster start
 * --exit-when-idle` runs until idle, and checks.ts judges the database with the
 * run's history (history.ts).
 *
 * Modes of one cycle: enqueue the batches due → spawn a supervisor (runStart in
 * bench/chaos/supervisor.mjs with short reaper and poll intervals; every
 * `binaryEvery`-th one is the real `roster start` binary) → either kill it at a
 * random moment after spawning (often before it is ready: during its persona sync
 * and start-up reap), or wait until it is ready and kill it at a random moment
 * while it works, sometimes sending SIGTERM first so the kill lands inside the
 * graceful shutdown (releases, deregistration) → wait for its exit. A fault cycle
 * waits until the supervisor is ready, runs its fault, lets it work a while
 * after the fault ended, then kills it. Every random draw comes from the seed, in
 * the same order whatever the timing, so `--seed` replays the schedule.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store, type TaskEvent } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { repoRoot } from "../lib/paths.js";
import { checkChaos, type ChaosFigures } from "./checks.js";
import { openChaosDatabase, type ChaosDatabase } from "./database.js";
import { endSupervisor, sleep, startSupervisor, timeout, type Child } from "./child.js";
import { cancelFault, diskFault, hangFault, leaderFault, lockFault, readTreeLog, stopFault, type FaultContext } from "./faults.js";
import { emptyHistory, FAULT_KINDS, type ChaosHistory, type FaultKind, type SupervisorRecord } from "./history.js";
import { chaosBatch, HANG_TIMEOUT_MS, hangBatch, PERSONA_TIMING_DEFAULT, treeBatch, writeChaosPersonas } from "./plan.js";
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
  /** Share of cycles (after the first of each kind) that get a fault of issue 12. Default 0.3. */
  faultRate?: number;
  /** Faults to leave out of the mix (e.g. ["disk"]). Default none. */
  skipFaults?: FaultKind[];
  /** Longest write lock held by the harness, in ms. Default 12000. */
  maxLockMs?: number;
  /** Longest the disk stays full, in ms. Default 5000. */
  maxDiskMs?: number;
  /** Longest a fault cycle's supervisor works on after its fault ended, in ms (at least 800). Default 2500. */
  maxPostFaultMs?: number;
  /** The skewed supervisor's clock offset, in ms (its sign drawn per skew). Default 30000. */
  skewMs?: number;
  /**
   * A postgres:// URL of an empty database: the run uses it instead of a SQLite file in
   * its folder (issue 19). The full-disk fault is left out there (the server's disk is
   * not the runner's to fill). Default: SQLite.
   */
  db?: string;
  /** Keep the temp folder (database, personas, logs) even when every check passes. */
  keep?: boolean;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  options: Required<Omit<ChaosOptions, "log" | "keep" | "db">>;
  /** "sqlite" or "postgres". */
  engine: ChaosDatabase["engine"];
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
  /** Faults injected, by kind (skipped ones not counted). */
  faults: Record<string, number>;
  /** How the full disk was made: "tmpfs N MiB" or why it could not be. */
  diskMode: string;
  history: ChaosHistory;
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
const CHILD_READY_TIMEOUT_MS = 60_000;
/** The database's tmpfs, in MiB: room for the database and its WAL, and what the ballast fills. */
const DISK_MB = 128;
/** `roster start`'s poll interval and concurrency (the binary has no flags for them). */
const BINARY_POLL_MS = 250;
const BINARY_CONCURRENCY = 256;
/** How often the runner samples the largest task_events id (the event clock), in ms. */
const EVENT_CLOCK_MS = 40;
export const STALL_WARNING = "ready task waited past the stall bound";

/** Mounts a tmpfs of DISK_MB at `path` (root only); null and the reason when it cannot. */
function mountTmpfs(path: string): { dir: string | null; mode: string } {
  mkdirSync(path, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${DISK_MB}m`, "tmpfs", path], { stdio: "pipe" });
    return { dir: path, mode: `tmpfs ${DISK_MB} MiB under the run folder, filled by a ballast file` };
  } catch (error) {
    return { dir: null, mode: `no full-disk fault: mount -t tmpfs failed (${String((error as { stderr?: Buffer }).stderr ?? error).trim().slice(0, 200)})` };
  }
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

/** Everything the checks read: tasks, each task's events, integrity, derived state, the shell script's log. */
export async function snapshot(store: Store, shellLog: string, database: ChaosDatabase, history?: ChaosHistory) {
  const tasks = await store.tasks.list({ limit: 0 });
  const events = new Map<number, TaskEvent[]>();
  for (const task of tasks) events.set(task.id, await store.tasks.events({ taskId: task.id, limit: 0 }));
  const integrity = await store.maintenance.integrityCheck();
  const lines = existsSync(shellLog) ? readFileSync(shellLog, "utf8").split("\n") : [];
  return { tasks, events, integrity, shellLog: lines, derived: await database.derivedProblems(), ...(history === undefined ? {} : { history }) };
}


/** The agents table's ids by pid, for supervisors the runner never saw ready (killed during start-up, or the final one). */
async function fillAgentIds(database: ChaosDatabase, records: SupervisorRecord[]): Promise<void> {
  const agents = await database.agents();
  for (const r of records) {
    if (r.agentId !== null) continue;
    const match = agents.filter((a) => a.pid === r.pid && a.registeredAt - (r.measuredOffsetMs ?? r.clockOffsetMs) >= r.spawnAt - 1_000).shift();
    if (match !== undefined) r.agentId = match.id;
  }
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
    faultRate: options.faultRate ?? 0.3,
    skipFaults: options.skipFaults ?? [],
    maxLockMs: options.maxLockMs ?? 12_000,
    maxDiskMs: options.maxDiskMs ?? 5_000,
    maxPostFaultMs: Math.max(800, options.maxPostFaultMs ?? 2_500),
    skewMs: options.skewMs ?? 30_000,
  };
  if (!Number.isInteger(opts.kills) || opts.kills < 0) throw new Error(`kills: must be an integer >= 0, got ${opts.kills}`);
  if (!Number.isInteger(opts.tasks) || opts.tasks < 1) throw new Error(`tasks: must be a positive integer, got ${opts.tasks}`);
  const postgres = options.db !== undefined;
  // The full disk is a fault of the SQLite file's filesystem; PostgreSQL's disk is the server's.
  const faultKinds = FAULT_KINDS.filter((k) => !opts.skipFaults.includes(k) && !(postgres && k === "disk"));
  const random = seededRandom(opts.seed);
  const root = repoRoot();
  for (const file of [join(root, "dist", "src", "cli", "bin.js"), join(root, "dist", "src", "main.js")]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  }

  const dir = mkdtempSync(join(tmpdir(), "roster-chaos-"));
  const build = snapshotBuild(root, join(dir, "build"));
  const bin = join(build, "cli", "bin.js");
  const chaosDir = join(root, "bench", "chaos");
  const childScript = join(chaosDir, "supervisor.mjs");
  const personasDir = join(dir, "personas");
  mkdirSync(personasDir);
  const disk = faultKinds.includes("disk")
    ? mountTmpfs(join(dir, "disk"))
    : { dir: null, mode: postgres ? "no full-disk fault on PostgreSQL (the server's disk is not the runner's to fill)" : "no full-disk fault (left out)" };
  const dbPath = options.db ?? join(disk.dir ?? dir, "roster.db");
  const database = openChaosDatabase(dbPath);
  const shellLog = join(dir, "shell-runs.log");
  const treeLog = join(dir, "tree.log");
  const supervisorLog = join(dir, "supervisors.log");
  writeFileSync(shellLog, "");
  writeFileSync(treeLog, "");
  writeChaosPersonas(personasDir, {
    timing: { leaseMs: opts.leaseMs, maxAttempts: PERSONA_TIMING_DEFAULT.maxAttempts },
    workScript: join(chaosDir, "work.mjs"),
    shellLog,
    treeScript: join(chaosDir, "tree.mjs"),
    treeLog,
    hangModule: join(chaosDir, "hang.mjs"),
  });
  const history = emptyHistory(opts.leaseMs);

  // The runner opens the database only after the first supervisors: they create it (migrations, persona sync) and are killed doing so.
  let opened: Store | null = null;
  let sampler: { timer: NodeJS.Timeout; sample(): Promise<void> } | null = null;
  const openRunnerStore = async (): Promise<Store> => {
    if (opened === null) {
      opened = await openStore({ path: dbPath });
      await syncPersonas(opened, personasDir, Date.now());
      // The event clock: the largest task_events id, sampled; an event committed between the last sample without it and the first with it.
      let last: [number, number] | null = null;
      let sampling = false;
      const sample = async () => {
        if (sampling) return; // a PostgreSQL read still out: skip this tick
        sampling = true;
        const read = await database.maxEventId();
        sampling = false;
        if (read === null) return;
        const id = read;
        // Stamped when the read returned, as on SQLite (there the read is synchronous); a PostgreSQL read takes a millisecond or so.
        const now = Date.now();
        const clock = history.eventClock;
        if (last !== null && id !== last[1] && clock[clock.length - 1] !== last) clock.push(last);
        const current: [number, number] = [now, id];
        if (clock.length === 0 || id !== clock[clock.length - 1]![1]) clock.push(current);
        last = current;
      };
      await sample();
      sampler = { timer: setInterval(() => void sample(), EVENT_CLOCK_MS), sample };
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
    const chaosSupervisor = (cycle: number, label: string, clockOffsetMs = 0) =>
      startSupervisor({ args: [childScript, JSON.stringify(baseConfig), build], logFile: supervisorLog, label, binary: false, cycle, pollIntervalMs: baseConfig.pollIntervalMs, concurrency: baseConfig.concurrency, clockOffsetMs, records: history.supervisors });
    const binarySupervisor = (cycle: number, label: string, extra: string[] = []) =>
      startSupervisor({
        args: [bin, "start", "--db", dbPath, "--personas", personasDir, "--no-metrics", "--threads", "2", "--log-level", "info", ...extra],
        logFile: supervisorLog,
        label,
        binary: true,
        cycle,
        pollIntervalMs: BINARY_POLL_MS,
        concurrency: BINARY_CONCURRENCY,
        records: history.supervisors,
      });
    // The first non-fresh cycles bring one fault of each kind, so even a short run has them all.
    let forced = 0;
    // A cycle whose supervisor stopped gracefully on its SIGTERM delivered no kill: cycles go on until `kills` kills landed.
    for (let cycle = 0; kills < opts.kills && cycle < 2 * opts.kills + 10; cycle++) {
      const fresh = cycle < FRESH_CYCLES && kills < FRESH_CYCLES;
      if (!fresh) await enqueueDue(cycle);
      // Draw every random number of the cycle first: the schedule depends on the seed only.
      const earlyDraw = random() < 0.15 || fresh;
      const delayMs = earlyDraw ? randomInt(random, 0, 700) : randomInt(random, 0, opts.maxRunMs);
      // Sometimes SIGTERM first (graceful stop: releases, deregistration), then SIGKILL in the middle of it.
      const termDraw = !earlyDraw && random() < 0.2;
      const termMs = randomInt(random, 0, 1_300);
      // Sometimes a second supervisor runs beside this one (a restart that overlaps a slow death) and is killed on its own clock.
      const companionDraw = random() < 0.2 && !fresh;
      const companionMs = randomInt(random, 200, opts.maxRunMs + 700);
      const faultDraw = random();
      const faultPick = random();
      let fault: FaultKind | null = null;
      if (!fresh && faultKinds.length > 0) {
        if (forced < faultKinds.length) fault = faultKinds[forced++]!;
        else if (faultDraw < opts.faultRate) fault = faultKinds[Math.floor(faultPick * faultKinds.length)]!;
      }
      // The fault's own numbers come from a generator of the seed and the cycle, so they never shift the main schedule.
      const frand = seededRandom((opts.seed ^ Math.imul(cycle + 1, 0x9e3779b1)) >>> 0);
      const early = earlyDraw && fault === null;
      const term = termDraw && fault === null;
      const companion = (companionDraw && fault === null) || fault === "stop" || fault === "skew";
      const skewMs = fault === "skew" ? (frand() < 0.5 ? -opts.skewMs : opts.skewMs) : 0;
      const binary = fault !== "skew" && opts.binaryEvery > 0 && cycle % opts.binaryEvery === opts.binaryEvery - 1;
      const preMs = randomInt(frand, 100, 600);
      const postMs = randomInt(frand, 800, opts.maxPostFaultMs);

      // Tasks the fault needs running on this cycle's supervisor: enqueued before it starts.
      let hangIds: number[] = [];
      let treeIds: number[] = [];
      if (fault === "hang") {
        const store = await openRunnerStore();
        hangIds = (await store.tasks.enqueue({ tasks: hangBatch({ random: frand, cycle, innocents: randomInt(frand, 4, 6) }), createdBy: "chaos", now: Date.now() })).ids;
      } else if (fault === "leader") {
        const store = await openRunnerStore();
        treeIds = (await store.tasks.enqueue({ tasks: treeBatch({ random: frand, cycle, size: randomInt(frand, 2, 3) }), createdBy: "chaos", now: Date.now() })).ids;
      }

      let mainEnded: () => void = () => undefined;
      const mainDone = new Promise<void>((resolve) => (mainEnded = resolve));
      const side = companion ? chaosSupervisor(cycle, `cycle ${cycle} companion supervisor.mjs`) : null;
      const sideDone =
        side === null
          ? Promise.resolve()
          : (async () => {
              // Beside a fault, the companion lives as long as the cycle's supervisor; otherwise on its own clock.
              const t = timeout(companionMs);
              await Promise.race([fault === null ? t.promise : mainDone, side.child.exit]);
              t.cancel();
              if (side.child.exited) {
                const { code, signal } = await side.child.exit;
                unexpectedExits.push(`cycle ${cycle} (companion): exited on its own (code ${code}, signal ${signal}): ${side.child.stderrTail().trim().slice(-1_000)}`);
                return;
              }
              endSupervisor(side.child, side.record, "SIGKILL");
              const { signal } = await side.child.exit;
              if (signal === "SIGKILL") {
                kills++;
                overlapKills++;
                if (!side.child.isReady) killsBeforeReady++;
              } else {
                unexpectedExits.push(`cycle ${cycle} (companion): exited before the kill landed (signal ${signal}): ${side.child.stderrTail().trim().slice(-1_000)}`);
              }
            })();
      try {
        const { child, record } = binary
          ? binarySupervisor(cycle, `cycle ${cycle} roster start`)
          : chaosSupervisor(cycle, `cycle ${cycle} supervisor.mjs${skewMs === 0 ? "" : ` (clock ${skewMs > 0 ? "+" : ""}${skewMs} ms)`}`, skewMs);
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
          if (wasReady && fault !== null) {
            await runFault(fault, { child, record, preMs, postMs, hangIds, treeIds, skewMs, cycle, frand });
          } else if (wasReady) {
            const run = timeout(delayMs);
            await Promise.race([run.promise, child.exit]);
            run.cancel();
          }
          if (term && !child.exited) {
            endSupervisor(child, record, "SIGTERM");
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
          unexpectedExits.push(`cycle ${cycle} (${binary ? "roster start" : "supervisor.mjs"}${fault === null ? "" : `, fault ${fault}`}): exited on its own (code ${code}, signal ${signal}): ${child.stderrTail().trim().slice(-1_000)}`);
        } else {
          endSupervisor(child, record, "SIGKILL");
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
          log(`cycle ${cycle + 1}: ${kills}/${opts.kills} kills, ${terms} SIGTERMs first (${gracefulStops} stopped before the kill), ${overlapKills} of a companion, ${history.faults.length} faults, ${open} tasks open`);
        }
      } finally {
        mainEnded();
        await sideDone;
      }
    }
    await enqueueDue(Number.MAX_SAFE_INTEGER);

    // The last supervisor: the real binary, after every lease has expired, until idle.
    const store = await openRunnerStore();
    await leasesExpired(store);
    log("final supervisor: roster start --exit-when-idle");
    const final = binarySupervisor(Number.MAX_SAFE_INTEGER, "final roster start --exit-when-idle", ["--exit-when-idle"]);
    const t = timeout(opts.drainTimeoutMs);
    const ended = await Promise.race([final.child.exit, t.promise]);
    t.cancel();
    if (ended === "timeout") {
      endSupervisor(final.child, final.record, "SIGKILL");
      await final.child.exit;
      failures.push(`the final roster start did not reach idle within ${opts.drainTimeoutMs} ms`);
    } else {
      drained = ended.code === 0;
      drainExitCode = ended.code;
      if (!drained) failures.push(`the final roster start exited with ${ended.code} (signal ${ended.signal}): ${final.child.stderrTail().trim().slice(-1_000)}`);
    }
    history.endAt = Date.now();
    await (sampler as { sample(): Promise<void> } | null)?.sample();

    await fillAgentIds(database, history.supervisors);
    history.grandchildren = readTreeLog(treeLog).grandchildren;
    history.stallWarnings = existsSync(supervisorLog) ? readFileSync(supervisorLog, "utf8").split("\n").filter((l) => l.includes(STALL_WARNING)).length : 0;
    const snap = await snapshot(store, shellLog, database, history);
    figures = checkChaos(snap);
    // A private PostgreSQL cluster goes with the run: keep the trail beside the logs for a failed run's post-mortem.
    if (postgres && (figures.violations.length > 0 || figures.lost > 0 || figures.duplicates > 0)) {
      writeFileSync(join(dir, "task-events.json"), JSON.stringify({ tasks: snap.tasks, events: Object.fromEntries(snap.events) }));
    }
  } finally {
    const s = sampler as { timer: NodeJS.Timeout } | null;
    if (s !== null) clearInterval(s.timer);
    await database.close();
    await (opened as Store | null)?.close();
    if (disk.dir !== null) {
      // Keep the database beside the logs, then give the memory back.
      for (const name of ["roster.db", "roster.db-wal", "roster.db-shm"]) if (existsSync(join(disk.dir, name))) copyFileSync(join(disk.dir, name), join(dir, name));
      try {
        execFileSync("umount", [disk.dir], { stdio: "pipe" });
      } catch (error) {
        log(`umount ${disk.dir} failed: ${String(error).slice(0, 200)}`);
      }
    }
  }

  async function runFault(
    kind: FaultKind,
    p: { child: Child; record: SupervisorRecord; preMs: number; postMs: number; hangIds: number[]; treeIds: number[]; skewMs: number; cycle: number; frand: () => number },
  ): Promise<void> {
    const ctx: FaultContext = {
      cycle: p.cycle,
      random: p.frand,
      store: await openRunnerStore(),
      dbPath,
      database,
      bin,
      history,
      leaseMs: opts.leaseMs,
      maxLockMs: opts.maxLockMs,
      maxDiskMs: opts.maxDiskMs,
      diskDir: disk.dir,
      treeLog,
      supervisorLog,
      log,
    };
    const pre = timeout(p.preMs);
    await Promise.race([pre.promise, p.child.exit]);
    pre.cancel();
    if (p.child.exited) return;
    switch (kind) {
      case "stop":
        await stopFault(ctx, p.child, p.record);
        break;
      case "cancel":
        await cancelFault(ctx);
        break;
      case "hang":
        await hangFault(ctx, p.hangIds[0]!, p.hangIds.slice(1), HANG_TIMEOUT_MS);
        break;
      case "lock":
        await lockFault(ctx, join(chaosDir, "lock.mjs"));
        break;
      case "disk":
        await diskFault(ctx);
        break;
      case "leader":
        await leaderFault(ctx, p.treeIds);
        break;
      case "skew": {
        const from = Date.now();
        await sleep(randomInt(p.frand, 1_500, 3_000));
        history.faults.push({
          kind: "skew",
          cycle: p.cycle,
          from,
          to: Date.now(),
          detail: `${p.record.label}: ROSTER_CLOCK_OFFSET_MS=${p.skewMs}, measured ${p.record.measuredOffsetMs ?? "?"} ms in the process, beside a companion on the true clock`,
          taskIds: [],
        });
        break;
      }
    }
    const post = timeout(p.postMs);
    await Promise.race([post.promise, p.child.exit]);
    post.cancel();
  }

  failures.push(...unexpectedExits);
  if (kills < opts.kills) failures.push(`${kills} of ${opts.kills} kills landed on a live supervisor`);
  if (figures.duplicates > 0) failures.push(`${figures.duplicates} duplicates`);
  if (figures.lost > 0) failures.push(`${figures.lost} lost tasks`);
  for (const c of history.cancels) if (c.cancelled && !c.retried) failures.push(`cycle ${c.cycle}: roster retry of cancelled task ${c.taskId} refused: ${c.error}`);
  for (const s of history.supervisors) {
    // On PostgreSQL every process keeps the server's time whatever its wall clock says (docs/ARCHITECTURE.md,
    // rule 16): the skew asked of the wall clock must not show in the supervisor's clock.
    const expected = postgres ? 0 : s.clockOffsetMs;
    if (s.clockOffsetMs !== 0 && s.measuredOffsetMs !== null && Math.abs(s.measuredOffsetMs - expected) > 1_000) {
      failures.push(`${s.label}: clock offset ${s.clockOffsetMs} ms asked of the wall clock, ${s.measuredOffsetMs} ms measured in the process, ${expected} ms expected`);
    }
  }
  failures.push(...figures.violations);
  const ok = failures.length === 0;
  if (ok && options.keep !== true) rmSync(dir, { recursive: true, force: true });
  const faults: Record<string, number> = {};
  for (const f of history.faults) if (!f.detail.startsWith("skipped")) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
  return {
    seed: opts.seed,
    options: opts,
    engine: database.engine,
    kills,
    killsBeforeReady,
    terms,
    gracefulStops,
    overlapKills,
    unexpectedExits,
    drained,
    drainExitCode,
    figures,
    faults,
    diskMode: disk.mode,
    history,
    wallMs: Date.now() - started,
    loadAverage: { before: loadBefore, after: loadavg()[0]! },
    dir,
    ok,
    failures,
  };
}
