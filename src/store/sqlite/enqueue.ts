import type { PersonaPolicyConfig } from "../../policy/retry.js";
import { type PersonaMissing, dependencyNotFound, enqueuedData, parentNotFound, personaNotFound, refIndexOf, refsOf, resolvePolicies, resolveStates } from "../enqueue-plan.js";
import type { ValidatedTask } from "../input.js";
import type { EnqueueResult, TaskState } from "../types.js";
import type { Db } from "./database.js";
import { isHumanConfig } from "../approval-gate.js";
import type { SqliteApprovalGate } from "./approvals.js";

/**
 * Writes a validated batch inside the caller's transaction (docs/ARCHITECTURE.md rule 1): checks
 * what needs the database (personas, existing dependencies, parent), then inserts
 * the tasks, their status rows with unmet-dependency counts, edges and events.
 * Any error throws before the transaction commits, so nothing of the batch lands.
 */
export class Enqueuer {
  private readonly personaConfig;
  private readonly personaIds;
  private readonly taskStatus;
  private readonly parentRow;
  private readonly byIdempotencyKey;
  private readonly nextTaskId;
  private readonly insertTasks;
  private readonly insertStatuses;
  private readonly insertDependencies;
  private readonly insertEvents;

  constructor(
    db: Db,
    private readonly approvals: SqliteApprovalGate,
  ) {
    this.personaConfig = db.prepare("SELECT config, retired_at FROM personas WHERE id = ?");
    this.personaIds = db.prepare("SELECT id FROM personas WHERE retired_at IS NULL ORDER BY id").pluck();
    this.taskStatus = db.prepare("SELECT status FROM task_status WHERE task_id = ?").pluck();
    this.parentRow = db.prepare("SELECT id, root_id FROM tasks WHERE id = ?");
    this.byIdempotencyKey = db.prepare("SELECT id FROM tasks WHERE idempotency_key = ?").pluck();
    // The batch's rows in one statement each, from JSON arrays. Ids are given, not left to
    // SQLite: max(id) + 1 onwards, known up front so the batch's edges can name them; the write
    // lock makes it safe. Past the high-water mark too (migrations/0014): an id is never given
    // twice, even once `roster prune` deleted the newest tasks, as git work is named by it.
    this.nextTaskId = db
      .prepare(
        `SELECT max(coalesce((SELECT max(id) FROM tasks), 0),
                    coalesce((SELECT CAST(value AS INTEGER) FROM roster_meta WHERE key = 'task_id_high_water'), 0)) + 1`,
      )
      .pluck();
    // Rows: [id, title, description, persona, payloadJson, priority, policyJson, timeoutMs, idempotencyKey].
    this.insertTasks = db.prepare(`
      INSERT INTO tasks (id, title, description, persona_id, payload, parent_id, root_id, created_by, priority,
                         retry_policy, timeout_ms, idempotency_key, created_at)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, @parentId, @rootId, @createdBy, value ->> 5,
             value ->> 6, value ->> 7, value ->> 8, @now
      FROM json_each(@rows)`);
    // Rows: [id, status, persona, priority, unmet, runAt, readyAt, maxAttempts].
    this.insertStatuses = db.prepare(`
      INSERT INTO task_status (task_id, status, persona_id, priority, unmet_deps, run_at, ready_at, max_attempts, updated_at)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, @now
      FROM json_each(@rows)`);
    // Edges and events of the whole batch, one statement each: JSON arrays of [taskId, dependsOn] and [taskId, dataJson].
    this.insertDependencies = db.prepare("INSERT INTO task_dependencies (task_id, depends_on) SELECT value ->> 0, value ->> 1 FROM json_each(?)");
    this.insertEvents = db.prepare(`
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT value ->> 0, 'task:enqueued', @now, @agentId, 0, value ->> 1 FROM json_each(@rows)`);
  }

  /** Inside a transaction. Returns ids in input order and the statuses they were given. */
  /** Null while `persona` is in service; otherwise whether it is retired, and the personas in service (for unknownPersona). */
  personaMissing(persona: string): PersonaMissing | null {
    const row = this.personaConfig.get(persona) as { retired_at: number | null } | undefined;
    if (row !== undefined && row.retired_at === null) return null;
    return { retired: row !== undefined, known: this.personaIds.all() as string[] };
  }

  write(
    tasks: ValidatedTask[],
    options: { parentId: number | null; createdBy: string | null; now: number },
  ): EnqueueResult & { statuses: TaskState[]; personas: string[]; created: number[] } {
    const { now } = options;
    let rootId: number | null = null;
    if (options.parentId !== null) {
      const parent = this.parentRow.get(options.parentId) as { id: number; root_id: number | null } | undefined;
      if (parent === undefined) throw parentNotFound(options.parentId);
      rootId = parent.root_id ?? parent.id;
    }

    const configs = new Map<string, PersonaPolicyConfig>();
    tasks.forEach((task, index) => {
      if (configs.has(task.persona)) return;
      const row = this.personaConfig.get(task.persona) as { config: string; retired_at: number | null } | undefined;
      if (row === undefined || row.retired_at !== null) throw personaNotFound(task, index, row !== undefined, this.personaIds.all() as string[]);
      configs.set(task.persona, JSON.parse(row.config) as PersonaPolicyConfig);
    });

    // Existing tasks named as dependencies, and their states.
    const existing = new Map<number, TaskState>();
    tasks.forEach((task, index) => {
      for (const dep of task.dependsOn ?? []) {
        if (typeof dep !== "number" || existing.has(dep)) continue;
        const status = this.taskStatus.get(dep) as TaskState | undefined;
        if (status === undefined) throw dependencyNotFound(task, index, dep);
        existing.set(dep, status);
      }
    });

    const refIndex = refIndexOf(tasks);

    // Idempotent enqueue: a known key maps to the task that already has it.
    const ids: number[] = new Array<number>(tasks.length);
    const isNew: boolean[] = tasks.map((task, index) => {
      if (task.idempotencyKey === undefined) return true;
      const found = this.byIdempotencyKey.get(task.idempotencyKey) as number | undefined;
      if (found === undefined) return true;
      ids[index] = found;
      return false;
    });

    const policies = resolvePolicies(tasks, configs);
    let nextId = this.nextTaskId.get() as number;
    const taskRows: unknown[] = [];
    tasks.forEach((task, index) => {
      if (!isNew[index]) return;
      const { json, timeoutMs } = policies[index]!;
      const id = nextId++;
      ids[index] = id;
      taskRows.push([id, task.title, task.description ?? "", task.persona, task.payloadJson ?? null, task.priority ?? 0, json, timeoutMs, task.idempotencyKey ?? null]);
    });
    if (taskRows.length > 0) {
      this.insertTasks.run({ rows: JSON.stringify(taskRows), parentId: options.parentId, rootId, createdBy: options.createdBy, now });
    }

    // An idempotent hit keeps its stored state.
    const known: Array<TaskState | undefined> = tasks.map((_task, index) => (isNew[index] ? undefined : (this.taskStatus.get(ids[index]!) as TaskState)));
    const { statuses, unmetCounts } = resolveStates(tasks, known, existing, refIndex);

    const statusRows: unknown[] = [];
    const edges: Array<[number, number]> = [];
    const events: Array<[number, string]> = [];
    const created: number[] = [];
    // Persona of each created task, index for index (task:enqueued pairs them).
    const createdPersonas: string[] = [];
    // New pending tasks of human personas: the approval gate's to park, after their rows are written.
    const gated: Array<{ id: number; persona: string }> = [];
    const human = new Set([...configs].filter(([, config]) => isHumanConfig(config)).map(([persona]) => persona));
    tasks.forEach((task, index) => {
      const state = statuses[index]!;
      if (!isNew[index]) return;
      const id = ids[index]!;
      created.push(id);
      createdPersonas.push(task.persona);
      const depIds = (task.dependsOn ?? []).map((dep) => (typeof dep === "number" ? dep : ids[refIndex.get(dep)!]!));
      const unmet = unmetCounts[index]!;
      const { policy } = policies[index]!;
      const runAt = now + (task.delayMs ?? 0);
      if (state === "pending" && human.has(task.persona)) gated.push({ id, persona: task.persona });
      statusRows.push([id, state, task.persona, task.priority ?? 0, unmet, runAt, state === "pending" ? runAt : null, policy.maxAttempts]);
      for (const depId of depIds) edges.push([id, depId]);
      events.push([id, enqueuedData(state, options.parentId)]);
    });
    if (statusRows.length > 0) this.insertStatuses.run({ rows: JSON.stringify(statusRows), now });
    // Pending tasks of human personas park for approval (src/store/approval-gate.ts); their
    // task:enqueued events still say pending, as when the gate was a trigger.
    if (gated.length > 0) this.approvals.park(gated, now);
    if (edges.length > 0) this.insertDependencies.run(JSON.stringify(edges));
    if (events.length > 0) this.insertEvents.run({ now, agentId: options.createdBy, rows: JSON.stringify(events) });

    return { ids, refs: refsOf(tasks, ids), statuses, personas: createdPersonas, created };
  }
}
