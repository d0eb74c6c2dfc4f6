import { hostname } from "node:os";
import { resolve } from "node:path";
import { adapterTask } from "../adapters/task-view.js";
import { systemClock, type Clock } from "../clock.js";
import type { Config } from "../config.js";
import { LeaseLostError, RosterError, coerceError, toErrorObject, type ErrorObject } from "../errors.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import { assertModulePaths, toAdapterPersona } from "../personas/load.js";
import type { Persona } from "../personas/schema.js";
import { WorkerPool, type PoolOutcome } from "../pool/pool.js";
import { REPORT_PROGRESS, REPORT_USAGE, type WorkerReport, type WorkerTask } from "../pool/protocol.js";
import type { ClaimedTask, LeaseRef, ReapResult, Store } from "../store/index.js";
import { Completer } from "./completer.js";
import { SupervisorEventBus, type RunOutcome } from "./events.js";
import { HEARTBEAT_INTERVAL_MS_MIN, LeaseKeeper } from "./lease-keeper.js";
import { PersonaProducer } from "./producer.js";
import { PROGRESS_FLUSH_MS_DEFAULT, ProgressWriter } from "./progress-writer.js";
import { Reaper } from "./reaper.js";
import { Scheduler } from "./scheduler.js";
import { PERSONA_RELOAD_MS_DEFAULT, PersonaReloader } from "./persona-reloader.js";
import { StallGuard } from "./stall-guard.js";
import type { AbortKind, RunningAttempt } from "./run.js";
import { RETRY_BASE_MS, RETRY_MAX_MS, Waker } from "./waker.js";
import { GateWaker } from "./provider-pauses.js";
import { ServiceGroup } from "../service.js";
import { BudgetWatch } from "./budget-watch.js";

/**
 * An attempt that settles within this long after dispatch goes claimed →
 * completed without its own start write (the start is folded into the
 * settlement); a longer one gets `in_progress` with started_at = its dispatch
 * time. Saves one transaction per short task. In ms.
 */
export const START_FOLD_MS_DEFAULT = 20;
/** After the shutdown aborts, how long to wait beyond the abort grace before terminating every thread, in ms. */
export const SHUTDOWN_FORCE_MS = 1_000;

export interface SupervisorOptions {
  store: Store;
  /** The personas to serve: one producer each. */
  personas: Persona[];
  /** concurrency, threads, pollIntervalMs, reapIntervalMs, shutdownGraceMs, maxPayloadBytes, personasDir, allowAbsoluteModules, logLevel. */
  config: Config;
  clock?: Clock;
  logger?: Logger;
  /** Stop once nothing is pending, waiting, running or scheduled in the database. */
  exitWhenIdle?: boolean;
  /** After an abort, how long an adapter gets before its thread is terminated, in ms. */
  abortGraceMs?: number;
  startFoldMs?: number;
  progressFlushMs?: number;
  /** Most batchable tasks per pool message. */
  batchSize?: number;
  agentName?: string;
  /** The monotonic clock (ms, any origin) the stall guard judges waits on; default performance.now. */
  monotonic?: () => number;
  /** Follow changes of config.personasDir and of the personas table while running (default true). */
  reloadPersonas?: boolean;
  /** How often the reloader looks, in ms (PERSONA_RELOAD_MS_DEFAULT). */
  personaReloadMs?: number;
  /**
   * Serve this one task only (`roster run`): it is claimed by id (tasks.claimById), never
   * another task of its persona, and the supervisor stops once it is completed, failed or
   * cancelled. The services that act on other tasks (reaper, scheduler, stall guard,
   * persona reloader) do not run.
   */
  taskId?: number;
  /** How the supervisor's agent row is named (default: a `supervisor` agent named for host and pid). */
  agent?: { name: string; kind: string; personaId?: string };
  /** false: a failed attempt is the last (`roster run --no-retry`); its error is recorded as not retryable. Default true. */
  retryFailures?: boolean;
}

export interface RunningStat {
  taskId: number;
  persona: string;
  title: string;
  attempt: number;
  startedAt: number;
  progress: number | null;
  message: string | null;
  aborting: AbortKind | null;
}

export interface SupervisorStats {
  busy: number;
  capacity: number;
  lastTickAt: number | null;
  running: RunningStat[];
}

type State = "created" | "starting" | "running" | "stopping" | "stopped";

/**
 * The supervisor: turns ready tasks into work on the worker pool and keeps every
 * attempt's lease until its outcome is committed.
 *
 * Modes: created → starting (register the agent, start the pool, reap once) →
 * running → stopping → stopped. While running, claim passes run whenever the
 * Waker says tasks may be ready or a slot frees up: each PersonaProducer claims
 * `min(persona concurrency - its running, global free slots)` in one statement;
 * the claimed attempts go to the pool (timeout timer armed); outcomes go to the
 * Completer, which commits them in batches; the LeaseKeeper renews every lease in
 * one call per min(leaseMs)/3; the Reaper collects expired leases. An attempt is
 * aborted on timeout, lost lease, cancellation or shutdown; a lost lease's result
 * is discarded. stop() (docs/ARCHITECTURE.md rule 10): stop claiming, let running attempts
 * finish within shutdownGraceMs, abort the rest and release their leases without
 * counting the attempt, deregister, close the pool. The store stays open: its
 * owner closes it.
 */
export class Supervisor {
  readonly events = new SupervisorEventBus();
  /** Resolves with the stop reason once stopped ("idle", "signal" …). */
  readonly done: Promise<string>;

  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxPayloadBytes: number;
  readonly monotonic: () => number;
  agentId = "";
  /** The one task served (SupervisorOptions.taskId), or null: every ready task of the personas. */
  readonly taskId: number | null;

  private readonly config: Config;
  private readonly capacity: number;
  private readonly exitWhenIdle: boolean;
  private readonly startFoldMs: number;
  private readonly abortGraceMs: number;
  private readonly agent: { name: string; kind: string; personaId?: string } | null;
  private readonly retryFailures: boolean;
  private producers: PersonaProducer[];
  private readonly byPersona = new Map<string, PersonaProducer>();
  /**
   * Attempts held, by lease token: one task can have two here at once (an attempt
   * still stopping after a cancel, and its retry), so nothing is keyed by task id
   * (docs/ARCHITECTURE.md, rule 12).
   */
  private readonly running = new Map<string, RunningAttempt>();
  /** The same attempts by pool run id, for their workers' progress and log reports. */
  private readonly byRunId = new Map<number, RunningAttempt>();
  private readonly pool: WorkerPool;
  private readonly completer: Completer;
  private readonly leaseKeeper: LeaseKeeper;
  private readonly reaper: Reaper;
  /** Schedules' fires and approval deadlines (issue 17). */
  private readonly scheduler: Scheduler;
  private readonly waker: Waker;
  /** Wakes a persona when the economic gate that stopped its claim opens (docs/economics.md). */
  private readonly gateWaker: GateWaker;
  private readonly progressWriter: ProgressWriter;
  /** Checks running attempts' streamed usage against their budgets (docs/economics.md). */
  private readonly budgetWatch: BudgetWatch;
  private state: State = "created";
  private resolveDone!: (reason: string) => void;
  private stopping: Promise<void> | null = null;
  private passRunning = false;
  private passAgain = false;
  private passScheduled = false;
  private roundRobin = 0;
  private lastTickAt: number | null = null;
  private idleChecking = false;
  private startQueue: RunningAttempt[] = [];
  private startWriting: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];
  private slotsDirty = false;
  private readonly stallGuard: StallGuard;
  private readonly personaReloader: PersonaReloader | null;
  /** Every service in its declared start order (stop runs it backwards): see the constructor. */
  private readonly services: ServiceGroup;
  /** Consecutive failed claim passes: the next is tried after a backoff, never left to a wake-up that may not come. */
  private claimFailures = 0;
  private claimRetry: NodeJS.Timeout | null = null;
  private leaseCheck: Promise<void> | null = null;
  private leaseCheckAgain = false;

  constructor(options: SupervisorOptions) {
    this.store = options.store;
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger();
    this.capacity = options.config.concurrency;
    this.maxPayloadBytes = options.config.maxPayloadBytes;
    this.exitWhenIdle = options.exitWhenIdle ?? false;
    this.startFoldMs = options.startFoldMs ?? START_FOLD_MS_DEFAULT;
    this.abortGraceMs = options.abortGraceMs ?? 2_000;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.taskId = options.taskId ?? null;
    this.agent = options.agent ?? null;
    this.retryFailures = options.retryFailures ?? true;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RosterError("CONFIG_INVALID", `config.concurrency: must be a positive integer, got ${this.capacity}`);
    if (!Number.isInteger(this.startFoldMs) || this.startFoldMs < 0) throw new RosterError("CONFIG_INVALID", `startFoldMs: must be an integer >= 0, got ${this.startFoldMs}`);
    const ids = new Set<string>();
    for (const persona of options.personas) {
      if (ids.has(persona.id)) throw new RosterError("CONFIG_INVALID", `personas: "${persona.id}" is given twice`);
      ids.add(persona.id);
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    // A persona served only by external agents gets no producer (docs/ARCHITECTURE.md, personas).
    this.producers = options.personas.filter((persona) => !persona.external).map((persona) => new PersonaProducer(persona, this));
    for (const producer of this.producers) this.byPersona.set(producer.id, producer);

    const personasDir = resolve(options.config.personasDir);
    assertModulePaths(options.personas, { personasDir, allowAbsoluteModules: options.config.allowAbsoluteModules });
    this.pool = new WorkerPool({
      threads: options.config.threads,
      concurrency: this.capacity,
      abortGraceMs: this.abortGraceMs,
      heapLimitMb: options.config.workerHeapLimitMb,
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      init: {
        personas: options.personas.map(toAdapterPersona),
        personasDir,
        allowAbsoluteModules: options.config.allowAbsoluteModules,
        maxPayloadBytes: options.config.maxPayloadBytes,
        logLevel: options.config.logLevel,
      },
      onReport: (report) => this.onReport(report),
      onError: (error) => this.error("pool", error),
    });
    this.completer = new Completer(this);
    this.scheduler = new Scheduler(this);
    const self = this;
    this.leaseKeeper = new LeaseKeeper(
      {
        store: this.store,
        clock: this.clock,
        get agentId() {
          return self.agentId;
        },
        leases: () => this.leases(),
        lost: (leases) => this.onLeasesLost(leases),
        reRegister: () => this.register(),
        renewed: (count, lost) => this.events.emit("lease:renewed", { count, lost }),
        error: (where, error) => this.error(where, error),
      },
      renewalIntervalMs(options.personas),
    );
    this.reaper = new Reaper(
      { store: this.store, clock: this.clock, reaped: (result) => this.onReaped(result), error: (where, error) => this.error(where, error) },
      options.config.reapIntervalMs,
    );
    this.waker = new Waker(
      {
        store: this.store,
        clock: this.clock,
        wake: (personas) => this.wake(personas),
        cancelled: (taskIds) => this.onCancelled(taskIds),
        leaseExpired: (taskId, leaseToken) => {
          const run = this.running.get(leaseToken);
          if (run !== undefined && run.task.id === taskId) this.abortRun(run, "lease-lost");
        },
        externalWrite: () => void this.checkLeasesHeld(),
        tick: () => this.onTick(),
        error: (where, error) => this.error(where, error),
      },
      options.config.pollIntervalMs,
    );
    this.stallGuard = new StallGuard(
      {
        store: this.store,
        clock: this.clock,
        monotonic: this.monotonic,
        producers: () =>
          this.producers.map((producer) => ({
            id: producer.id,
            lastClaimAttemptAt: producer.lastClaimAttemptAt,
            wantNow: () => producer.want(this.capacity - this.running.size),
          })),
        wake: (personas) => this.wake(personas),
        oldest: (persona, ageSeconds) => this.events.emit("ready:oldest", { persona, ageSeconds }),
        stalled: (stall) => {
          this.logger.warn(stall, "ready task waited past the stall bound beside a free slot with no claim tried");
          this.events.emit("stall:detected", stall);
        },
        error: (where, error) => this.error(where, error),
      },
      options.config.pollIntervalMs,
    );
    this.personaReloader =
      options.reloadPersonas === false || this.taskId !== null
        ? null
        : new PersonaReloader(
            { store: this.store, clock: this.clock, update: (personas) => this.updatePersonas(personas), error: (where, error) => this.error(where, error) },
            options.config.personasDir,
            options.personaReloadMs ?? PERSONA_RELOAD_MS_DEFAULT,
          );
    this.progressWriter = new ProgressWriter(
      { store: this.store, clock: this.clock, lost: (run) => this.abortRun(run, "lease-lost"), error: (where, error) => this.error(where, error) },
      options.progressFlushMs ?? PROGRESS_FLUSH_MS_DEFAULT,
    );
    this.budgetWatch = new BudgetWatch({
      store: this.store,
      clock: this.clock,
      abortForBudget: (run, reason) => this.abortRun(run, "budget", reason),
      error: (where, error) => this.error(where, error),
    });
    this.gateWaker = new GateWaker({ store: this.store, clock: this.clock, wake: (personas) => this.wake(personas) });
    // The declared order: start runs it first to last, stop last to first, and a start that throws
    // stops those already started (backwards). So a stop (docs/ARCHITECTURE.md rule 10) first ends the
    // wake-ups and the services that act on other tasks, then lets the running attempts finish (or
    // aborts them) while their leases are still renewed, then commits their settlements, then closes
    // the pool and deregisters the agent (which releases, uncounted, any lease still held).
    this.services = new ServiceGroup(
      [
        { name: "agent", start: () => this.register(), stop: () => this.deregister() },
        { name: "pool", start: () => this.pool.start(), stop: () => this.pool.close({ force: true }) },
        this.leaseKeeper,
        this.completer,
        this.progressWriter,
        { name: "attempts", start: () => {}, stop: () => this.drainAttempts() },
        // One task served (roster run): nothing acts on the others (their dead leases, schedules, stalls).
        ...(this.taskId === null ? [this.reaper, this.scheduler, this.stallGuard] : []),
        ...(this.personaReloader === null ? [] : [this.personaReloader]),
        this.gateWaker,
        this.waker,
      ],
      (where, error) => this.error(where, error),
    );
  }

  /** The services' names in start order (stop runs backwards). */
  get serviceOrder(): string[] {
    return this.services.order.map((service) => service.name);
  }

  // ---- lifecycle -------------------------------------------------------------

  async start(): Promise<void> {
    if (this.state !== "created") throw new RosterError("INVALID_STATE", `the supervisor is ${this.state}; start it once`);
    this.state = "starting";
    try {
      await this.services.start();
    } catch (error) {
      this.state = "stopped";
      this.resolveDone("failed to start");
      throw error;
    }
    this.state = "running";
    this.logger.info({ agentId: this.agentId, personas: this.producers.map((p) => p.id), capacity: this.capacity }, "supervisor started");
    this.events.emit("supervisor:started", { agentId: this.agentId });
    this.wake(null);
    void this.waker.rescheduleRunAt();
  }

  /** Graceful stop (docs/ARCHITECTURE.md rule 10); idempotent. */
  stop(reason = "stop"): Promise<void> {
    if (this.stopping === null) this.stopping = this.shutdown(reason);
    return this.stopping;
  }

  stats(): SupervisorStats {
    const running: RunningStat[] = [];
    for (const run of this.running.values()) {
      running.push({
        taskId: run.task.id,
        persona: run.task.persona,
        title: run.task.title,
        attempt: run.task.attempt,
        startedAt: run.dispatchedAt,
        progress: run.progress?.fraction ?? null,
        message: run.progress?.message ?? null,
        aborting: run.abort,
      });
    }
    return { busy: this.running.size, capacity: this.capacity, lastTickAt: this.lastTickAt, running };
  }

  get isRunning(): boolean {
    return this.state === "running";
  }

  private async register(): Promise<void> {
    const maxLeaseMs = Math.max(...this.producers.map((p) => p.persona.leaseMs), 1_000);
    const agent = await this.store.agents.register({
      ...(this.agentId === "" ? {} : { id: this.agentId }),
      ...(this.agent ?? { name: `supervisor ${hostname()}:${process.pid}`, kind: "supervisor" }),
      pid: process.pid,
      hostname: hostname(),
      heartbeatTimeoutMs: maxLeaseMs,
      now: this.clock.now(),
    });
    this.agentId = agent.id;
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.state === "created" || this.state === "stopped") {
      this.state = "stopped";
      this.resolveDone(reason);
      return;
    }
    while (this.state === "starting") await new Promise((r) => setTimeout(r, 10));
    if ((this.state as State) === "stopped") return;
    this.state = "stopping";
    this.logger.info({ reason, running: this.running.size }, "supervisor stopping");
    this.events.emit("supervisor:stopping", { reason, running: this.running.size });
    if (this.claimRetry !== null) clearTimeout(this.claimRetry);
    this.claimRetry = null;
    await this.services.stop();
    for (const run of this.running.values()) this.clearTimers(run);
    this.state = "stopped";
    this.logger.info({ reason, agentId: this.agentId }, "supervisor stopped");
    this.events.emit("supervisor:stopped", { reason, agentId: this.agentId });
    this.resolveDone(reason);
  }

  /**
   * The "attempts" service's stop: running attempts get shutdownGraceMs to finish; the rest are
   * aborted (their leases released uncounted), and threads whose attempts still do not stop
   * within the abort grace are terminated.
   */
  private async drainAttempts(): Promise<void> {
    await this.waitForIdle(this.config.shutdownGraceMs);
    if (this.running.size > 0) {
      const runs = [...this.running.values()];
      this.logger.warn({ running: runs.length }, "shutdown grace over: aborting the attempts still running; their leases are released");
      for (const run of runs) this.abortRun(run, "shutdown");
      await this.waitForIdle(this.abortGraceMs + SHUTDOWN_FORCE_MS);
      if (this.running.size > 0) {
        await this.pool.close({ force: true });
        await this.waitForIdle(SHUTDOWN_FORCE_MS);
      }
    }
    await this.startWriting;
  }

  private async deregister(): Promise<void> {
    try {
      // Releases, without counting, any lease still held (e.g. a settlement that could not commit).
      await this.store.agents.deregister({ agentId: this.agentId, now: this.clock.now() });
    } catch (error) {
      this.error("supervisor.deregister", coerceError(error));
    }
  }

  private waitForIdle(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.idleWaiters.push(done);
    });
  }

  /**
   * The personas changed while running (PersonaReloader: a file added, changed or
   * removed, a persona retired, `external` set): new ones get a producer and are
   * claimed at once, changed ones are claimed with their new settings (attempts
   * already running keep theirs), retired or external ones are no longer claimed
   * (their running attempts finish). Threads get the new definitions with their
   * next tasks. A persona whose module path is refused is reported and left out.
   */
  updatePersonas(personas: Persona[]): void {
    if (this.state !== "running" && this.state !== "starting") return;
    const personasDir = resolve(this.config.personasDir);
    const valid: Persona[] = [];
    for (const persona of personas) {
      try {
        assertModulePaths([persona], { personasDir, allowAbsoluteModules: this.config.allowAbsoluteModules });
        valid.push(persona);
      } catch (error) {
        this.error("personas.reload", coerceError(error));
      }
    }
    const before = new Map(this.producers.map((p) => [p.id, p]));
    const next: PersonaProducer[] = [];
    const added: string[] = [];
    const changed: string[] = [];
    for (const persona of valid.filter((p) => !p.external)) {
      const producer = before.get(persona.id);
      if (producer === undefined) {
        const fresh = new PersonaProducer(persona, this);
        fresh.running = this.runningOf(persona.id);
        next.push(fresh);
        added.push(persona.id);
        continue;
      }
      if (JSON.stringify(producer.persona) !== JSON.stringify(persona)) changed.push(persona.id);
      producer.persona = persona;
      next.push(producer);
    }
    const removed = [...before.keys()].filter((id) => !next.some((p) => p.id === id));
    this.producers = next;
    this.byPersona.clear();
    for (const producer of next) this.byPersona.set(producer.id, producer);
    this.pool.setPersonas(valid.map(toAdapterPersona));
    this.leaseKeeper.shortenTo(renewalIntervalMs(valid));
    if (added.length + changed.length + removed.length > 0) {
      this.logger.info({ added, changed, removed }, "personas reloaded");
      this.events.emit("personas:reloaded", { added, changed, removed });
    }
    this.wake([...added, ...changed]);
  }

  private runningOf(persona: string): number {
    let n = 0;
    for (const run of this.running.values()) if (run.task.persona === persona) n++;
    return n;
  }

  // ---- claiming ----------------------------------------------------------------

  /** Marks producers dirty (all with null) and schedules a claim pass. */
  wake(personas: readonly string[] | null): void {
    if (personas === null) for (const producer of this.producers) producer.wake();
    else for (const id of personas) this.byPersona.get(id)?.wake();
    this.schedulePass();
  }

  private schedulePass(): void {
    if (this.state !== "running") return;
    if (this.passRunning) {
      this.passAgain = true;
      return;
    }
    if (this.passScheduled) return;
    this.passScheduled = true;
    queueMicrotask(() => {
      this.passScheduled = false;
      void this.claimPass();
    });
  }

  private async claimPass(): Promise<void> {
    if (this.passRunning || this.state !== "running") return;
    this.passRunning = true;
    let drained = false;
    let failed = false;
    // Every claim of this pass is made at this time or later (see rescheduleRunAt).
    const passNow = this.clock.now();
    try {
      do {
        this.passAgain = false;
        const n = this.producers.length;
        const first = this.roundRobin++ % Math.max(1, n);
        for (let i = 0; i < n && this.state === "running"; i++) {
          const producer = this.producers[(first + i) % n]!;
          if (!producer.wanting) continue;
          const limit = producer.want(this.capacity - this.running.size);
          if (limit <= 0) continue;
          const claimed = await producer.claim(limit);
          if (claimed.length < limit) drained = true;
          if (claimed.length > 0) this.dispatch(producer, claimed);
        }
      } while (this.passAgain && this.state === "running");
      this.claimFailures = 0;
    } catch (error) {
      failed = true;
      this.error("supervisor.claim", coerceError(error));
    } finally {
      this.passRunning = false;
      this.lastTickAt = this.clock.now();
      this.events.emit("loop:tick", { at: this.lastTickAt });
    }
    if (failed) {
      // The producers that did not get to claim are still dirty; try again after a backoff
      // (docs/ARCHITECTURE.md, rule 13: a failed write never leaves the loop without a wake-up).
      this.retryClaimLater();
      return;
    }
    if (drained) void this.waker.rescheduleRunAt(passNow);
    if (this.passAgain) this.schedulePass();
  }

  private retryClaimLater(): void {
    if (this.claimRetry !== null || this.state !== "running") return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.claimFailures++);
    this.claimRetry = setTimeout(() => {
      this.claimRetry = null;
      this.schedulePass();
    }, delay);
  }

  private dispatch(producer: PersonaProducer, claimed: ClaimedTask[]): void {
    if (this.state !== "running") {
      // Claimed while a stop began: hand them straight back.
      for (const task of claimed) void this.releaseUnstarted(task);
      return;
    }
    const now = this.clock.now();
    const tasks: WorkerTask[] = [];
    const runs: RunningAttempt[] = [];
    for (const task of claimed) {
      const run: RunningAttempt = {
        task,
        runId: 0,
        persona: producer.persona,
        dispatchedAt: now,
        abort: null,
        started: false,
        finished: false,
        timeoutTimer: null,
        startTimer: null,
        progress: null,
      };
      run.timeoutTimer = setTimeout(() => this.abortRun(run, "timeout"), task.timeoutMs);
      if (this.startFoldMs === 0) this.queueStart(run);
      else run.startTimer = setTimeout(() => this.queueStart(run), this.startFoldMs);
      this.running.set(task.leaseToken, run);
      producer.running++;
      runs.push(run);
      tasks.push(adapterTask(task));
    }
    const hasListeners = this.events.listenerCount("task:run-started") > 0;
    if (hasListeners) for (const run of runs) this.events.emit("task:run-started", { taskId: run.task.id, persona: run.task.persona, attempt: run.task.attempt });
    this.markSlots();
    const kind = producer.persona.adapter.kind;
    let poolRuns;
    try {
      poolRuns = this.pool.runTasks(tasks, () => kind);
    } catch (error) {
      const e = toErrorObject(error);
      for (const run of runs) this.onOutcome(run, { taskId: run.task.id, ok: false, error: e, aborted: false });
      return;
    }
    // A claim holds distinct tasks, so within this dispatch the task id finds the attempt.
    const byTask = new Map(runs.map((run) => [run.task.id, run]));
    for (const poolRun of poolRuns) {
      const run = byTask.get(poolRun.taskId)!;
      run.runId = poolRun.runId;
      this.byRunId.set(poolRun.runId, run);
      void poolRun.outcome.then((outcome) => this.onOutcome(run, outcome));
    }
  }

  private async releaseUnstarted(task: ClaimedTask): Promise<void> {
    try {
      await this.store.tasks.releaseIfLeased({ taskId: task.id, leaseToken: task.leaseToken, reason: "supervisor shutting down", now: this.clock.now() });
    } catch (error) {
      this.error("supervisor.release", coerceError(error));
    }
  }

  // ---- attempts ------------------------------------------------------------------

  private queueStart(run: RunningAttempt): void {
    run.startTimer = null;
    if (run.finished || run.started) return;
    this.startQueue.push(run);
    // After this turn's timers: the fold timers of one dispatch fire together and share a transaction.
    if (this.startWriting === null) this.startWriting = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.writeStarts());
  }

  /** Start writes: whatever queued meanwhile goes in one transaction (each start fenced by its lease), drained in order. */
  private async writeStarts(): Promise<void> {
    while (this.startQueue.length > 0) {
      const batch = this.startQueue.filter((run) => !(run.finished || run.started || run.abort !== null));
      this.startQueue = [];
      if (batch.length === 0) continue;
      for (const run of batch) run.started = true;
      try {
        const results = await this.store.tasks.start({
          starts: batch.map((run) => ({ taskId: run.task.id, leaseToken: run.task.leaseToken })),
          now: Math.min(...batch.map((run) => run.dispatchedAt)),
        });
        results.forEach((result, i) => {
          if (!result.ok) this.abortRun(batch[i]!, "lease-lost");
        });
      } catch (error) {
        this.error("supervisor.start", coerceError(error));
      }
    }
    this.startWriting = null;
  }

  private onOutcome(run: RunningAttempt, outcome: PoolOutcome): void {
    // --no-retry: the attempt's own failure is its last (a release is not a failure of its own).
    if (!this.retryFailures && !outcome.ok && !("released" in outcome)) outcome = { ...outcome, error: { ...outcome.error, retryable: false } };
    run.finished = true;
    this.clearTimers(run);
    this.completer.add(run, outcome);
  }

  private clearTimers(run: RunningAttempt): void {
    if (run.timeoutTimer !== null) clearTimeout(run.timeoutTimer);
    if (run.startTimer !== null) clearTimeout(run.startTimer);
    run.timeoutTimer = null;
    run.startTimer = null;
  }

  abortRun(run: RunningAttempt, kind: AbortKind, why?: RosterError): void {
    if (run.abort !== null || run.finished) return;
    run.abort = kind;
    if (run.timeoutTimer !== null) clearTimeout(run.timeoutTimer);
    run.timeoutTimer = null;
    const { id, attempt } = run.task;
    const reason: ErrorObject = toErrorObject(
      why !== undefined
        ? why
        : kind === "timeout"
        ? new RosterError("TIMEOUT", `task ${id} attempt ${attempt} timed out after ${run.task.timeoutMs} ms`)
        : kind === "lease-lost"
          ? new LeaseLostError(id)
          : kind === "cancelled"
            ? new RosterError("ABORTED", `task ${id} was cancelled`, { retryable: false })
            : new RosterError("SHUTDOWN", `the supervisor is shutting down; task ${id} goes back to pending`),
    );
    // A cancel or a stop is somebody's decision, not a fault: info.
    this.logger[kind === "shutdown" || kind === "cancelled" ? "info" : "warn"]({ taskId: id, persona: run.task.persona, attempt, reason: kind }, "aborting attempt");
    this.events.emit("task:aborting", { taskId: id, persona: run.task.persona, attempt, reason: kind });
    // Addressed to this attempt's run, never to the task: its next attempt must not hear it.
    this.pool.abort([run.runId], reason);
  }

  /** From the completer, once the attempt's outcome is committed (or discarded). */
  settled(run: RunningAttempt, outcome: RunOutcome, errorCode: string | undefined, errorMessage?: string): void {
    if (this.running.get(run.task.leaseToken) !== run) return;
    this.running.delete(run.task.leaseToken);
    this.byRunId.delete(run.runId);
    const producer = this.byPersona.get(run.task.persona);
    if (producer !== undefined) producer.running--;
    this.progressWriter.forget(run);
    this.budgetWatch.forget(run);
    if (outcome === "lease-lost" && run.abort === "cancelled") this.logger.info({ taskId: run.task.id, attempt: run.task.attempt }, "task cancelled: result discarded");
    else if (outcome === "lease-lost") this.logger.warn({ taskId: run.task.id, attempt: run.task.attempt }, "lease lost: result discarded");
    if (this.events.listenerCount("task:run-finished") > 0) {
      this.events.emit("task:run-finished", {
        taskId: run.task.id,
        persona: run.task.persona,
        attempt: run.task.attempt,
        durationMs: this.clock.now() - run.dispatchedAt,
        outcome,
        ...(errorCode === undefined ? {} : { errorCode }),
        ...(errorMessage === undefined ? {} : { errorMessage }),
      });
    }
    this.slotsDirty = true;
  }

  batchDone(): void {
    if (this.taskId !== null) void this.checkIdle();
    if (this.slotsDirty) this.markSlots();
    if (this.running.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const done of waiters) done();
    }
    this.schedulePass();
  }

  private markSlots(): void {
    this.slotsDirty = false;
    this.events.emit("slots:changed", { busy: this.running.size, capacity: this.capacity });
  }

  private leases(): LeaseRef[] {
    const leases: LeaseRef[] = [];
    for (const run of this.running.values()) leases.push({ taskId: run.task.id, leaseToken: run.task.leaseToken });
    return leases;
  }

  private onLeasesLost(leases: LeaseRef[]): void {
    for (const lease of leases) {
      const run = this.running.get(lease.leaseToken);
      if (run !== undefined && run.task.id === lease.taskId) this.abortRun(run, "lease-lost");
    }
  }

  /** A cancel is for the task: every attempt of it held here stops (a retry's attempt comes after the cancel). */
  /**
   * After another process wrote: are the leases held here still ours? A `roster
   * cancel` from another terminal then reaches its running attempt within moments,
   * not at the next renewal (up to leaseMs/3 later), and is logged as a cancel.
   * One read; at most one at a time (a write meanwhile asks again after it).
   */
  private async checkLeasesHeld(): Promise<void> {
    if (this.leaseCheck !== null) {
      this.leaseCheckAgain = true;
      return;
    }
    if (this.running.size === 0 || this.state !== "running") return;
    this.leaseCheck = (async () => {
      do {
        this.leaseCheckAgain = false;
        try {
          for (const gone of await this.store.tasks.leasesGone({ leases: this.leases() })) {
            const run = this.running.get(gone.leaseToken);
            if (run !== undefined && run.task.id === gone.taskId) this.abortRun(run, gone.status === "cancelled" ? "cancelled" : "lease-lost");
          }
        } catch (error) {
          this.error("supervisor.leasesGone", coerceError(error));
        }
      } while (this.leaseCheckAgain && this.state === "running");
    })();
    await this.leaseCheck;
    this.leaseCheck = null;
  }

  private onCancelled(taskIds: readonly number[]): void {
    const cancelled = new Set(taskIds);
    for (const run of this.running.values()) if (cancelled.has(run.task.id)) this.abortRun(run, "cancelled");
  }

  private onReaped(result: ReapResult): void {
    const total = result.retried.length + result.failed.length + result.expiredAgents.length;
    if (total > 0) {
      this.logger.info({ retried: result.retried.length, failed: result.failed.length, expiredAgents: result.expiredAgents }, "reaper collected expired leases");
    }
    this.events.emit("reaper:ran", { retried: result.retried.length, failed: result.failed.length, expiredAgents: result.expiredAgents.length });
    // Our own attempts among them have lost their lease.
    for (const r of [...result.retried, ...result.failed]) {
      const run = this.running.get(r.leaseToken);
      if (run !== undefined && run.task.id === r.taskId) this.abortRun(run, "lease-lost");
    }
  }

  private onReport(report: WorkerReport): void {
    const run = this.byRunId.get(report.runId);
    if (run === undefined) return;
    if (report.type === REPORT_PROGRESS) {
      if (run.finished || run.abort !== null) return;
      run.progress = { fraction: report.fraction, message: report.message };
      this.events.emit("progress:reported", {
        taskId: report.taskId,
        persona: run.task.persona,
        attempt: report.attempt,
        fraction: report.fraction,
        message: report.message,
      });
      this.progressWriter.mark(run);
      return;
    }
    if (report.type === REPORT_USAGE) {
      this.budgetWatch.report(run, report.total);
      return;
    }
    const child = this.logger.child({ taskId: report.taskId, persona: run.task.persona, attempt: report.attempt, agentId: this.agentId });
    child[report.level](report.data ?? {}, report.message);
  }

  private onTick(): void {
    this.lastTickAt = this.clock.now();
    this.events.emit("loop:tick", { at: this.lastTickAt });
    if (this.exitWhenIdle || this.taskId !== null) void this.checkIdle();
  }

  /** exitWhenIdle: nothing pending, waiting, running or scheduled in this database; with a taskId: that task has ended. */
  private async checkIdle(): Promise<void> {
    if (this.state !== "running" || this.idleChecking || this.running.size > 0 || this.completer.pending > 0 || this.passRunning) return;
    this.idleChecking = true;
    try {
      if (this.taskId !== null) {
        const { status } = await this.store.tasks.get({ taskId: this.taskId, eventLimit: 0 });
        if ((status === "completed" || status === "failed" || status === "cancelled") && this.running.size === 0 && this.state === "running") void this.stop(status);
        return;
      }
      const counts = await this.store.tasks.counts();
      let open = 0;
      let parked = 0;
      let waiting = 0;
      for (const states of Object.values(counts)) {
        open += (states.pending ?? 0) + (states.claimed ?? 0) + (states.in_progress ?? 0);
        parked += (states.awaiting_approval ?? 0) + (states.awaiting_input ?? 0);
        waiting += states.waiting ?? 0;
      }
      // With nothing pending or running, waiting tasks wait on parked ones: only a person moves them, or an
      // approval's deadline default, which this supervisor applies (so it stays for one).
      if (open === 0 && parked === 0) open = waiting;
      else if (open === 0 && (await this.store.humans.listParked({ limit: 0 })).some((t) => t.request?.deadlineAt != null && t.request.defaultOutcome !== null)) open = parked;
      if (open === 0 && this.running.size === 0 && this.state === "running") {
        if (parked > 0) this.logger.info({ parked, waiting }, "exit when idle: nothing can run until a person answers or approves (roster answer / approve / reject)");
        void this.stop("idle");
      }
    } catch (error) {
      this.error("supervisor.checkIdle", coerceError(error));
    } finally {
      this.idleChecking = false;
    }
  }

  error(where: string, error: Error): void {
    this.logger.error({ err: error, where }, `supervisor: ${where} failed`);
    this.events.emit("supervisor:error", { where, error });
  }
}

/** How often the lease keeper renews: a third of the shortest lease served (at most 10 s, at least HEARTBEAT_INTERVAL_MS_MIN). */
function renewalIntervalMs(personas: readonly Persona[]): number {
  return Math.max(HEARTBEAT_INTERVAL_MS_MIN, Math.floor(Math.min(...personas.map((p) => p.leaseMs), 30_000) / 3));
}
