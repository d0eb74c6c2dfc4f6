import { systemClock, type Clock } from "../clock.js";
import type { Config } from "../config.js";
import { RosterError, type ErrorObject } from "../errors.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import { toAdapterPersona } from "../personas/load.js";
import { servable } from "./personas.js";
import type { Persona } from "../personas/schema.js";
import { WorkerPool } from "../pool/pool.js";
import type { PoolOutcome } from "../pool/pool-types.js";
import { ServiceGroup } from "../service.js";
import type { AttemptUsage, ClaimedTask, Store } from "../store/index.js";
import { AgentRegistration } from "./agent.js";
import { Attempts } from "./attempts.js";
import { BudgetWatch } from "./budget-watch.js";
import { ClaimLoop, type JoinedPass } from "./claim-loop.js";
import { Completer } from "./completer.js";
import { ConnectionGuard } from "./connection.js";
import { SupervisorEventBus, type RunOutcome } from "./events.js";
import { IdleCheck } from "./idle.js";
import { LeaseKeeper, renewalIntervalMs } from "./lease-keeper.js";
import { checkOptions, poolOptions, type SupervisorOptions, type SupervisorStats } from "./options.js";
import { PERSONA_RELOAD_MS_DEFAULT, PersonaReloader } from "./persona-reloader.js";
import { Producers, type PersonaProducer } from "./producer.js";
import { PROGRESS_FLUSH_MS_DEFAULT, ProgressWriter } from "./progress-writer.js";
import { GateWaker } from "./provider-pauses.js";
import { Reaper } from "./reaper.js";
import { releaseAtExit } from "./exit-at-once.js";
import type { RunningAttempt } from "./run.js";
import { Scheduler } from "./scheduler.js";
import { StallGuard } from "./stall-guard.js";
import { Waker } from "./waker.js";

type State = "created" | "starting" | "running" | "stopping" | "stopped";

/**
 * The supervisor: turns ready tasks into work on the worker pool and keeps every
 * attempt's lease until its outcome is committed.
 *
 * States (one field, `state`): created → starting (its services start in their
 * declared order, see the constructor; a failure stops those started and ends in
 * stopped) → running → stopping (the services stop in reverse order) → stopped.
 * Only while running does the claim loop (./claim-loop.ts: idle, scheduled,
 * claiming, claiming-again, backing-off) run passes: whenever the Waker says tasks
 * may be ready or a slot frees up, each PersonaProducer claims `min(persona
 * concurrency - its held leases, global free slots)` in one statement. A completion's
 * slot frees at its outcome, not at its settlement's commit, so claims overlap the
 * completer's transactions; the limits hold because the store counts the task leased
 * until the commit (docs/ARCHITECTURE.md, data path 7). Claimed attempts go to the
 * pool, held in Attempts (./attempts.ts) through their phases (./run.ts). Outcomes go
 * to the Completer, which commits them in batches; the LeaseKeeper renews every
 * lease in one call per min(leaseMs)/3; the Reaper collects expired leases. While
 * the database is unreachable (./connection.ts, docs/ARCHITECTURE.md rule 17) no
 * pass and no reap runs, and an attempt a whole lease past its last committed
 * renewal is aborted (db-unreachable).
 * stop() (docs/ARCHITECTURE.md rule 10): stop claiming, let running attempts finish
 * within shutdownGraceMs, abort the rest and release their leases without counting
 * the attempt, deregister, close the pool. The store stays open: its owner closes it.
 */
export class Supervisor {
  readonly events = new SupervisorEventBus();
  /** Resolves with the stop reason once stopped ("idle", "signal" …). */
  readonly done: Promise<string>;

  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly monotonic: () => number;
  /** This supervisor's agent id ("" until registered). */
  get agentId(): string {
    return this.registration.id;
  }
  /** The one task served (SupervisorOptions.taskId), or null: every ready task of the personas. */
  readonly taskId: number | null;

  private readonly config: Config;
  private readonly capacity: number;
  private readonly exitWhenIdle: boolean;
  private readonly abortGraceMs: number;
  private readonly registration: AgentRegistration;
  private readonly retryFailures: boolean;
  private readonly producers: Producers;
  private readonly attempts: Attempts;
  private readonly claimLoop: ClaimLoop;
  private readonly pool: WorkerPool;
  private readonly completer: Completer;
  /** Whether the database answers; no claims or reaping while it does not (issue 19, deliverable 5; rule 17). */
  private readonly connection: ConnectionGuard;
  private readonly leaseKeeper: LeaseKeeper;
  private readonly waker: Waker;
  private readonly progressWriter: ProgressWriter;
  /** Checks running attempts' streamed usage against their budgets (docs/economics.md). */
  private readonly budgetWatch: BudgetWatch;
  /** Every service in its declared start order (stop runs it backwards): see the constructor. */
  private readonly services: ServiceGroup;
  private state: State = "created";
  private resolveDone!: (reason: string) => void;
  private stopping: Promise<void> | null = null;
  private lastTickAt: number | null = null;
  private readonly idle: IdleCheck;
  /** Attempts finished since slots:changed was last emitted. */
  private slotsDirty = false;

  constructor(options: SupervisorOptions) {
    this.store = options.store;
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger();
    this.capacity = options.config.concurrency;
    this.exitWhenIdle = options.exitWhenIdle ?? false;
    this.abortGraceMs = options.abortGraceMs ?? 2_000;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.taskId = options.taskId ?? null;
    this.retryFailures = options.retryFailures ?? true;
    const startFoldMs = checkOptions(options);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.producers = new Producers(options.personas, this);
    this.idle = new IdleCheck(this.store, this.taskId, this.logger, (where, error) => this.error(where, error), this.clock);
    this.connection = new ConnectionGuard({
      logger: this.logger,
      monotonic: this.monotonic,
      runningCount: () => this.attempts.size,
      unreachable: (reason) => this.events.emit("db:unreachable", { reason }),
      reachable: (afterMs) => {
        this.events.emit("db:reachable", { afterMs });
        this.wake(null);
        void this.waker.rescheduleRunAt();
      },
    });
    const report = (where: string, error: Error): void => this.error(where, error);
    this.registration = new AgentRegistration({
      store: this.store,
      clock: this.clock,
      agent: options.agent ?? null,
      maxLeaseMs: () => Math.max(...this.producers.all.map((p) => p.persona.leaseMs), 1_000),
      registered: () => this.connection.renewed(),
      // Leases reaped while their attempts ran here and not yet given back go back before the agent leaves.
      leaving: () => this.attempts.giveBackLost(),
      error: report,
    });
    const base = { store: this.store, clock: this.clock, error: report };
    // What a part built on the supervisor sees of it: agentId follows re-registration (a getter).
    const host = <T extends object>(extra: T) =>
      Object.defineProperty({ ...base, logger: this.logger, events: this.events, ...extra }, "agentId", { get: () => this.agentId }) as typeof base & T & { logger: Logger; events: SupervisorEventBus; readonly agentId: string };
    this.attempts = new Attempts(
      host({
        abortRuns: (runIds: number[], reason: ErrorObject) => this.pool.abort(runIds, reason),
        finished: (run: RunningAttempt, outcome: PoolOutcome) => this.onOutcome(run, outcome),
        slotFreed: () => this.onSlotFreed(),
        progressed: (run: RunningAttempt) => this.progressWriter.mark(run),
        used: (run: RunningAttempt, total: AttemptUsage) => this.budgetWatch.report(run, total),
      }),
      startFoldMs,
    );
    this.claimLoop = new ClaimLoop({
      clock: this.clock,
      producers: () => this.producers.all,
      free: () => this.free(),
      dispatch: (producer, claimed) => this.dispatch(producer, claimed),
      drained: (since) => void this.waker.rescheduleRunAt(since),
      ticked: () => this.onTick(false),
      canClaim: () => this.connection.canClaim,
      error: report,
    });

    this.pool = new WorkerPool({ ...poolOptions(options, this.abortGraceMs), onReport: (r) => this.attempts.report(r), onError: (error) => report("pool", error) });
    this.completer = new Completer(this);
    // Schedules' fires and approval deadlines (issue 17).
    const scheduler = new Scheduler(this);
    this.leaseKeeper = new LeaseKeeper(
      host({ attempts: this.attempts, connection: this.connection, monotonic: this.monotonic, reRegister: () => this.registration.register() }),
      renewalIntervalMs(options.personas),
    );
    // Cut off, this process's view of others' stamps is stale: it judges nobody until a renewal commits again.
    const reaper = new Reaper({ ...base, logger: this.logger, events: this.events, paused: () => !this.connection.reachable, lost: (leases) => this.attempts.abortLeases(leases) }, options.config.reapIntervalMs);
    this.waker = new Waker(
      {
        ...base,
        wake: (personas) => this.wake(personas),
        cancelled: (taskIds) => this.attempts.abortTasks(taskIds, "cancelled"),
        leaseExpired: (taskId, leaseToken) => this.attempts.abortLeases([{ taskId, leaseToken }]),
        externalWrite: () => void this.attempts.checkLeases(() => this.state === "running"),
        tick: () => this.onTick(true),
      },
      options.config.pollIntervalMs,
    );
    const stallGuard = new StallGuard(
      host({ monotonic: this.monotonic, producers: () => this.producers.all, free: () => this.free(), canClaim: () => this.connection.canClaim, wake: (p: readonly string[]) => this.wake(p) }),
      options.config.pollIntervalMs,
    );
    const personaReloader =
      options.reloadPersonas === false || this.taskId !== null
        ? null
        : new PersonaReloader(
            { ...base, update: (personas) => this.updatePersonas(personas) },
            options.config.personasDir,
            options.personaReloadMs ?? PERSONA_RELOAD_MS_DEFAULT,
          );
    this.progressWriter = new ProgressWriter(
      { ...base, lost: (run) => this.attempts.abort(run, "lease-lost") },
      options.progressFlushMs ?? PROGRESS_FLUSH_MS_DEFAULT,
    );
    this.budgetWatch = new BudgetWatch({ ...base, abortForBudget: (run, reason) => this.attempts.abort(run, "budget", reason) });
    // Wakes a persona when the economic gate that stopped its claim opens (docs/economics.md).
    const gateWaker = new GateWaker({ store: this.store, clock: this.clock, wake: (personas) => this.wake(personas) });
    // The declared order: start runs it first to last, stop last to first, and a start that throws
    // stops those already started (backwards). So a stop (docs/ARCHITECTURE.md rule 10) first ends the
    // claim loop, the wake-ups and the services that act on other tasks, then lets the running attempts finish (or
    // aborts them) while their leases are still renewed, then commits their settlements, then closes
    // the pool and deregisters the agent (which releases, uncounted, any lease still held).
    this.services = new ServiceGroup(
      [
        this.registration,
        { name: "pool", start: () => { this.pool.start(); return this.pool.ready(); }, stop: () => this.pool.close({ force: true }) },
        this.leaseKeeper,
        this.completer,
        this.progressWriter,
        { name: "attempts", start: () => {}, stop: () => this.attempts.drain(this.config.shutdownGraceMs, this.abortGraceMs, () => this.pool.close({ force: true })) },
        // One task served (roster run): nothing acts on the others (their dead leases, schedules, stalls).
        ...(this.taskId === null ? [reaper, scheduler, stallGuard] : []),
        ...(personaReloader === null ? [] : [personaReloader]),
        gateWaker,
        this.waker,
        this.claimLoop,
      ],
      report,
    );
  }

  /** The services' names in start order (stop runs backwards). */
  get serviceOrder(): string[] {
    return this.services.order.map((service) => service.name);
  }

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
    this.logger.info({ agentId: this.agentId, personas: this.producers.all.map((p) => p.id), capacity: this.capacity }, "supervisor started");
    this.events.emit("supervisor:started", { agentId: this.agentId });
    this.wake(null);
    void this.waker.rescheduleRunAt();
  }

  /** Graceful stop (docs/ARCHITECTURE.md rule 10); idempotent. */
  stop(reason = "stop"): Promise<void> {
    if (this.stopping === null) this.stopping = this.shutdown(reason);
    return this.stopping;
  }

  /** An exit at once: the leases still held here given back in one bounded write (./exit-at-once.ts); how many were. */
  releaseHeldAtExit(): Promise<number> {
    return releaseAtExit(this.store, this.attempts.leases(), this.clock.now());
  }

  stats(): SupervisorStats {
    return { busy: this.attempts.running, capacity: this.capacity, lastTickAt: this.lastTickAt, running: this.attempts.stats() };
  }

  get isRunning(): boolean {
    return this.state === "running";
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
    this.logger.info({ reason, running: this.attempts.size }, "supervisor stopping");
    this.events.emit("supervisor:stopping", { reason, running: this.attempts.size });
    await this.services.stop();
    this.attempts.clearAllTimers();
    this.state = "stopped";
    this.logger.info({ reason, agentId: this.agentId }, "supervisor stopped");
    this.events.emit("supervisor:stopped", { reason, agentId: this.agentId });
    this.resolveDone(reason);
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
    const valid = servable(personas, this.config, (error) => this.error("personas.reload", error));
    const { added, changed, removed } = this.producers.replace(valid, (persona) => this.attempts.countOf(persona));
    this.pool.setPersonas(valid.map(toAdapterPersona));
    this.leaseKeeper.shortenTo(renewalIntervalMs(valid));
    if (added.length + changed.length + removed.length > 0) {
      this.logger.info({ added, changed, removed }, "personas reloaded");
      this.events.emit("personas:reloaded", { added, changed, removed });
    }
    this.wake([...added, ...changed]);
  }

  /** Marks producers dirty (all with null) and asks the claim loop for a pass. */
  wake(personas: readonly string[] | null): void {
    this.producers.wake(personas);
    this.claimLoop.request();
  }

  private dispatch(producer: PersonaProducer, claimed: ClaimedTask[]): void {
    if (!this.claimLoop.accepting) {
      // Claimed while a stop began: hand them straight back.
      this.attempts.handBack(claimed);
      return;
    }
    const kind = producer.persona.adapter.kind;
    producer.running += claimed.length;
    this.attempts.run(claimed, producer.persona, this.clock.now(), producer.lastClaimAttemptAt, (tasks) => this.pool.runTasks(tasks, () => kind));
    this.markSlots();
  }

  /** Slots free to claim into; at most `capacity` outcomes wait for a commit, so a store that stops committing stops claims too. */
  private free(running = this.attempts.running, held = this.attempts.size): number {
    return Math.min(this.capacity - running, 2 * this.capacity - held);
  }

  /** An attempt's slot is free (./attempts.ts, `running`): claim soon. */
  private onSlotFreed(): void {
    this.slotsDirty = true;
    this.claimLoop.requestSoon();
  }

  /** A finished attempt's outcome, to the completer. */
  private onOutcome(run: RunningAttempt, outcome: PoolOutcome): void {
    // --no-retry: the attempt's own failure is its last (a release is not a failure of its own).
    if (!this.retryFailures && !outcome.ok && !("released" in outcome)) outcome = { ...outcome, error: { ...outcome.error, retryable: false } };
    // The attempts one goal crossing stopped settle together (./budget-watch.ts).
    if (this.budgetWatch.holdBack(run, outcome, (items) => items.forEach((item) => this.completer.add(item.run, item.outcome)))) return;
    this.completer.add(run, outcome);
  }

  /** From the completer, once the attempt's outcome is committed (or discarded). */
  settled(run: RunningAttempt, outcome: RunOutcome, errorCode: string | undefined, errorMessage?: string): void {
    if (!this.attempts.settle(run, outcome, errorCode, errorMessage)) return;
    // The store counts a persona's leases until their settlements commit (its concurrency): so does its producer.
    const producer = this.producers.get(run.task.persona);
    if (producer !== undefined) producer.running--;
    this.progressWriter.forget(run);
    this.budgetWatch.forget(run);
  }

  /**
   * From the completer, before it commits a batch: the claims to make in the same transaction
   * (./claim-loop.ts, joinSettle), the slots and persona leases the batch frees counted as free.
   */
  joinClaims(runs: readonly RunningAttempt[]): JoinedPass | null {
    const { slots, byPersona } = this.attempts.leaving(runs);
    const freed = this.free(this.attempts.running - slots, this.attempts.size - runs.length) - this.free();
    return this.claimLoop.joinSettle(freed, (producer) => byPersona.get(producer.id) ?? 0);
  }

  /** From the completer, after each committed batch. */
  batchDone(): void {
    // One task served: is it done? Asked once this batch's flush is over (the completer is busy until then).
    if (this.taskId !== null) setImmediate(() => this.checkIdle());
    if (this.slotsDirty) this.markSlots();
    this.attempts.notifyIfIdle();
    this.claimLoop.request();
  }

  private markSlots(): void {
    this.slotsDirty = false;
    this.events.emit("slots:changed", { busy: this.attempts.running, capacity: this.capacity });
  }

  /** The loop is alive (a claim pass ended, or the poll ticked): loop:tick; a poll also checks whether the work is done. */
  private onTick(poll: boolean): void {
    this.lastTickAt = this.clock.now();
    this.events.emit("loop:tick", { at: this.lastTickAt });
    if (poll && (this.exitWhenIdle || this.taskId !== null)) this.checkIdle();
  }

  /** exitWhenIdle, or one task served: stop once the work is done (./idle.ts), never while something of it runs here. */
  private checkIdle(): void {
    const busy = () => this.state !== "running" || this.attempts.size > 0 || this.completer.pending > 0 || this.claimLoop.claiming;
    void this.idle.check(busy, (reason) => void this.stop(reason));
  }

  /** Something an operator must act on that is not a failure here (src/supervisor/scheduler.ts: a schedule paused for its persona): no stack. */
  warn(where: string, message: string): void {
    this.logger.warn({ where }, `supervisor: ${message}`);
  }

  error(where: string, error: Error): void {
    // The database being unreachable is logged once by the guard (and once more when it answers again).
    if (this.connection.failed(where, error)) this.logger.debug({ err: error, where }, `supervisor: ${where} failed`);
    else this.logger.error({ err: error, where }, `supervisor: ${where} failed`);
    this.events.emit("supervisor:error", { where, error });
  }
}
