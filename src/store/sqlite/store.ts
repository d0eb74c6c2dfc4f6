import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { RosterError, coerceError } from "../../errors.js";
import { StoreEventBus } from "../events.js";
import { MAX_PAYLOAD_BYTES_DEFAULT, validateBatch } from "../input.js";
import type {
  AgentService,
  ClaimedTask,
  Settlement,
  SettlementResult,
  HumanService,
  DatabaseIdentity,
  MaintenanceService,
  PersonaService,
  ScheduleService,
  Store,
  StoreOptions,
  TaskService,
  WhyService,
  UiReadService,
} from "../types.js";
import { BLOCKED_WRITE_MS, LivenessJudge } from "../liveness.js";
import { AgentReads } from "./agent-reads.js";
import { UiReads } from "./ui-reads.js";
import { AgentStatements } from "./agents.js";
import { BUSY_TIMEOUT_MS_DEFAULT, JudgedTransactions, type Db } from "./database.js";
import { defaultMigrationsDir } from "../migration-files.js";
import { openDatabase } from "./open.js";
import { Enqueuer } from "./enqueue.js";
import { SqliteApprovalGate } from "./approvals.js";
import { GraphStatements } from "./graph.js";
import { HumanStatements } from "./humans.js";
import { ScheduleStatements } from "./schedules.js";
import { WhyReads } from "./why.js";
import { registerSqliteHandle } from "./introspect.js";
import { MaintenanceStatements, PersonaStatements } from "./maintenance.js";
import { TaskQueries } from "./queries.js";
import { Transitions } from "./transitions.js";
import { checkClaimParams } from "../settle.js";
import { Claims } from "./claims.js";
import { LeasePaths } from "./lease-paths.js";
import type { EconomicsService } from "../economics.js";
import { withOneTaskCalls } from "../one-task.js";

/**
 * The SQLite store: one better-sqlite3 connection, statements prepared once,
 * every write in BEGIN IMMEDIATE (TransactionRunner). Its services are the seed's
 * task, dependency and agent-session interfaces behind async methods.
 */
export class SqliteStore implements Store {
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

  private readonly db: Db;
  /** Judges other holders' liveness by their stamps moving on this process's monotonic clock. */
  readonly judge: LivenessJudge;
  private readonly dataVersion;
  private lastDataVersion: number;
  private closed = false;
  private readonly path: string;
  /** The stop function of every live watchExternalChanges watch. */
  private readonly watchStops = new Set<() => void>();

  constructor(options: StoreOptions & { now?: number }) {
    this.path = options.path;
    const maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes <= 0) {
      throw new RosterError("CONFIG_INVALID", "maxPayloadBytes: must be a positive integer");
    }
    this.db = openDatabase({
      path: options.path,
      synchronous: options.synchronous ?? "NORMAL",
      busyTimeoutMs: options.busyTimeoutMs ?? BUSY_TIMEOUT_MS_DEFAULT,
      readonly: options.readonly ?? false,
      migrationsDir: options.migrationsDir ?? defaultMigrationsDir(),
      now: options.now ?? Date.now(),
    });
    const db = this.db;
    registerSqliteHandle(this, db);
    const judge = new LivenessJudge(options.monotonic);
    this.judge = judge;
    const tx = new JudgedTransactions(db, this.events, { onBusyRetry: options.onBusyRetry, onTransaction: options.onTransaction }, judge);
    const approvals = new SqliteApprovalGate(db);
    const graph = new GraphStatements(db, approvals);
    const enqueuer = new Enqueuer(db, approvals);
    const transitions = new Transitions(db, tx, graph, enqueuer, maxPayloadBytes);
    const queries = new TaskQueries(db);
    const agents = new AgentStatements(db, transitions);
    const maintenance = new MaintenanceStatements(db, tx, transitions);
    const personas = new PersonaStatements(db);
    const humans = new HumanStatements(db, tx, graph);
    const claims = new Claims(db, tx, transitions.gates, (claimed) => humans.withInputs(claimed));
    const schedules = new ScheduleStatements(db, tx, enqueuer, maxPayloadBytes);
    const why = new WhyReads(db, humans, [(task, now) => transitions.gates.whyReasons(task, now)]);
    const agentReads = new AgentReads(db, tx, transitions, enqueuer);
    this.dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.lastDataVersion = this.dataVersion.get() as number;

    const paths = new LeasePaths(tx, transitions, humans, claims, maxPayloadBytes);
    /** After the commit: the liveness judge knows the new leases' stamps. */
    const noteClaimed = (claimed: readonly ClaimedTask[]): void =>
      judge.noteLeases(claimed.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken, stamp: t.leaseExpiresAt, leaseMs: t.leaseMs })));
    /**
     * After the commit: a settled lease is nobody's to judge any more. Forgotten now, the judge
     * keeps only live leases (a few hundred) instead of every lease since its last observation,
     * whose growth cost a supervisor about 2 us a task.
     */
    const forgetSettled = (settlements: readonly Settlement[], results: readonly SettlementResult[]): void =>
      results.forEach((result, i) => {
        if (result.ok) judge.forgetLease(settlements[i]!.taskId);
      });

    this.tasks = withOneTaskCalls({
      enqueue: async (p) => {
        const batch = validateBatch(p.tasks, maxPayloadBytes);
        return tx.write("tasks.enqueue", () => {
          const written = enqueuer.write(batch, { parentId: p.parentId ?? null, createdBy: p.createdBy ?? null, now: p.now });
          tx.emit("task:enqueued", { ids: written.created, personas: written.personas, ready: written.statuses.filter((s) => s === "pending").length });
          return { ids: written.ids, refs: written.refs };
        });
      },
      listAvailable: async (p) => tx.read("tasks.listAvailable", () => queries.available(p)),
      claim: async (p) => {
        checkClaimParams(p);
        const claimed = await tx.write("tasks.claim", () => paths.claim(p));
        noteClaimed(claimed);
        return claimed;
      },
      start: async (p) => (p.starts.length === 0 ? [] : tx.write("tasks.start", () => p.starts.map((s) => transitions.start({ ...s, now: p.now })))),
      progressIfLeased: async (p) => tx.write("tasks.progress", () => transitions.progress(p)),
      settle: async (p) => {
        const results = await tx.write("tasks.settle", () => paths.settle(p.settlements, p.now, p.invalid ?? "fail"));
        forgetSettled(p.settlements, results);
        return results;
      },
      settleAndClaim: async (p) => {
        for (const claim of p.claims) checkClaimParams(claim);
        // It fails whole (no savepoint around the claims): the completer then settles the batch alone at once.
        const out = await tx.write("tasks.settle+claim", () => ({
          results: paths.settle(p.settlements, p.now, "fail"),
          claimed: p.claims.map((claim) => paths.claim(claim)),
        }));
        forgetSettled(p.settlements, out.results);
        for (const claimed of out.claimed) noteClaimed(claimed);
        return out;
      },
      cancel: async (p) => tx.write("tasks.cancel", () => transitions.commands.cancel(p)),
      retry: async (p) => tx.write("tasks.retry", () => transitions.commands.retry(p)),
      addDependency: async (p) => tx.write("tasks.addDependency", () => transitions.commands.addDependency(p)),
      get: async (p) => tx.read("tasks.get", () => queries.get(p.taskId, p.eventLimit)),
      list: async (p) => tx.read("tasks.list", () => queries.list(p)),
      events: async (p) =>
        tx.read("tasks.events", () => {
          if (!queries.exists(p.taskId)) {
            throw new RosterError("TASK_NOT_FOUND", `taskId: task ${p.taskId} does not exist`, { details: { field: "taskId" } });
          }
          return queries.events(p.taskId, p.afterId, p.limit);
        }),
      counts: async (p) => tx.read("tasks.counts", () => queries.counts(p)),
      running: async (p) => tx.read("tasks.running", () => queries.running(p)),
      nextRunAt: async (p) => tx.read("tasks.nextRunAt", () => queries.nextRunAt(p)),
      lineage: async (p) => tx.read("tasks.lineage", () => agentReads.lineage(p.taskIds)),
      completeOnce: async ({ now, ...rest }) =>
        tx.write("tasks.completeOnce", () => agentReads.completeOnce({ ...rest, now }, () => paths.settleOne({ kind: "complete", ...rest }, now, "refuse"))),
      leaseLoss: async (p) => tx.read("tasks.leaseLoss", () => agentReads.leaseLoss(p)),
      resultPage: async (p) => tx.read("tasks.resultPage", () => agentReads.resultPage(p)),
      enqueueGoal: async (p) => {
        const goal = validateBatch([p.goal], maxPayloadBytes)[0]!;
        const tasks = validateBatch(p.tasks, maxPayloadBytes);
        return tx.write("tasks.enqueueGoal", () =>
          agentReads.enqueueGoal(goal, tasks, { parentId: p.parentId ?? null, createdBy: p.createdBy ?? null, now: p.now }),
        );
      },
      oldestReady: async (p) => tx.read("tasks.oldestReady", () => queries.oldestReady(p)),
      leasesGone: async (p) => tx.read("tasks.leasesGone", () => queries.leasesGone(p.leases)),
      giveBack: async (p) =>
        p.leases.length === 0
          ? { given: [] }
          : tx.write("tasks.giveBack", () => ({ given: p.leases.filter((l) => transitions.giveBack({ ...l, agentId: p.agentId, now: p.now })) })),
    });

    this.agents = {
      register: async (p) => {
        const agent = await tx.write("agents.register", () => {
          const agent = agents.register(p);
          tx.emit("agent:registered", { agentId: agent.id });
          return agent;
        });
        judge.noteAgent({ agentId: agent.id, stamp: agent.lastHeartbeatAt, timeoutMs: agent.heartbeatTimeoutMs });
        return agent;
      },
      heartbeat: async (p) => {
        const { stamps, ...result } = await tx.write("agents.heartbeat", () => agents.heartbeat(p));
        if (stamps.agent !== null) judge.noteAgent(stamps.agent);
        judge.noteLeases(stamps.leases);
        return result;
      },
      deregister: async (p) =>
        tx.write("agents.deregister", () => {
          const out = agents.deregister(p);
          tx.emit("agent:deregistered", { agentId: p.agentId, released: out.released.length });
          return out;
        }),
      list: async (p) => tx.read("agents.list", () => agents.list(p?.includeInactive ?? false)),
      get: async (p) => tx.read("agents.get", () => agents.get(p.agentId)),
      expireStale: async (p) => {
        const silent = judge.observeAgents(tx.read("agents.observe", () => agents.observe()));
        if (silent.length === 0) return [];
        return tx.write("agents.expireStale", () => {
          const ids = agents.expireSilent(silent, p.now);
          if (ids.length > 0) tx.emit("agent:expired", { agentIds: ids });
          return ids;
        });
      },
    };

    this.personas = {
      sync: async (p) => tx.write("personas.sync", () => personas.sync(p.personas, p.now, p.sourceDir)),
      get: async (p) => tx.read("personas.get", () => personas.get(p.id)),
      list: async (p) => tx.read("personas.list", () => personas.list(p?.includeRetired === true)),
      retire: async (p) => tx.write("personas.retire", () => personas.retire(p.id, p.retired, p.now)),
    };

    this.humans = {
      listParked: async (p) => tx.read("humans.listParked", () => humans.listParked(p?.limit)),
      requests: async (p) => tx.read("humans.requests", () => humans.requests(p.taskId)),
      approve: async (p) => tx.write("humans.approve", () => humans.approve(p)),
      reject: async (p) => tx.write("humans.reject", () => humans.reject(p)),
      answer: async (p) => tx.write("humans.answer", () => humans.answer(p)),
      askIfLeased: async (p) =>
        tx.write("humans.ask", () => {
          const asked = humans.ask(p);
          return asked.ok ? { ok: true as const } : asked;
        }),
      applyDeadlines: async (p) =>
        tx.read("humans.dueDeadlines", () => humans.hasDueDeadlines(p.now)) ? tx.write("humans.applyDeadlines", () => humans.applyDeadlines(p)) : [],
    };

    this.schedules = {
      upsert: async (p) => tx.write("schedules.upsert", () => schedules.upsert(p.schedules, p.now)),
      list: async () => tx.read("schedules.list", () => schedules.list()),
      get: async (p) => tx.read("schedules.get", () => schedules.get(p.id)),
      remove: async (p) => tx.write("schedules.remove", () => schedules.remove(p.id, p.now)),
      pause: async (p) => tx.write("schedules.pause", () => schedules.pause(p)),
      due: async (p) => tx.read("schedules.due", () => schedules.due(p.now, p.limit)),
      fire: async (p) => tx.write("schedules.fire", () => schedules.fire(p)),
      nextFireAt: async () => tx.read("schedules.nextFireAt", () => schedules.nextFireAt()),
    };

    this.why = {
      explain: async (p) => tx.read("why.explain", () => why.explain(p.taskId, p.now)),
    };
    const uiReads = new UiReads(db);
    this.ui = {
      taskPage: async (p) => tx.read("ui.taskPage", () => uiReads.taskPage(p)),
      throughput: async (p) => tx.read("ui.throughput", () => uiReads.throughput(p)),
      fullKeys: async (p) => tx.read("ui.fullKeys", () => uiReads.fullKeys(p)),
    };

    const gates = transitions.gates;
    this.economics = {
      usageOf: async (p) => tx.read("economics.usageOf", () => transitions.usage.usageOf(p.taskId)),
      cost: async (p) => tx.read("economics.cost", () => transitions.usage.cost(p.by, p.since ?? 0, p.rootId ?? null)),
      total: async (p) => tx.read("economics.total", () => transitions.usage.total(p?.since ?? 0, p?.rootId ?? null)),
      setBudget: async (p) => tx.write("economics.setBudget", () => gates.setBudget(p)),
      raiseBudget: async (p) => tx.write("economics.raiseBudget", () => gates.raiseBudget(p)),
      removeBudget: async (p) => tx.write("economics.removeBudget", () => gates.removeBudget(p)),
      budgets: async (p) => tx.read("economics.budgets", () => gates.budgets(p.now)),
      gates: async (p) => tx.read("economics.gates", () => gates.personaGates(p.persona, p.now)),
      pauses: async (p) => tx.read("economics.pauses", () => gates.pauses(p.now)),
      resumeProvider: async (p) => tx.write("economics.resumeProvider", () => gates.resumeProvider(p)),
      breakers: async () => tx.read("economics.breakers", () => gates.breakers()),
      resetBreaker: async (p) => tx.write("economics.resetBreaker", () => gates.resetBreaker(p)),
      setPrice: async (p) => tx.write("economics.setPrice", () => transitions.usage.setPrice(p.model, p.price, p.now)),
      prices: async () => tx.read("economics.prices", () => transitions.usage.prices()),
      attemptBudget: async (p) => tx.read("economics.attemptBudget", () => gates.attemptBudget(p.taskId)),
    };

    let identity: DatabaseIdentity | undefined;
    this.maintenance = {
      reapExpired: async (p) => {
        // Observe (reads, no lock); usually no holder is silent, and nothing is written.
        const observed = tx.read("maintenance.observe", () => ({ leases: maintenance.observe(), agents: agents.observe() }));
        const silent = judge.observe(observed.leases, observed.agents);
        if (silent.leases.length === 0 && silent.agents.length === 0) return { retried: [], failed: [], expiredAgents: [] };
        const asked = judge.monotonic();
        return tx.write("maintenance.reap", () => {
          // Having waited for the write lock, every holder may have been waiting for it too,
          // since before we asked: judge nobody now, and give each a whole lease again.
          if (judge.monotonic() - asked >= BLOCKED_WRITE_MS) {
            judge.restartSilence();
            return { retried: [], failed: [], expiredAgents: [] };
          }
          const reaped = maintenance.reap(silent.leases, p);
          const expiredAgents = agents.expireSilent(silent.agents, p.now);
          if (expiredAgents.length > 0) tx.emit("agent:expired", { agentIds: expiredAgents });
          return { ...reaped, expiredAgents };
        });
      },
      prune: async (p) => tx.write("maintenance.prune", () => maintenance.prune(p.before)),
      integrityCheck: async () => tx.read("maintenance.integrityCheck", () => maintenance.integrityCheck()),
      identity: async () => (identity ??= tx.read("maintenance.identity", () => maintenance.identity())),
    };
  }

  async hasExternalChanges(): Promise<boolean> {
    const version = this.dataVersion.get() as number;
    const changed = version !== this.lastDataVersion;
    this.lastDataVersion = version;
    return changed;
  }

  watchExternalChanges(onChange: () => void): () => void {
    // Every commit of another connection appends to the -wal file (or rewrites the
    // file itself outside WAL mode). The folder is watched rather than the file, so
    // the watch survives the -wal file being deleted and created again.
    if (this.path === ":memory:" || this.path === "" || this.closed) return () => {};
    const file = resolve(this.path);
    const names = new Set([basename(file), `${basename(file)}-wal`]);
    // A file event comes as the other connection writes its WAL frames, which can be a
    // moment before its commit is visible (the wal-index in -shm is updated after, in
    // shared memory, which raises no event; with synchronous=FULL an fsync comes
    // between). So each burst of events is followed by calls WATCH_FOLLOW_UP_MS later.
    let followUp: NodeJS.Timeout | null = null;
    const followUpFrom = (step: number) => {
      const delay = WATCH_FOLLOW_UP_MS[step];
      if (delay === undefined) return;
      followUp = setTimeout(() => {
        followUp = null;
        onChange();
        followUpFrom(step + 1);
      }, delay);
      followUp.unref();
    };
    let watcher: FSWatcher;
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (name !== null && !names.has(name.toString())) return;
        onChange();
        if (followUp !== null) clearTimeout(followUp);
        followUpFrom(0);
      });
    } catch (error) {
      // No change notification here (some network file systems): the caller's poll covers it.
      this.events.emit("store:watch-unavailable", { reason: coerceError(error).message });
      return () => {};
    }
    const stop = () => {
      if (followUp !== null) clearTimeout(followUp);
      followUp = null;
      if (!this.watchStops.delete(stop)) return;
      watcher.close();
    };
    // A watch that breaks later (its folder removed) degrades to the poll the same way.
    watcher.on("error", (error) => {
      this.events.emit("store:watch-unavailable", { reason: coerceError(error).message });
      stop();
    });
    this.watchStops.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Each stop also cancels its pending follow-up, so no callback comes after close.
    for (const stop of [...this.watchStops]) stop();
    this.db.close();
  }
}

/**
 * After a burst of file events, when watchExternalChanges calls again, in ms after
 * the previous call: a commit is visible a moment after its WAL write (after its
 * fsync with synchronous=FULL). Checks are cheap; the callers' polls cover anything later.
 */
export const WATCH_FOLLOW_UP_MS: readonly number[] = [2, 10, 50];
