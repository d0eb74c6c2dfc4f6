/**
 * The dashboard's JSON API over a Store (src/ui/server.ts routes to it). Reads are
 * shaped for one page each; actions are the CLI's (retry, cancel, approve, reject,
 * answer, add a task, add a plan), each recorded in the audit trail as the
 * dashboard's user. Every input is checked before anything is written; an error
 * names the field (`UiError.field`) and carries the store's code.
 */
import type { Clock } from "../clock.js";
import { RosterError, coerceError, type ErrorCode } from "../errors.js";
import { parsePlanText } from "../cli/plan-file.js";
import {
  TASK_STATES,
  formatIssues,
  planSchema,
  type Json,
  type Store,
  type TaskEvent,
  type TaskInput,
  type TaskState,
  type UiTaskPageParams,
  type UiTaskRow,
  type UsageRecord,
} from "../store/index.js";

export const UI_PAGE_LIMIT_DEFAULT = 50;
export const UI_PAGE_LIMIT_MAX = 500;
/** Largest goal drawn as a graph; a bigger subtree is cut (the answer says so). */
export const UI_GRAPH_MAX_NODES = 2_000;
export const UI_TEXT_MAX_CHARS = 100_000;

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
  const [counts, running, agents, parked, failed, blocked, personas, total, byPersona, pauses, breakers, budgets, goals] = await Promise.all([
    store.tasks.counts(),
    store.tasks.running({ limit: 100 }),
    store.agents.list({ includeInactive: false }),
    store.humans.listParked({ limit: 50 }),
    taskPage(store, { status: "failed", limit: 20 }),
    taskPage(store, { status: "blocked", limit: 20 }),
    store.personas.list(),
    store.economics.total(),
    store.economics.cost({ by: "persona" }),
    store.economics.pauses({ now }),
    store.economics.breakers(),
    store.economics.budgets({ now }),
    taskPage(store, { topLevel: true, limit: 10 }),
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
    },
    cost: { total, byPersona },
  };
}

export async function listTasks(ctx: ApiContext, query: Query): Promise<Record<string, unknown>> {
  const limit = intParam(query, "limit", { min: 1, max: UI_PAGE_LIMIT_MAX }) ?? UI_PAGE_LIMIT_DEFAULT;
  const beforeId = intParam(query, "before", { min: 1 });
  const rootId = intParam(query, "root", { min: 1 });
  const status = statusesParam(query);
  const persona = query.get("persona") || undefined;
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

interface Attempt {
  attempt: number;
  agentId: string | null;
  claimedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  outcome: string | null;
  error: Json | null;
  usage: UsageRecord | null;
}

const OUTCOMES: Record<string, string> = {
  "task:completed": "completed",
  "task:failed": "failed",
  "task:retrying": "retrying",
  "task:released": "released",
  "lease:expired": "expired",
  "task:cancelled": "cancelled",
  "task:parked": "parked",
};

/**
 * Every attempt, from the audit trail (claims, starts, outcomes) joined with its recorded
 * usage. A retry starts the count again at 1 (`task:retried`), so attempts are told apart by
 * their claim, not their number alone; a usage record goes to the latest attempt of its
 * number claimed before it was recorded.
 */
export function attemptsOf(events: TaskEvent[], usage: UsageRecord[]): Attempt[] {
  const all: Attempt[] = [];
  let current = new Map<number, Attempt>();
  const get = (n: number): Attempt => {
    let a = current.get(n);
    if (a === undefined) {
      a = { attempt: n, agentId: null, claimedAt: null, startedAt: null, endedAt: null, outcome: null, error: null, usage: null };
      current.set(n, a);
      all.push(a);
    }
    return a;
  };
  for (const e of events) {
    if (e.type === "task:retried") {
      current = new Map();
      continue;
    }
    if (e.attempt === null || e.attempt < 1) continue;
    if (e.type === "task:claimed") {
      // A claim of a number already seen (after a retry or a reap) is a new attempt.
      if (current.get(e.attempt)?.claimedAt != null) current.delete(e.attempt);
      const a = get(e.attempt);
      a.claimedAt = e.at;
      a.agentId = e.agentId;
      continue;
    }
    const a = get(e.attempt);
    if (e.type === "task:started") a.startedAt = e.at;
    else if (OUTCOMES[e.type] !== undefined || e.type.startsWith("lease:") || e.type === "task:input-requested") {
      a.outcome = OUTCOMES[e.type] ?? e.type.replace(/^\w+:/, "");
      a.endedAt = e.at;
      const data = e.data as { error?: Json } | null;
      if (data !== null && typeof data === "object" && !Array.isArray(data) && data.error !== undefined) a.error = data.error;
      a.agentId ??= e.agentId;
    }
  }
  for (const u of usage) {
    const match = all.filter((a) => a.attempt === u.attempt && (a.claimedAt === null || a.claimedAt <= u.at)).at(-1);
    if (match !== undefined) match.usage = u;
  }
  return all;
}

export async function taskDetail(ctx: ApiContext, id: number): Promise<Record<string, unknown>> {
  const { store } = ctx;
  const task = await store.tasks.get({ taskId: id, eventLimit: 1_000 });
  const [usage, requests, lineage] = await Promise.all([store.economics.usageOf({ taskId: id }), store.humans.requests({ taskId: id }), store.tasks.lineage({ taskIds: [id] })]);
  const running = task.status === "claimed" || task.status === "in_progress";
  const why = running ? null : await store.why.explain({ taskId: id, now: ctx.clock.now() });
  return { task, attempts: attemptsOf(task.events, usage), usage, requests, why, lineage: lineage[0] ?? null };
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
  return { rootId: goalId, nodes, edges, truncated };
}

// ---- actions -----------------------------------------------------------------------------

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new UiError(400, "VALIDATION", "body: must be a JSON object", "body");
  return body as Record<string, unknown>;
}

function optionalText(body: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw new UiError(400, "VALIDATION", `${field}: required`, field);
    return undefined;
  }
  if (typeof value !== "string") throw new UiError(400, "VALIDATION", `${field}: must be a string`, field);
  if (required && value.trim() === "") throw new UiError(400, "VALIDATION", `${field}: must not be empty`, field);
  if (value.length > UI_TEXT_MAX_CHARS) throw new UiError(400, "VALIDATION", `${field}: longer than ${UI_TEXT_MAX_CHARS} characters`, field);
  return value;
}

function onlyFields(body: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new UiError(400, "VALIDATION", `${key}: unknown field (allowed: ${allowed.join(", ") || "none"})`, key);
  }
}

export type TaskAction = "retry" | "cancel" | "approve" | "reject" | "answer";
export const TASK_ACTIONS: readonly TaskAction[] = ["retry", "cancel", "approve", "reject", "answer"];

export async function taskAction(ctx: ApiContext, id: number, action: TaskAction, rawBody: unknown): Promise<Record<string, unknown>> {
  const body = asObject(rawBody ?? {});
  const now = ctx.clock.now();
  const { store, by } = ctx;
  switch (action) {
    case "retry":
      onlyFields(body, []);
      return { ok: true, ...(await store.tasks.retry({ taskId: id, by, now })) };
    case "cancel": {
      onlyFields(body, ["reason"]);
      const reason = optionalText(body, "reason", false);
      return { ok: true, ...(await store.tasks.cancel({ taskId: id, by, now, ...(reason !== undefined ? { reason } : {}) })) };
    }
    case "approve": {
      onlyFields(body, ["note"]);
      const note = optionalText(body, "note", false);
      return { ok: true, ...(await store.humans.approve({ taskId: id, by, now, ...(note !== undefined ? { note } : {}) })) };
    }
    case "reject": {
      onlyFields(body, ["reason"]);
      const reason = optionalText(body, "reason", true)!;
      return { ok: true, ...(await store.humans.reject({ taskId: id, reason, by, now })) };
    }
    case "answer": {
      onlyFields(body, ["answer"]);
      const answer = optionalText(body, "answer", true)!;
      return { ok: true, ...(await store.humans.answer({ taskId: id, answer, by, now })) };
    }
  }
}

/** One task (the fields of a plan file's task), checked with the plan schema `roster add --file` uses. */
export async function addTask(ctx: ApiContext, rawBody: unknown): Promise<Record<string, unknown>> {
  const body = asObject(rawBody);
  const parsed = planSchema.safeParse({ tasks: [body] });
  if (!parsed.success) {
    const message = formatIssues(parsed.error.issues, "task").replace(/tasks\[0\]\.?/g, "");
    const path = parsed.error.issues[0]?.path.slice(2).join(".") || "task";
    throw new UiError(400, "VALIDATION", message, path);
  }
  const tasks = parsed.data.tasks as TaskInput[];
  const result = await ctx.store.tasks.enqueue({ tasks, createdBy: ctx.by, now: ctx.clock.now() });
  return { ok: true, id: result.ids[0], ids: result.ids };
}

/** A plan as YAML or JSON text, parsed and checked exactly as `roster add --file` does (src/cli/plan-file.ts), enqueued atomically. */
export async function addPlan(ctx: ApiContext, rawBody: unknown): Promise<Record<string, unknown>> {
  const body = asObject(rawBody);
  onlyFields(body, ["format", "text"]);
  const format = body.format;
  if (format !== "yaml" && format !== "json") throw new UiError(400, "VALIDATION", `format: must be "yaml" or "json"`, "format");
  const text = optionalText(body, "text", true)!;
  let tasks: TaskInput[];
  try {
    tasks = parsePlanText("plan", text, format);
  } catch (error) {
    // A syntax error is about the text; a schema error names the task's field (plan.tasks[0].title → tasks[0].title).
    const e = toUiError(error);
    throw new UiError(e.status, e.code, e.message, /plan\.(tasks\[\d+\][\w.[\]]*)/.exec(e.message)?.[1] ?? "text");
  }
  const result = await ctx.store.tasks.enqueue({ tasks, createdBy: ctx.by, now: ctx.clock.now() });
  return { ok: true, ids: result.ids, refs: result.refs };
}

