import pg from "pg";
import { clearReferenceClock, setReferenceClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import type { EconomicsService } from "../economics.js";
import { StoreEventBus } from "../events.js";
import { MAX_PAYLOAD_BYTES_DEFAULT, validateBatch } from "../input.js";
import { LivenessJudge } from "../liveness.js";
import type {
  AgentService,
  HumanService,
  LeaseRef,
  MaintenanceService,
  PersonaService,
  ScheduleService,
  Store,
  StoreOptions,
  TaskService,
  UiReadService,
  WhyService,
} from "../types.js";
import { PgTransactions, notifyChannel, type BackendRef, type Tx } from "./database.js";
import { PgListener } from "./listener.js";
import { newPool, translatePgError } from "./connection.js";
import { defaultPostgresMigrationsDir, migratePostgres } from "./migrate.js";
import { writeBatch } from "./enqueue.js";
import { pgAgentService } from "./agents.js";
import { pgMaintenanceService, pgPersonaService } from "./maintenance.js";
import * as agentReads from "./agent-reads.js";
import * as reads from "./reads.js";
import { PgHumans } from "./humans.js";
import { PgSchedules } from "./schedules.js";
import * as budgets from "./budgets.js";
import * as usage from "./usage.js";
import * as uiReads from "./ui-reads.js";
import * as whyReads from "./why.js";
import { PgTransitions } from "./transitions.js";
import { pgLeasePaths } from "./lease-paths.js";
import { PgLostClaims } from "./lost-claims.js";
import { ServerClock, type ClockMeasurement } from "./server-clock.js";
import { withOneTaskCalls, type EngineTaskService } from "../one-task.js";

/** Connections per store (supervisor: claims, renewals, settlements and reads overlap). */
export const PG_POOL_MAX_DEFAULT = 8;

/**
 * The PostgreSQL store (issue 19): the Store interface over a node-postgres pool, the
 * same rules as the SQLite store (docs/ARCHITECTURE.md) with SQL of its own
 * (src/store/postgres/) and migrations of its own (migrations/postgres/).
 *
 * Time: every method takes `now` from its caller, as the SQLite store does (the
 * conformance suite runs it under a ManualClock). One clock across hosts comes from
 * the caller's side: open() measures the server's clock (ServerClock) and makes it
 * systemClock's reference, so every caller that stamps with systemClock (the
 * supervisor, the CLI, `roster mcp`) writes run_at, stamps and audit times, and
 * compares run_at, on the server's time whatever its own wall clock says.
 * Liveness never compares clocks: the same LivenessJudge as SQLite decides who is
 * dead by stamps standing still on this process's monotonic clock.
 *
 * The claim's economic gates (budgets, provider pauses, breakers, rate limits,
 * concurrency keys) are src/store/postgres/gates.ts: one gate read per claim, row locks
 * where two hosts must not both take (a rate window's starts, a breaker's probe, a key's
 * places), settlements' effects written at the end of each transaction in one order.
 */
export class PostgresStore implements Store {
  readonly events = new StoreEventBus();
  readonly tasks: TaskService;
  readonly agents: AgentService;
  readonly personas: PersonaService;
  readonly maintenance: MaintenanceService;
  readonly economics: EconomicsService;
  readonly humans: HumanService;
  readonly schedules: ScheduleService;
  readonly why: WhyService;
  readonly ui: UiReadService;
  readonly judge: LivenessJudge;

  private readonly pool: pg.Pool;
  private readonly tx: PgTransactions;
  private readonly url: string;
  /** The database server's clock as this process sees it (src/store/postgres/server-clock.ts); systemClock follows it while the store is open. */
  readonly serverClock: ServerClock;
  /** Claims whose answer was lost, released once a later write commits (src/store/postgres/lost-claims.ts). */
  private readonly lostClaims: PgLostClaims;
  private closed = false;

  /** Opens the pool and applies migrations (under the advisory lock); use PostgresStore.open. */
  static async open(options: StoreOptions & { now?: number; poolMax?: number }): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      const { schema } = await migratePostgres(store.pool, {
        dir: options.migrationsDir ?? defaultPostgresMigrationsDir(),
        readonly: options.readonly ?? false,
        now: options.now ?? Date.now(),
        url: options.path,
      });
      store.tx.channel = notifyChannel(schema);
      await store.serverClock.measure();
      // Where transactions stand at open, as SQLite's data_version is taken at open: a write another process
      // commits before the first look (roster run's claim waiting on a dependency, say) is seen by that look.
      await store.tx.read("store.open", (q) => store.tx.own.start(q));
    } catch (error) {
      await store.pool.end().catch(() => {});
      throw translatePgError(error, "measuring the PostgreSQL server's clock", options.path);
    }
    // One clock for every host (issue 19): from now on this process stamps and compares store times on the server's.
    store.serverClock.start();
    setReferenceClock(store, store.serverClock);
    return store;
  }

  private constructor(options: StoreOptions & { now?: number; poolMax?: number }) {
    this.url = options.path;
    const maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes <= 0) throw new RosterError("CONFIG_INVALID", "maxPayloadBytes: must be a positive integer");
    this.pool = newPool(options.path, options.poolMax ?? PG_POOL_MAX_DEFAULT, options.readonly ?? false, { bounded: true });
    this.serverClock = new ServerClock(this.pool);
    const judge = new LivenessJudge(options.monotonic);
    this.judge = judge;
    const tx = new PgTransactions(this.pool, this.events, this.url, { onTransaction: options.onTransaction, onBusyRetry: options.onBusyRetry });
    this.tx = tx;
    const transitions = new PgTransitions(maxPayloadBytes);
    const humans = new PgHumans(transitions);

    /**
     * A write that tells the judge how long it kept this process (and so every holder here) from writing.
     * Once it commits, the connection is healthy: claims whose answer was lost are released (lostClaims).
     */
    const write = async <T>(name: string, body: (t: Tx) => Promise<T>, backend?: BackendRef): Promise<T> => {
      const started = judge.monotonic();
      try {
        // Settlements' effects on the economic gates are written at the end of each transaction, in one order (PgGates.within).
        const value = await tx.write(name, (t) => transitions.gates.within(t, body), backend);
        lostClaims.afterCommit();
        return value;
      } finally {
        judge.noteWrite(started);
      }
    };
    /** One statement as a whole transaction (PgTransactions.single), kept from the judge as a write. */
    const single = async <R, T>(name: string, sql: string, values: unknown[], then: (rows: R[], emit: Tx["emit"]) => T, backend?: BackendRef): Promise<T> => {
      const started = judge.monotonic();
      try {
        const value = await tx.single(name, sql, values, then, backend);
        lostClaims.afterCommit();
        return value;
      } finally {
        judge.noteWrite(started);
      }
    };
    const lostClaims = new PgLostClaims({ write, transitions, now: () => this.serverClock.now() });
    this.lostClaims = lostClaims;
    const read = <T>(name: string, body: (q: Pick<Tx, "rows" | "one">) => Promise<T>): Promise<T> => tx.read(name, body);

    const paths = pgLeasePaths({ write, single, judge, transitions, humans, lostClaims, maxPayloadBytes, channel: () => tx.channel });

    const tasks = {
      enqueue: async (p: Parameters<TaskService["enqueue"]>[0]) => {
        const batch = validateBatch(p.tasks, maxPayloadBytes);
        return write("tasks.enqueue", async (t) => {
          const written = await writeBatch(t, batch, { parentId: p.parentId ?? null, createdBy: p.createdBy ?? null, now: p.now });
          t.emit("task:enqueued", { ids: written.created, personas: written.personas, ready: written.statuses.filter((s) => s === "pending").length });
          return { ids: written.ids, refs: written.refs };
        });
      },
      listAvailable: async (p: Parameters<TaskService["listAvailable"]>[0]) => read("tasks.listAvailable", (q) => reads.availableTasks(q, p)),
      claim: paths.claim,
      start: async (p: Parameters<TaskService["start"]>[0]) =>
        p.starts.length === 0
          ? []
          : write("tasks.start", (t) => transitions.startMany(t, p.starts.map((s) => ({ ...s, now: p.now })))),
      progressIfLeased: async (p: Parameters<TaskService["progressIfLeased"]>[0]) => write("tasks.progress", (t) => transitions.progress(t, p)),
      settle: paths.settle,
      cancel: async (p: Parameters<TaskService["cancel"]>[0]) => write("tasks.cancel", (t) => transitions.commands.cancel(t, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      retry: async (p: Parameters<TaskService["retry"]>[0]) => write("tasks.retry", (t) => transitions.commands.retry(t, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      addDependency: async (p: Parameters<TaskService["addDependency"]>[0]) =>
        write("tasks.addDependency", (t) => transitions.commands.addDependency(t, { ...p, taskId: reads.assertTaskId(p.taskId), dependsOn: reads.assertTaskId(p.dependsOn, "dependsOn") })),
      get: async (p: Parameters<TaskService["get"]>[0]) => read("tasks.get", (q) => reads.getTask(q, reads.assertTaskId(p.taskId), p.eventLimit)),
      list: async (p: Parameters<TaskService["list"]>[0]) => read("tasks.list", (q) => reads.listTasks(q, p)),
      events: async (p: Parameters<TaskService["events"]>[0]) => read("tasks.events", (q) => reads.taskEvents(q, reads.assertTaskId(p.taskId), p.afterId, p.limit)),
      counts: async (p?: Parameters<TaskService["counts"]>[0]) => read("tasks.counts", (q) => reads.counts(q, p?.rootId)),
      running: async (p?: Parameters<TaskService["running"]>[0]) => read("tasks.running", (q) => reads.running(q, p)),
      nextRunAt: async (p: Parameters<TaskService["nextRunAt"]>[0]) => read("tasks.nextRunAt", (q) => reads.nextRunAt(q, p)),
      lineage: async (p: { taskIds: number[] }) => read("tasks.lineage", (q) => agentReads.lineage(q, p.taskIds)),
      completeOnce: async ({ now, ...rest }: Parameters<TaskService["completeOnce"]>[0]) =>
        write("tasks.completeOnce", (t) => agentReads.completeOnce(t, () => paths.settleOne(t, { kind: "complete", ...rest }, now, "refuse"), { ...rest, now })),
      leaseLoss: async (p: Parameters<TaskService["leaseLoss"]>[0]) => read("tasks.leaseLoss", (q) => agentReads.leaseLoss(q, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      resultPage: async (p: Parameters<TaskService["resultPage"]>[0]) => read("tasks.resultPage", (q) => agentReads.resultPage(q, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      enqueueGoal: async (p: Parameters<TaskService["enqueueGoal"]>[0]) => {
        const goal = validateBatch([p.goal], maxPayloadBytes)[0]!;
        const plan = validateBatch(p.tasks, maxPayloadBytes);
        return write("tasks.enqueueGoal", (t) => agentReads.enqueueGoal(t, transitions, goal, plan, { parentId: p.parentId ?? null, createdBy: p.createdBy ?? null, now: p.now }));
      },
      leasesGone: async (p: { leases: LeaseRef[] }) => read("tasks.leasesGone", (q) => reads.leasesGone(q, p.leases)),
      giveBack: async (p: { leases: LeaseRef[]; agentId: string; now: number }) => {
        if (p.leases.length === 0) return { given: [] };
        return write("tasks.giveBack", async (t) => {
          const given: LeaseRef[] = [];
          for (const l of p.leases) if (await transitions.giveBack(t, { ...l, agentId: p.agentId, now: p.now })) given.push(l);
          return { given };
        });
      },
      oldestReady: async (p: Parameters<TaskService["oldestReady"]>[0]) => read("tasks.oldestReady", (q) => reads.oldestReady(q, p)),
    };
    this.tasks = withOneTaskCalls(tasks as EngineTaskService);

    const services = { write, read, judge, transitions };
    this.agents = pgAgentService(services);
    this.maintenance = pgMaintenanceService(services);
    this.personas = pgPersonaService(services);

    // Usage per attempt and the claim's economic gates (rule 15): budgets, provider pauses, breakers, rate limits
    // and concurrency keys, as on SQLite (src/store/postgres/gates.ts, budgets.ts; the shared rules src/store/gates.ts).
    const gates = transitions.gates;
    this.economics = {
      usageOf: async (p) => read("economics.usageOf", (q) => usage.usageOf(q, reads.assertTaskId(p.taskId))),
      cost: async (p) => read("economics.cost", (q) => usage.cost(q, p.by, p.since ?? 0, p.rootId ?? null)),
      total: async (p) => read("economics.total", (q) => usage.total(q, p?.since ?? 0, p?.rootId ?? null)),
      prices: async () => read("economics.prices", (q) => usage.prices(q)),
      setPrice: async (p) => write("economics.setPrice", (t) => usage.setPrice(t, p.model, p.price, p.now)),
      setBudget: async (p) => write("economics.setBudget", (t) => budgets.setBudget(t, p)),
      raiseBudget: async (p) => write("economics.raiseBudget", (t) => budgets.raiseBudget(t, p)),
      removeBudget: async (p) => write("economics.removeBudget", (t) => budgets.removeBudget(t, p)),
      budgets: async (p) => read("economics.budgets", (q) => budgets.budgets(q, p.now)),
      gates: async (p) => read("economics.gates", (q) => gates.personaGates(q, p.persona, p.now)),
      pauses: async (p) => read("economics.pauses", (q) => budgets.pauses(q, p.now)),
      resumeProvider: async (p) => write("economics.resumeProvider", (t) => budgets.resumeProvider(t, p)),
      breakers: async () => read("economics.breakers", (q) => budgets.breakers(q)),
      resetBreaker: async (p) => write("economics.resetBreaker", (t) => budgets.resetBreaker(t, p)),
      attemptBudget: async (p) => read("economics.attemptBudget", (q) => gates.attemptBudget(q, reads.assertTaskId(p.taskId))),
    };
    this.humans = {
      listParked: async (p) => read("humans.listParked", (q) => humans.listParked(q, p?.limit)),
      requests: async (p) => read("humans.requests", (q) => humans.requests(q, reads.assertTaskId(p.taskId))),
      approve: async (p) => write("humans.approve", (t) => humans.approve(t, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      reject: async (p) => write("humans.reject", (t) => humans.reject(t, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      answer: async (p) => write("humans.answer", (t) => humans.answer(t, { ...p, taskId: reads.assertTaskId(p.taskId) })),
      askIfLeased: async (p) =>
        write("humans.ask", async (t) => {
          const asked = await humans.ask(t, p);
          return asked.ok ? { ok: true as const } : asked;
        }),
      // A read first, so an idle tick of the scheduler writes nothing.
      applyDeadlines: async (p) =>
        (await read("humans.dueDeadlines", (q) => humans.hasDueDeadlines(q, p.now))) ? write("humans.applyDeadlines", (t) => humans.applyDeadlines(t, p)) : [],
    };
    const schedules = new PgSchedules(maxPayloadBytes);
    this.schedules = {
      upsert: async (p) => write("schedules.upsert", (t) => schedules.upsert(t, p.schedules, p.now)),
      list: async () => read("schedules.list", (q) => schedules.list(q)),
      get: async (p) => read("schedules.get", (q) => schedules.get(q, p.id)),
      remove: async (p) => write("schedules.remove", (t) => schedules.remove(t, p.id, p.now)),
      pause: async (p) => write("schedules.pause", (t) => schedules.pause(t, p)),
      due: async (p) => read("schedules.due", (q) => schedules.due(q, p.now, p.limit)),
      fire: async (p) => write("schedules.fire", (t) => schedules.fire(t, p)),
      nextFireAt: async () => read("schedules.nextFireAt", (q) => schedules.nextFireAt(q)),
    };
    this.why = {
      explain: async (p) =>
        read("why.explain", (q) => whyReads.explain(q, reads.assertTaskId(p.taskId), p.now, (r, id) => humans.requests(r, id), (r, task, now) => gates.whyReasons(r, task, now))),
    };
    this.ui = {
      taskPage: async (p) => read("ui.taskPage", (q) => uiReads.taskPage(q, p)),
      throughput: async (p) => read("ui.throughput", (q) => uiReads.throughput(q, p)),
      fullKeys: async (p) => read("ui.fullKeys", (q) => uiReads.fullKeys(q, p)),
    };
  }

  async hasExternalChanges(options?: { wakeUpsOnly?: boolean }): Promise<boolean> {
    // A notification heard since the last look is a committed write that may wake work: say so without
    // another round trip (it is on the path from an enqueue on another host to its claim). The next
    // look that asks the server then sees those writes' events as new too: one spare wake, no miss.
    if (this.listener?.takeNotified() === true) return true;
    // While this store LISTENs, every write after which a supervisor may have work (or lost a lease) has
    // NOTIFYed it (WAKE_EVENTS, src/store/postgres/database.ts): nothing to ask the server. Looking anyway
    // would count every other host's heartbeat as a change and wake every idle supervisor for every
    // persona, a cost of the square of the hosts. The listener is probed (./listener.ts), and the look
    // resumes, rebased, once it is lost.
    if (options?.wakeUpsOnly === true && this.listener?.listening === true) {
      this.lookStale = true;
      return false;
    }
    if (this.lookStale) {
      // The last look is older than the listener's loss: start from now, and say yes once for the writes
      // between (whatever a lost connection left unheard).
      this.lookStale = false;
      await this.tx.read("store.hasExternalChanges", (q) => this.tx.own.start(q));
      return true;
    }
    // A transaction of another process committed since the last look; this store's own are left out, as
    // SQLite's data_version leaves out the connection's own (src/store/postgres/own-writes.ts says how, and
    // why by transaction id rather than by max(task_events.id)).
    return this.tx.read("store.hasExternalChanges", (q) => this.tx.own.look(q));
  }

  /** LISTEN/NOTIFY wake-ups, one listening connection while anyone watches (./listener.ts). */
  watchExternalChanges(onChange: () => void): () => void {
    if (this.closed || this.tx.channel === null) return () => {};
    this.listener ??= new PgListener(this.url, this.tx.channel, this.events);
    return this.listener.watch(onChange);
  }

  private listener: PgListener | null = null;
  /** hasExternalChanges answered from the listener since its last look: the next look rebases. */
  private lookStale = false;

  /** How far this host's clock is from the server's, as last measured (Store.clockOffset). */
  clockOffset(): ClockMeasurement {
    return this.serverClock.measurement();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lostClaims.settled();
    this.serverClock.stop();
    clearReferenceClock(this);
    this.listener?.close();
    this.tx.markClosed();
    await this.pool.end();
  }
}
