import type { Clock } from "../clock.js";
import { RosterError, coerceError, toErrorObject, type ErrorObject } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Persona } from "../personas/schema.js";
import { adapterTask } from "../adapters/task-view.js";
import type { AdapterTask } from "../adapters/types.js";
import type { PoolOutcome, PoolRun } from "../pool/pool-types.js";
import { REPORT_PROGRESS, REPORT_USAGE, type WorkerReport } from "../pool/protocol.js";
import type { AttemptUsage, ClaimedTask, LeaseRef, Store } from "../store/index.js";
import { setLongTimeout } from "../timers.js";
import type { RunOutcome, SupervisorEventBus } from "./events.js";
import { SHUTDOWN_FORCE_MS, type RunningStat } from "./options.js";
import { LeasesLostHere } from "./lost-here.js";
import { abortError, freesAtOutcome, isLive, type AbortKind, type RunningAttempt } from "./run.js";
import { StartWrites } from "./start-writes.js";

export interface AttemptsHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events: SupervisorEventBus;
  readonly agentId: string;
  /** Sends an abort to these pool runs (never to a task: docs/ARCHITECTURE.md rule 12). */
  abortRuns(runIds: number[], reason: ErrorObject): void;
  /** An attempt finished in the pool: its outcome goes to the completer. */
  finished(run: RunningAttempt, outcome: PoolOutcome): void;
  /** The attempt's slot is free (at its outcome, or at its settlement: freesAtOutcome): claim into it. */
  slotFreed(run: RunningAttempt): void;
  /** A live attempt reported progress (for the progress writer). */
  progressed(run: RunningAttempt): void;
  /** A live attempt reported its running usage total (for the budget watch). */
  used(run: RunningAttempt, total: AttemptUsage): void;
  error(where: string, error: Error): void;
}

/**
 * The attempts a supervisor holds, from claim until their settlement commits:
 * keyed by lease token (one task can have two here at once, an attempt still
 * stopping after a cancel and its retry, so nothing is keyed by task id:
 * docs/ARCHITECTURE.md rule 12) and by pool run id (its worker's reports).
 *
 * Each attempt moves through its phases (RunningAttempt.phase, ./run.ts) only
 * here: `hold` makes it `dispatched` (timeout armed; its start queued after
 * startFoldMs with its dispatch's, so one that finishes sooner settles claimed → completed
 * without a start write, the start fold: ./start-writes.ts), `beginStarts` makes it `started`
 * (the starts due together share a transaction), `abort` makes it `aborting`, `finish` makes it
 * `finished` (its slot is free from then on, see `running`), and `settle` removes it
 * once the completer has committed or discarded its outcome.
 */
export class Attempts {
  private readonly byLease = new Map<string, RunningAttempt>();
  private readonly byRunId = new Map<number, RunningAttempt>();
  /** Held attempts that hold a slot (RunningAttempt.slot): the slots in use. */
  private slots = 0;
  private readonly starts: StartWrites;
  private idleWaiters: Array<() => void> = [];
  private leaseCheck: Promise<void> | null = null;
  private leaseCheckAgain = false;
  /** Leases lost while their attempts ran here, to give back (src/store/lost-leases.ts). */
  private readonly lostHere: LeasesLostHere;

  constructor(
    private readonly host: AttemptsHost,
    startFoldMs: number,
  ) {
    this.lostHere = new LeasesLostHere(host);
    const begin = (runs: readonly RunningAttempt[]) => this.beginStarts(runs);
    this.starts = new StartWrites({ store: host.store, begin, lost: (run) => this.abort(run, "lease-lost"), error: (where, error) => host.error(where, error) }, startFoldMs);
  }

  /** Every attempt held, its settlement committed or not. */
  get size(): number {
    return this.byLease.size;
  }

  /** Slots in use: a finished attempt's slot frees at its outcome or its commit (freesAtOutcome); its lease is held, renewed and counted by the store until the commit. */
  get running(): number {
    return this.slots;
  }

  values(): IterableIterator<RunningAttempt> {
    return this.byLease.values();
  }

  /** The attempt holding this lease here, if any. */
  get(lease: LeaseRef): RunningAttempt | undefined {
    const run = this.byLease.get(lease.leaseToken);
    return run !== undefined && run.task.id === lease.taskId ? run : undefined;
  }

  leases(): LeaseRef[] {
    const leases: LeaseRef[] = [];
    for (const run of this.byLease.values()) leases.push({ taskId: run.task.id, leaseToken: run.task.leaseToken });
    return leases;
  }

  /** What these held attempts free once settled: the slots they still hold, and how many are each persona's. */
  leaving(runs: readonly RunningAttempt[]): { slots: number; byPersona: Map<string, number> } {
    let slots = 0;
    const byPersona = new Map<string, number>();
    for (const run of runs) {
      if (run.slot) slots++;
      byPersona.set(run.task.persona, (byPersona.get(run.task.persona) ?? 0) + 1);
    }
    return { slots, byPersona };
  }

  /** This persona's attempts held here, settled or not: what the store counts against its concurrency. */
  countOf(persona: string): number {
    let n = 0;
    for (const run of this.byLease.values()) if (run.task.persona === persona) n++;
    return n;
  }

  /** A claimed task becomes a dispatched attempt: held by its lease, its timeout armed, its start queued. `claimSentAt`: monotonic time its claim was sent. */
  private hold(task: ClaimedTask, persona: Persona, now: number, claimSentAt: number): RunningAttempt {
    const run: RunningAttempt = {
      task,
      runId: 0,
      persona,
      dispatchedAt: now,
      renewedAt: claimSentAt,
      phase: "dispatched",
      abort: null,
      timeoutTimer: null,
      progress: null,
      slot: true,
    };
    // A task's own policy.timeoutMs has no upper bound: past what one setTimeout holds it
    // would fire after 1 ms and time the attempt out at once.
    run.timeoutTimer = setLongTimeout(() => this.abort(run, "timeout"), task.timeoutMs);
    this.byLease.set(task.leaseToken, run);
    this.slots++;
    return run;
  }

  /**
   * Claimed tasks of one persona become attempts handed to the pool in one message (`runTasks`,
   * given each task's one view, adapterTask): held, announced (task:run-started), each bound to its
   * run id and finished with its outcome; if the pool refuses the message, each finishes failed.
   */
  run(claimed: readonly ClaimedTask[], persona: Persona, now: number, claimSentAt: number, runTasks: (tasks: AdapterTask[]) => PoolRun[]): void {
    const runs = claimed.map((task) => this.hold(task, persona, now, claimSentAt));
    this.starts.armAll(runs);
    if (this.host.events.listenerCount("task:run-started") > 0) {
      for (const run of runs) this.host.events.emit("task:run-started", { taskId: run.task.id, persona: run.task.persona, attempt: run.task.attempt });
    }
    let poolRuns: PoolRun[];
    try {
      poolRuns = runTasks(claimed.map(adapterTask));
    } catch (error) {
      const e = toErrorObject(error);
      for (const run of runs) this.finish(run, { taskId: run.task.id, ok: false, error: e, aborted: false });
      return;
    }
    // A claim holds distinct tasks, so within this dispatch the task id finds the attempt.
    const byTask = new Map(runs.map((run) => [run.task.id, run]));
    for (const poolRun of poolRuns) {
      const run = byTask.get(poolRun.taskId)!;
      run.runId = poolRun.runId;
      this.byRunId.set(poolRun.runId, run);
      void poolRun.outcome.then((outcome) => this.finish(run, outcome));
    }
  }

  finish(run: RunningAttempt, outcome: PoolOutcome): void {
    if (run.phase === "finished") return;
    run.phase = "finished";
    if (freesAtOutcome(run, outcome)) this.freeSlot(run);
    this.clearTimers(run);
    this.host.finished(run, outcome);
  }

  /** Its slot is free from now on; once per attempt. */
  private freeSlot(run: RunningAttempt): void {
    if (!run.slot) return;
    run.slot = false;
    this.slots--;
    this.host.slotFreed(run);
  }

  abort(run: RunningAttempt, kind: AbortKind, why?: RosterError): void {
    if (!isLive(run)) return;
    run.phase = "aborting";
    run.abort = kind;
    run.timeoutTimer?.clear();
    run.timeoutTimer = null;
    const { id, attempt, persona } = run.task;
    // Made once, here: the pool sends this object to the thread, whose outcome brings it back unchanged to be recorded.
    const reason: ErrorObject = toErrorObject(why ?? abortError(run, kind));
    // A cancel or a stop is somebody's decision, not a fault: info.
    this.host.logger[kind === "shutdown" || kind === "cancelled" ? "info" : "warn"]({ taskId: id, persona, attempt, reason: kind }, "aborting attempt");
    this.host.events.emit("task:aborting", { taskId: id, persona, attempt, reason: kind });
    // Addressed to this attempt's run, never to the task: its next attempt must not hear it.
    this.host.abortRuns([run.runId], reason);
  }

  /** Tasks claimed after a stop began: handed straight back, their attempts not counted. */
  handBack(tasks: readonly ClaimedTask[]): void {
    for (const task of tasks) {
      this.host.store.tasks
        .releaseIfLeased({ taskId: task.id, leaseToken: task.leaseToken, reason: "supervisor shutting down", now: this.host.clock.now() })
        .catch((error: unknown) => this.host.error("supervisor.release", coerceError(error)));
    }
  }

  /** Gives back the leases the reaper took while their attempts ran here (./lost-here.ts). */
  giveBackLost(): Promise<void> {
    return this.lostHere.giveBack();
  }

  /** Aborts the attempts held here under these leases (the store says they are no longer ours). */
  abortLeases(leases: Iterable<LeaseRef & { status?: string | null }>, kind: AbortKind = "lease-lost"): void {
    for (const lease of leases) {
      const run = this.get(lease);
      if (run !== undefined) this.abort(run, lease.status === "cancelled" ? "cancelled" : kind);
    }
  }

  /** A cancel is for the task: every attempt of it held here stops (a retry's attempt comes after the cancel). */
  abortTasks(taskIds: readonly number[], kind: AbortKind): void {
    const ids = new Set(taskIds);
    for (const run of this.byLease.values()) if (ids.has(run.task.id)) this.abort(run, kind);
  }

  /**
   * Its outcome is committed (or discarded): it leaves the table. False when it was not held
   * (settled already). Logs a discarded result and emits task:run-finished.
   */
  settle(run: RunningAttempt, outcome: RunOutcome, errorCode: string | undefined, errorMessage?: string): boolean {
    if (this.byLease.get(run.task.leaseToken) !== run) return false;
    this.byLease.delete(run.task.leaseToken);
    run.phase = "finished";
    this.freeSlot(run);
    this.byRunId.delete(run.runId);
    const { id: taskId, attempt, persona } = run.task;
    // Alive to hear of it, this holder lost the lease to its own silence (a cut link, a freeze), not
    // to its task: the lease, if the reaper took it, is given back (docs/ARCHITECTURE.md rule 6).
    if (outcome === "lease-lost" && run.abort !== "cancelled") this.lostHere.add({ taskId, leaseToken: run.task.leaseToken });
    if (outcome === "lease-lost" && run.abort === "cancelled") this.host.logger.info({ taskId, attempt }, "task cancelled: result discarded");
    else if (outcome === "lease-lost" && run.abort === "db-unreachable") {
      this.host.logger.warn({ taskId, attempt }, "late write refused (LEASE_LOST): the lease was reaped while the database was unreachable; another holder retries the task");
    } else if (outcome === "lease-lost") this.host.logger.warn({ taskId, attempt }, "lease lost: result discarded");
    if (this.host.events.listenerCount("task:run-finished") > 0) {
      this.host.events.emit("task:run-finished", {
        taskId,
        persona,
        attempt,
        durationMs: this.host.clock.now() - run.dispatchedAt,
        outcome,
        ...(errorCode === undefined ? {} : { errorCode }),
        ...(errorMessage === undefined ? {} : { errorMessage }),
      });
    }
    return true;
  }

  /** A worker's report: progress and usage of a live attempt, or a log line. */
  report(report: WorkerReport): void {
    const run = this.byRunId.get(report.runId);
    if (run === undefined) return;
    if (report.type === REPORT_PROGRESS) {
      if (!isLive(run)) return;
      run.progress = { fraction: report.fraction, message: report.message };
      this.host.events.emit("progress:reported", { taskId: report.taskId, persona: run.task.persona, attempt: report.attempt, fraction: report.fraction, message: report.message });
      this.host.progressed(run);
      return;
    }
    if (report.type === REPORT_USAGE) {
      this.host.used(run, report.total);
      return;
    }
    const child = this.host.logger.child({ taskId: report.taskId, persona: run.task.persona, attempt: report.attempt, agentId: this.host.agentId });
    child[report.level](report.data ?? {}, report.message);
  }

  /**
   * After another process wrote: are the leases held here still ours? A `roster
   * cancel` from another terminal then reaches its running attempt within moments,
   * not at the next renewal (up to leaseMs/3 later), and is logged as a cancel.
   * One read; at most one at a time (a write meanwhile asks again after it).
   */
  async checkLeases(active: () => boolean): Promise<void> {
    if (this.leaseCheck !== null) {
      this.leaseCheckAgain = true;
      return;
    }
    if (this.byLease.size === 0 || !active()) return;
    this.leaseCheck = (async () => {
      do {
        this.leaseCheckAgain = false;
        try {
          this.abortLeases(await this.host.store.tasks.leasesGone({ leases: this.leases() }));
        } catch (error) {
          this.host.error("supervisor.leasesGone", coerceError(error));
        }
      } while (this.leaseCheckAgain && active());
    })();
    await this.leaseCheck;
    this.leaseCheck = null;
  }

  /** A renewal sent at `sentAt` (monotonic) committed for these leases. */
  renewed(leases: readonly LeaseRef[], sentAt: number): void {
    for (const lease of leases) {
      const run = this.get(lease);
      if (run !== undefined) run.renewedAt = Math.max(run.renewedAt, sentAt);
    }
  }

  /**
   * Keeps attempts running only while their leases can still be renewed: one whose
   * last committed renewal was sent a whole lease ago may be reaped by another host
   * now (its judge counts from when it saw the stamp move, which is later), so it is
   * aborted; its outcome is then released uncounted, or refused (LEASE_LOST) if it
   * was reaped meanwhile (docs/ARCHITECTURE.md rule 17).
   */
  abortOverdue(now: number): void {
    for (const run of this.byLease.values()) if (isLive(run) && now - run.renewedAt >= run.task.leaseMs) this.abort(run, "db-unreachable");
  }

  /** Resolves once none is held, or after timeoutMs (config.shutdownGraceMs has no upper bound: setLongTimeout). */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.byLease.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setLongTimeout(done, timeoutMs);
      function done(): void {
        timer.clear();
        resolve();
      }
      this.idleWaiters.push(done);
    });
  }

  /** After settlements: wakes whoever waits for none to be held. */
  notifyIfIdle(): void {
    if (this.byLease.size > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const done of waiters) done();
  }

  /**
   * The "attempts" service's stop (docs/ARCHITECTURE.md rule 10): running attempts get graceMs to
   * finish; the rest are aborted (their leases released uncounted), and if some still have not
   * stopped after the abort grace (+ SHUTDOWN_FORCE_MS), `terminate` ends every thread. Then the
   * starts queued so far are written.
   */
  async drain(graceMs: number, abortGraceMs: number, terminate: () => Promise<void>): Promise<void> {
    await this.whenIdle(graceMs);
    if (this.byLease.size > 0) {
      const runs = [...this.byLease.values()];
      this.host.logger.warn({ running: runs.length }, "shutdown grace over: aborting the attempts still running; their leases are released");
      for (const run of runs) this.abort(run, "shutdown");
      await this.whenIdle(abortGraceMs + SHUTDOWN_FORCE_MS);
      if (this.byLease.size > 0) {
        await terminate();
        await this.whenIdle(SHUTDOWN_FORCE_MS);
      }
    }
    await this.starts.written();
  }

  /** What each held attempt is doing, for stats (the live status, /healthz). */
  stats(): RunningStat[] {
    return [...this.byLease.values()].map((run) => {
      const { id: taskId, persona, title, attempt } = run.task;
      return { taskId, persona, title, attempt, startedAt: run.dispatchedAt, progress: run.progress?.fraction ?? null, message: run.progress?.message ?? null, aborting: run.abort };
    });
  }

  /** Stopped: no timer of any held attempt fires any more. */
  clearAllTimers(): void {
    for (const run of this.byLease.values()) this.clearTimers(run);
    this.starts.clearTimers();
  }

  private clearTimers(run: RunningAttempt): void {
    run.timeoutTimer?.clear();
    run.timeoutTimer = null;
  }

  /** The starts due to be written (./start-writes.ts): those still dispatched become started. */
  private beginStarts(runs: readonly RunningAttempt[]): RunningAttempt[] {
    const batch = runs.filter((run) => run.phase === "dispatched");
    for (const run of batch) run.phase = "started";
    return batch;
  }
}
