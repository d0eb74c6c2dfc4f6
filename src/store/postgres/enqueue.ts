import type { PersonaPolicyConfig } from "../../policy/retry.js";
import { type PersonaMissing, dependencyNotFound, enqueuedData, parentNotFound, personaNotFound, refIndexOf, refsOf, resolvePolicies, resolveStates } from "../enqueue-plan.js";
import type { ValidatedTask } from "../input.js";
import type { EnqueueResult, TaskState } from "../types.js";
import type { Tx } from "./database.js";
import { isHumanConfig } from "../approval-gate.js";
import { parkForApproval } from "./approvals.js";

/**
 * Writes a validated batch inside the caller's transaction (docs/ARCHITECTURE.md rule 1),
 * as src/store/sqlite/enqueue.ts does: checks personas, existing dependencies and the
 * parent, then inserts tasks, status rows with unmet-dependency counts, edges and
 * events, one statement each (unnest of arrays). Existing dependencies are read
 * FOR SHARE: a dependency completing at the same moment waits for this commit, and
 * its counter update (a later statement) then sees the new edges; or it committed
 * first and is read as completed. Any error throws before the commit.
 */
export async function writeBatch(
  tx: Tx,
  tasks: ValidatedTask[],
  options: { parentId: number | null; createdBy: string | null; now: number },
): Promise<EnqueueResult & { statuses: TaskState[]; personas: string[]; created: number[] }> {
  const { now } = options;
  let rootId: number | null = null;
  if (options.parentId !== null) {
    const parent = await tx.one<{ id: number; root_id: number | null }>("SELECT id, root_id FROM tasks WHERE id = $1", [options.parentId]);
    if (parent === undefined) throw parentNotFound(options.parentId);
    rootId = parent.root_id ?? parent.id;
  }

  const names = [...new Set(tasks.map((t) => t.persona))];
  const personaRows = new Map(
    (await tx.rows<{ id: string; config: string; retired_at: number | null }>("SELECT id, config, retired_at FROM personas WHERE id = ANY($1::text[])", [names])).map((r) => [r.id, r]),
  );
  const configs = new Map<string, PersonaPolicyConfig>();
  for (const [index, task] of tasks.entries()) {
    if (configs.has(task.persona)) continue;
    const row = personaRows.get(task.persona);
    if (row === undefined || row.retired_at !== null) {
      throw personaNotFound(task, index, row !== undefined, await activePersonaIds(tx));
    }
    const config = JSON.parse(row.config) as PersonaPolicyConfig;
    configs.set(task.persona, config);
  }

  const depIds = [...new Set(tasks.flatMap((t) => (t.dependsOn ?? []).filter((d): d is number => typeof d === "number")))];
  const existing = new Map<number, TaskState>();
  if (depIds.length > 0) {
    const rows = await tx.rows<{ task_id: number; status: TaskState }>(
      "SELECT task_id, status FROM task_status WHERE task_id = ANY($1::bigint[]) ORDER BY task_id FOR SHARE",
      [depIds],
    );
    for (const row of rows) existing.set(row.task_id, row.status);
    for (const [index, task] of tasks.entries()) {
      for (const dep of task.dependsOn ?? []) {
        if (typeof dep === "number" && !existing.has(dep)) {
          throw dependencyNotFound(task, index, dep);
        }
      }
    }
  }

  const refIndex = refIndexOf(tasks);

  const ids: number[] = new Array<number>(tasks.length);
  const keys = tasks.map((t) => t.idempotencyKey).filter((k): k is string => k !== undefined);
  const byKey =
    keys.length === 0
      ? new Map<string, number>()
      : new Map((await tx.rows<{ id: number; k: string }>("SELECT id, idempotency_key AS k FROM tasks WHERE idempotency_key = ANY($1::text[])", [keys])).map((r) => [r.k, r.id]));
  const isNew = tasks.map((task, index) => {
    if (task.idempotencyKey === undefined) return true;
    const found = byKey.get(task.idempotencyKey);
    if (found === undefined) return true;
    ids[index] = found;
    return false;
  });

  const policies = resolvePolicies(tasks, configs);

  const newCount = isNew.filter(Boolean).length;
  if (newCount > 0) {
    // Ids known up front, so the batch's edges can name them.
    const fresh = (await tx.rows<{ id: number }>("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS id FROM generate_series(1, $1::int)", [newCount])).map((r) => r.id);
    let next = 0;
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
    tasks.forEach((task, index) => {
      if (!isNew[index]) return;
      const id = fresh[next++]!;
      ids[index] = id;
      const { json, timeoutMs } = policies[index]!;
      [id, task.title, task.description ?? "", task.persona, task.payloadJson ?? null, task.priority ?? 0, json, timeoutMs, task.idempotencyKey ?? null].forEach((v, i) => cols[i]!.push(v));
    });
    await tx.run(
      `INSERT INTO tasks (id, title, description, persona_id, payload, parent_id, root_id, created_by, priority, retry_policy, timeout_ms, idempotency_key, created_at)
       SELECT u.id, u.title, u.description, u.persona, u.payload, $10, $11, $12, u.priority, u.policy, u.timeout, u.key, $13
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::bigint[], $9::text[])
         AS u(id, title, description, persona, payload, priority, policy, timeout, key)`,
      [...cols, options.parentId, rootId, options.createdBy, now],
    );
  }

  // An idempotent hit keeps its stored state.
  const known: Array<TaskState | undefined> = new Array<TaskState | undefined>(tasks.length);
  const hits = tasks.map((_t, index) => index).filter((index) => !isNew[index]);
  if (hits.length > 0) {
    const rows = await tx.rows<{ task_id: number; status: TaskState }>("SELECT task_id, status FROM task_status WHERE task_id = ANY($1::bigint[])", [hits.map((i) => ids[i]!)]);
    const byId = new Map(rows.map((r) => [r.task_id, r.status]));
    for (const index of hits) known[index] = byId.get(ids[index]!)!;
  }
  const { statuses, unmetCounts } = resolveStates(tasks, known, existing, refIndex);

  const statusCols: unknown[][] = [[], [], [], [], [], [], [], [], []];
  // Concurrency keys (docs/economics.md): each keyed task's key on its status row, each key's limit the batch's latest.
  const keyLimits = new Map<string, number>();
  const edges: [number[], number[]] = [[], []];
  const events: [number[], string[]] = [[], []];
  const created: number[] = [];
  const createdPersonas: string[] = [];
  // New pending tasks of human personas: the approval gate's to park, after their rows are written.
  const human = new Set([...configs].filter(([, config]) => isHumanConfig(config)).map(([persona]) => persona));
  const gated: Array<{ id: number }> = [];
  tasks.forEach((task, index) => {
    const state = statuses[index]!;
    if (!isNew[index]) return;
    const id = ids[index]!;
    created.push(id);
    createdPersonas.push(task.persona);
    if (state === "pending" && human.has(task.persona)) gated.push({ id });
    const runAt = now + (task.delayMs ?? 0);
    const policy = policies[index]!.policy as { maxAttempts: number; concurrencyKey?: string; concurrencyLimit?: number };
    const key = policy.concurrencyKey ?? null;
    if (key !== null) keyLimits.set(key, policy.concurrencyLimit ?? 1);
    [id, state, task.persona, task.priority ?? 0, unmetCounts[index]!, runAt, state === "pending" ? runAt : null, policy.maxAttempts, key].forEach((v, i) =>
      statusCols[i]!.push(v),
    );
    for (const dep of task.dependsOn ?? []) {
      edges[0].push(id);
      edges[1].push(typeof dep === "number" ? dep : ids[refIndex.get(dep)!]!);
    }
    events[0].push(id);
    events[1].push(enqueuedData(state, options.parentId));
  });
  if (created.length > 0) {
    await tx.run(
      `INSERT INTO task_status (task_id, status, persona_id, priority, unmet_deps, run_at, ready_at, max_attempts, concurrency_key, updated_at)
       SELECT *, $10::bigint FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[], $7::bigint[], $8::int[], $9::text[])`,
      [...statusCols, now],
    );
  }
  // Pending tasks of human personas park for approval (src/store/approval-gate.ts); their
  // task:enqueued events still say pending, as when the gate was a trigger.
  if (gated.length > 0) await parkForApproval(tx, gated, now);
  if (keyLimits.size > 0) {
    // In key order, so two enqueues of the same keys wait for each other rather than deadlock.
    const keys = [...keyLimits.keys()].sort();
    await tx.run(
      `INSERT INTO concurrency_keys (key, max_running) SELECT * FROM unnest($1::text[], $2::int[])
       ON CONFLICT (key) DO UPDATE SET max_running = excluded.max_running WHERE concurrency_keys.max_running <> excluded.max_running`,
      [keys, keys.map((k) => keyLimits.get(k)!)],
    );
  }
  if (edges[0].length > 0) await tx.run("INSERT INTO task_dependencies (task_id, depends_on) SELECT * FROM unnest($1::bigint[], $2::bigint[])", edges);
  if (events[0].length > 0) {
    await tx.run(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) SELECT u.id, 'task:enqueued', $3, $4, 0, u.data FROM unnest($1::bigint[], $2::text[]) AS u(id, data)",
      [...events, now, options.createdBy],
    );
  }
  return { ids, refs: refsOf(tasks, ids), statuses, personas: createdPersonas, created };
}

/** The personas in service, by id (the "known" of an unknown-persona error). */
async function activePersonaIds(tx: Pick<Tx, "rows">): Promise<string[]> {
  return (await tx.rows<{ id: string }>("SELECT id FROM personas WHERE retired_at IS NULL ORDER BY id")).map((r) => r.id);
}

/** Null while `persona` is in service; otherwise whether it is retired, and the personas in service (for unknownPersona). */
export async function personaMissing(tx: Pick<Tx, "rows" | "one">, persona: string): Promise<PersonaMissing | null> {
  const row = await tx.one<{ retired_at: number | null }>("SELECT retired_at FROM personas WHERE id = $1", [persona]);
  if (row !== undefined && row.retired_at === null) return null;
  return { retired: row !== undefined, known: await activePersonaIds(tx) };
}
