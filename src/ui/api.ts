/**
 * The dashboard's JSON API over a Store (src/ui/routes.ts routes to it): its errors, and
 * its reads, shaped for one page each. The actions are src/ui/actions.ts. Every input is
 * checked before anything is read or written; an error names the field (`UiError.field`)
 * and carries the store's code.
 */
import type { Clock } from "../clock.js";
import { RosterError, coerceError, type ErrorCode } from "../errors.js";
import { TASK_STATES, assertPersonaKnown, type Store, type TaskState, type UiTaskPageParams, type UiTaskRow, type UsageRecord } from "../store/index.js";
import { totalTokens } from "../policy/prices.js";
import { attemptsOf } from "./attempts.js";

export const UI_PAGE_LIMIT_DEFAULT = 50;
export const UI_PAGE_LIMIT_MAX = 500;
/** Largest goal drawn as a graph; a bigger subtree is cut (the answer says so). */
export const UI_GRAPH_MAX_NODES = 2_000;
export const UI_TEXT_MAX_CHARS = 100_000;
/** Rows of each overview list of gates (full concurrency keys) and of cost per goal. */
export const UI_OVERVIEW_ROWS = 50;
export const UI_COST_GOALS = 10;

/** An error the API answers with a status, a code and the field it is about. */
export class UiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const NOT_FOUND_CODES: ReadonlySet<ErrorCode> = new Set(["TASK_NOT_FOUND", "AGENT_NOT_FOUND"]);
const CONFLICT_CODES: ReadonlySet<ErrorCode> = new Set(["INVALID_STATE", "LEASE_LOST"]);
const BAD_INPUT_CODES: ReadonlySet<ErrorCode> = new Set([
  "VALIDATION",
  "PERSONA_NOT_FOUND",
  "PERSONA_INVALID",
  "DEPENDENCY_NOT_FOUND",
  "DEPENDENCY_CYCLE",
  "SELF_DEPENDENCY",
  "DUPLICATE_REF",
  "PAYLOAD_TOO_LARGE",
]);

/** A store or validation error as the API answers it: 400 bad input, 404 unknown id, 409 wrong state, 503 busy, else 500. */
export function toUiError(error: unknown): UiError {
  if (error instanceof UiError) return error;
  const e = coerceError(error);
  if (e instanceof RosterError) {
    const field = typeof e.details?.field === "string" ? e.details.field : fieldOfMessage(e.message);
    const status = NOT_FOUND_CODES.has(e.code) ? 404 : CONFLICT_CODES.has(e.code) ? 409 : BAD_INPUT_CODES.has(e.code) ? 400 : e.code === "DATABASE_BUSY" ? 503 : 500;
    return new UiError(status, e.code, e.message, field);
  }
  return new UiError(500, "INTERNAL", e.message);
}

/** "tasks[0].persona: …" or "plan: tasks[1].title: …" → the path before the first colon that looks like one. */
function fieldOfMessage(message: string): string | undefined {
  const match = /(?:^|: )((?:tasks\[\d+\]|task|plan)[\w.[\]]*?): /.exec(message);
  return match?.[1];
}

export interface ApiContext {
  store: Store;
  clock: Clock;
  /** Who acts, as the audit trail records it (e.g. "ui:alice"). */
  by: string;
}

type Query = URLSearchParams;

function intParam(query: Query, name: string, bounds: { min?: number; max?: number } = {}): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === "") return undefined;
  if (!/^-?\d+$/.test(raw)) throw new UiError(400, "VALIDATION", `${name}: must be an integer, got "${raw}"`, name);
  const value = Number(raw);
  if ((bounds.min !== undefined && value < bounds.min) || (bounds.max !== undefined && value > bounds.max)) {
    throw new UiError(400, "VALIDATION", `${name}: must be from ${bounds.min ?? "-∞"} to ${bounds.max ?? "∞"}, got ${value}`, name);
  }
  return value;
}

export function parseId(raw: string, field = "id"): number {
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new UiError(400, "VALIDATION", `${field}: must be a positive integer, got "${raw}"`, field);
  return Number(raw);
}

function statusesParam(query: Query): TaskState[] | undefined {
  const raw = query.get("status");
  if (raw === null || raw === "") return undefined;
  const list = raw.split(",").map((s) => s.trim());
  for (const s of list) {
    if (!(TASK_STATES as readonly string[]).includes(s)) throw new UiError(400, "VALIDATION", `status: "${s}" is not a task state (${TASK_STATES.join(", ")})`, "status");
  }
  return list as TaskState[];
}

/** A page of tasks without a UiReadService: the Store's list, filtered and cut here (slower, same answer). */
async function fallbackPage(store: Store, p: UiTaskPageParams): Promise<UiTaskRow[]> {
  const records = await store.tasks.list({
    ...(p.status !== undefined ? { status: p.status } : {}),
    ...(p.persona !== undefined ? { persona: p.persona } : {}),
    ...(p.rootId !== undefined ? { rootId: p.rootId } : {}),
    newestFirst: true,
    limit: 0,
  });
  const q = p.query?.toLowerCase();
  return records
    .filter((t) => (p.beforeId === undefined || t.id < p.beforeId) && (p.topLevel !== true || t.parentId === null) && (q === undefined || q === "" || t.title.toLowerCase().includes(q)))
    .slice(0, p.limit)
    .map((t) => ({
      id: t.id,
      title: t.title,
      persona: t.persona,
      parentId: t.parentId,
      rootId: t.rootId,
      status: t.status,
      attempts: t.attempts,
      maxAttempts: t.maxAttempts,
      progress: t.progress,
      progressMessage: t.progressMessage,
      createdAt: t.createdAt,
      updatedAt: t.updatedAt,
      errorCode: t.error?.code ?? null,
      dependsOn: t.dependsOn,
    }));
}

function taskPage(store: Store, p: UiTaskPageParams): Promise<UiTaskRow[]> {
  return store.ui !== undefined ? store.ui.taskPage(p) : fallbackPage(store, p);
}

// ---- reads ---------------------------------------------------------------------------

export async function overview(ctx: ApiContext): Promise<Record<string, unknown>> {
  const { store } = ctx;
  const now = ctx.clock.now();
  const [counts, running, agents, parked, failed, blocked, personas, total, byPersona, byGoal, pauses, breakers, budgets, goals, keys] = await Promise.all([
    store.tasks.counts(),
    store.tasks.running({ limit: 100 }),
    store.agents.list({ includeInactive: false }),
    store.humans.listParked({ limit: 50 }),
    taskPage(store, { status: "failed", limit: 20 }),
    taskPage(store, { status: "blocked", limit: 20 }),
    store.personas.list(),
    store.economics.total(),
    store.economics.cost({ by: "persona" }),
    store.economics.cost({ by: "goal" }),
    store.economics.pauses({ now }),
    store.economics.breakers(),
    store.economics.budgets({ now }),
    taskPage(store, { topLevel: true, limit: 10 }),
    // A store without the dashboard's reads (UiReadService) lists no keys.
    store.ui === undefined ? [] : store.ui.fullKeys({ limit: UI_OVERVIEW_ROWS }),
  ]);
  const gates = await Promise.all(personas.map((p) => store.economics.gates({ persona: p.id, now })));
  const throughput = store.ui === undefined ? [] : await store.ui.throughput({ since: now - 60 * 60_000, bucketMs: 60_000 });
  return {
    at: now,
    counts,
    running,
    agents,
    throughput: { since: now - 60 * 60_000, bucketMs: 60_000, buckets: throughput },
    goals,
    attention: {
      failed,
      blocked,
      parked,
      gated: gates.filter((g) => g.reasons.length > 0),
      pauses,
      breakers: breakers.filter((b) => b.state !== "closed"),
      budgets: budgets.filter((b) => b.exhausted),
      keys,
    },
    cost: { total, byPersona, byGoal: byGoal.slice(0, UI_COST_GOALS) },
  };
}

export async function listTasks(ctx: ApiContext, query: Query): Promise<Record<string, unknown>> {
  const limit = intParam(query, "limit", { min: 1, max: UI_PAGE_LIMIT_MAX }) ?? UI_PAGE_LIMIT_DEFAULT;
  const beforeId = intParam(query, "before", { min: 1 });
  const rootId = intParam(query, "root", { min: 1 });
  const status = statusesParam(query);
  const persona = query.get("persona") || undefined;
  // An unknown persona is refused (400 PERSONA_NOT_FOUND, field persona) as `roster ls --persona` refuses it, not answered with an empty page.
  if (persona !== undefined) await assertPersonaKnown(ctx.store, persona, "persona");
  const q = query.get("q") || undefined;
  const p: UiTaskPageParams = {
    limit: limit + 1,
    ...(beforeId !== undefined ? { beforeId } : {}),
    ...(rootId !== undefined ? { rootId } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(persona !== undefined ? { persona } : {}),
    ...(q !== undefined ? { query: q } : {}),
    ...(query.get("top") === "1" ? { topLevel: true } : {}),
  };
  const rows = await taskPage(ctx.store, p);
  const more = rows.length > limit;
  const tasks = more ? rows.slice(0, limit) : rows;
  // The total of a filter the counts table answers (state, persona, root); null when a title query narrows it.
  let total: number | null = null;
  if (q === undefined && p.topLevel !== true) {
    const counts = await ctx.store.tasks.counts(rootId !== undefined ? { rootId } : {});
    total = 0;
    for (const [name, byState] of Object.entries(counts)) {
      if (persona !== undefined && name !== persona) continue;
      for (const [state, n] of Object.entries(byState)) if (status === undefined || status.includes(state as TaskState)) total += n ?? 0;
    }
  }
  return { tasks, nextBefore: more ? tasks[tasks.length - 1]!.id : null, total };
}

export async function taskDetail(ctx: ApiContext, id: number): Promise<Record<string, unknown>> {
  const { store } = ctx;
  const task = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
  const [usage, requests, lineage, goalCost] = await Promise.all([
    store.economics.usageOf({ taskId: id }),
    store.humans.requests({ taskId: id }),
    store.tasks.lineage({ taskIds: [id] }),
    store.economics.total({ rootId: task.rootId }),
  ]);
  const running = task.status === "claimed" || task.status === "in_progress";
  const why = running ? null : await store.why.explain({ taskId: id, now: ctx.clock.now() });
  return { task, attempts: attemptsOf(task.events, usage), usage, cost: costOf(usage), goalCost, requests, why, lineage: lineage[0] ?? null };
}

export async function goalGraph(ctx: ApiContext, rootId: number): Promise<Record<string, unknown>> {
  const root = await ctx.store.tasks.get({ taskId: rootId, eventLimit: 1 });
  const goalId = root.rootId;
  const rows = await taskPage(ctx.store, { rootId: goalId, limit: UI_GRAPH_MAX_NODES + 1 });
  const truncated = rows.length > UI_GRAPH_MAX_NODES;
  const nodes = (truncated ? rows.slice(0, UI_GRAPH_MAX_NODES) : rows).sort((a, b) => a.id - b.id);
  const ids = new Set(nodes.map((n) => n.id));
  const edges: Array<{ from: number; to: number; kind: "dependency" | "parent" }> = [];
  for (const n of nodes) {
    if (n.parentId !== null && ids.has(n.parentId)) edges.push({ from: n.parentId, to: n.id, kind: "parent" });
    for (const d of n.dependsOn) if (ids.has(d) && d !== n.parentId) edges.push({ from: d, to: n.id, kind: "dependency" });
  }
  // The whole subtree's spend (children of planners included), as `roster cost --goal` reports it.
  const cost = await ctx.store.economics.total({ rootId: goalId });
  return { rootId: goalId, nodes, edges, truncated, cost };
}

/** One task's spend over its attempts: USD of the priced ones, all tokens (counted as the budgets count them), and how many were unpriced. */
function costOf(usage: UsageRecord[]): { costUsd: number; tokens: number; attempts: number; unpriced: number } {
  let costUsd = 0;
  let tokens = 0;
  let unpriced = 0;
  for (const u of usage) {
    if (u.costUsd === null) unpriced++;
    else costUsd += u.costUsd;
    tokens += totalTokens(u);
  }
  return { costUsd: Math.round(costUsd * 1e6) / 1e6, tokens, attempts: usage.length, unpriced };
}
