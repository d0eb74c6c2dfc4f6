/**
 * `roster why`: every reason a task is not running, from facts a store read
 * gathers (src/store/sqlite/why.ts, src/store/postgres/why.ts: each its own SQL for the
 * same rows, mapped to facts here by whyFacts). Pure: the same facts give the same
 * reasons, so every store words them alike.
 */
import { parseJson } from "./rows.js";
import type { HumanRequest, Json, TaskState, WhyReason, WhyReport } from "./types.js";

/** Most slot holders listed by `roster why`. */
export const WHY_HOLDERS_MAX = 100;

/** The rows a store reads for `roster why`, as both engines return them (JSON as text). */
export interface WhyRows {
  task: {
    id: number;
    title: string;
    persona_id: string;
    status: TaskState;
    run_at: number;
    ready_at: number | null;
    attempts: number;
    max_attempts: number;
    assigned_agent_id: string | null;
    lease_expires_at: number | null;
    finished_at: number | null;
    last_error: string | null;
  };
  unmet: Array<{ id: number; title: string; status: TaskState }>;
  /** Read only for a blocked task (empty otherwise). */
  blockers: Array<{ id: number; title: string; status: TaskState; last_error: string | null }>;
  cause: { type: string; attempt: number | null; at: number; data: string | null } | undefined;
  cancel: { agent_id: string | null; at: number; data: string | null } | undefined;
  /** external: SQLite's JSON true is 1, PostgreSQL's a boolean. */
  persona: { concurrency: number | null; kind: string | null; retired_at: number | null; external: number | boolean | null } | undefined;
  /** Up to WHY_HOLDERS_MAX rows, each with `held`, the count of every holder (a window count taken before the LIMIT). */
  holders: Array<{ task_id: number; assigned_agent_id: string | null; held: number | string }>;
  supervisors: Array<{ id: string; name: string }>;
  request: HumanRequest | null;
}

/** Whether a task waits on a person, so `roster why` reads its open request. */
export function isParked(status: TaskState): boolean {
  return status === "awaiting_approval" || status === "awaiting_input";
}

/** The facts behind `roster why`, from the rows a store read. */
export function whyFacts(rows: WhyRows): WhyFacts {
  const { task: row, cause, cancel, persona } = rows;
  return {
    task: {
      id: row.id,
      title: row.title,
      persona: row.persona_id,
      status: row.status,
      runAt: row.run_at,
      readyAt: row.ready_at,
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
      assignedAgentId: row.assigned_agent_id,
      leaseExpiresAt: row.lease_expires_at,
      finishedAt: row.finished_at,
      error: parseJson<{ code?: string; message?: string }>(row.last_error),
    },
    unmet: rows.unmet,
    blockers: rows.blockers.map((b) => ({ id: b.id, title: b.title, status: b.status, error: parseJson<{ code?: string; message?: string }>(b.last_error) })),
    runAtCause: cause === undefined ? null : { type: cause.type, attempt: cause.attempt, at: cause.at, data: parseJson<Record<string, Json>>(cause.data) },
    cancelled: cancel === undefined ? null : { by: cancel.agent_id, at: cancel.at, reason: parseJson<{ reason?: string | null }>(cancel.data)?.reason ?? null },
    persona: persona === undefined ? null : { concurrency: persona.concurrency ?? 1, retiredAt: persona.retired_at, adapterKind: persona.kind, external: persona.external === true || persona.external === 1 },
    holders: rows.holders.map((h) => ({ taskId: h.task_id, agentId: h.assigned_agent_id })),
    held: rows.holders.length === 0 ? 0 : Number(rows.holders[0]!.held),
    supervisors: rows.supervisors,
    request: rows.request,
  };
}

export interface WhyFacts {
  task: {
    id: number;
    title: string;
    persona: string;
    status: TaskState;
    runAt: number;
    readyAt: number | null;
    attempts: number;
    maxAttempts: number;
    assignedAgentId: string | null;
    leaseExpiresAt: number | null;
    finishedAt: number | null;
    error: { code?: string; message?: string } | null;
  };
  /** Direct dependencies not completed. */
  unmet: Array<{ id: number; title: string; status: TaskState }>;
  /** For a blocked task: the failed or cancelled tasks upstream that block it. */
  blockers: Array<{ id: number; title: string; status: TaskState; error: { code?: string; message?: string } | null }>;
  /** The latest event that set the task's current run_at (task:retrying, task:released, task:enqueued), if any. */
  runAtCause: { type: string; attempt: number | null; at: number; data: Record<string, Json> | null } | null;
  /** The latest task:cancelled event. */
  cancelled: { by: string | null; at: number; reason: string | null } | null;
  /** Null when no persona row exists. */
  persona: { concurrency: number; retiredAt: number | null; adapterKind: string | null; external: boolean } | null;
  /** Leased tasks of the persona (what holds its slots), by agent: the first WHY_HOLDERS_MAX by id. */
  holders: Array<{ taskId: number; agentId: string | null }>;
  /** How many of the persona's tasks are leased, all of them (`holders` lists at most WHY_HOLDERS_MAX). */
  held: number;
  /** Active supervisors (status active: their heartbeats kept the row alive). */
  supervisors: Array<{ id: string; name: string }>;
  /** The open approval or question, for a parked task. */
  request: HumanRequest | null;
}

/**
 * Reasons a gate outside the task's own state adds (budgets, breakers, provider
 * pauses, rate limits: the economics work). Each store passes its gates' reasons
 * in; codes reserved for them: budget_exhausted, breaker_open, provider_paused, rate_limited.
 */
export type WhyGateReasons = WhyReason[];

function reason(code: string, message: string, data?: { [key: string]: Json }): WhyReason {
  return data === undefined ? { code, message } : { code, message, data };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function brief(error: { code?: string; message?: string } | null): string {
  if (error === null) return "";
  return ` (${error.code ?? "ERROR"}: ${error.message ?? ""})`;
}

/**
 * How a failed task got there. A task failed by its bound of lost leases (reaped: LEASE_EXPIRED;
 * sessions that ended holding it: AGENT_LEFT; src/store/lost-leases.ts) counted none of those
 * attempts, so "after 0 of 1 attempts" would mislead.
 */
function failedAfter(t: { attempts: number; maxAttempts: number; error: { code?: string } | null }): string {
  const code = t.error?.code;
  if (code === "LEASE_EXPIRED" || code === "AGENT_LEFT") return `at its bound of lost leases (max(maxAttempts ${t.maxAttempts}, 3)), those attempts not counted`;
  return `after ${t.attempts} of ${t.maxAttempts} attempts`;
}

export function explainTask(facts: WhyFacts, now: number, gates: WhyGateReasons = []): WhyReport {
  const t = facts.task;
  const reasons: WhyReason[] = [];
  const persona = facts.persona;
  const human = persona?.adapterKind === "human";
  switch (t.status) {
    case "completed":
      reasons.push(reason("finished", `it completed${t.finishedAt === null ? "" : ` at ${iso(t.finishedAt)}`}; nothing left to run`, { finishedAt: t.finishedAt }));
      break;
    case "failed":
      reasons.push(
        reason("failed", `it failed ${failedAfter(t)}${brief(t.error)}; \`roster retry ${t.id}\` runs it again`, {
          attempts: t.attempts,
          error: t.error === null ? null : { code: t.error.code ?? null, message: t.error.message ?? null },
        }),
      );
      break;
    case "cancelled": {
      const c = facts.cancelled;
      reasons.push(
        reason(
          "cancelled",
          `it was cancelled${c?.by == null ? "" : ` by ${c.by}`}${c === null ? "" : ` at ${iso(c.at)}`}${c?.reason == null ? "" : `: ${c.reason}`}`,
          { by: c?.by ?? null, at: c?.at ?? null, reason: c?.reason ?? null },
        ),
      );
      break;
    }
    case "claimed":
    case "in_progress":
      reasons.push(
        reason("running", `it is running: attempt ${t.attempts} of ${t.maxAttempts}, held by ${t.assignedAgentId ?? "an agent"}`, {
          attempt: t.attempts,
          agentId: t.assignedAgentId,
          leaseExpiresAt: t.leaseExpiresAt,
        }),
      );
      break;
    case "awaiting_approval": {
      const r = facts.request;
      const deadline = r?.deadlineAt == null ? "" : `; at ${iso(r.deadlineAt)} it is ${r.defaultOutcome === "approve" ? "approved" : r.defaultOutcome === "reject" ? "rejected" : "still waiting"} by default`;
      reasons.push(
        reason("awaiting_approval", `it waits for a person's approval (\`roster approve ${t.id}\` or \`roster reject ${t.id} --reason …\`)${deadline}`, {
          askedAt: r?.askedAt ?? null,
          deadlineAt: r?.deadlineAt ?? null,
          default: r?.defaultOutcome ?? null,
        }),
      );
      break;
    }
    case "awaiting_input": {
      const r = facts.request;
      reasons.push(
        reason("awaiting_input", `attempt ${r?.attempt ?? t.attempts + 1} asked a question and waits for an answer (\`roster answer ${t.id} "…"\`): ${r?.question ?? "?"}`, {
          question: r?.question ?? null,
          askedBy: r?.askedBy ?? null,
          askedAt: r?.askedAt ?? null,
          attempt: r?.attempt ?? null,
        }),
      );
      break;
    }
    case "blocked":
      reasons.push(
        reason(
          "blocked_by",
          `it can never run as things stand: ${facts.blockers.map((b) => `task ${b.id} ${b.status}${brief(b.error)}`).join(", ") || "an upstream task failed or was cancelled"}; \`roster retry\` that task to unblock it`,
          { tasks: facts.blockers.map((b) => ({ id: b.id, title: b.title, status: b.status })) },
        ),
      );
      break;
    case "waiting":
    case "pending":
      break;
  }

  const open = t.status === "waiting" || t.status === "pending" || t.status === "blocked";
  if (open && facts.unmet.length > 0) {
    reasons.push(
      reason("dependencies_unmet", `${facts.unmet.length} dependenc${facts.unmet.length === 1 ? "y is" : "ies are"} not completed: ${facts.unmet.map((d) => `${d.id} (${d.status})`).join(", ")}`, {
        dependencies: facts.unmet.map((d) => ({ id: d.id, title: d.title, status: d.status })),
      }),
    );
  }
  if (t.status === "pending" && t.runAt > now) {
    const cause = facts.runAtCause;
    let why: string;
    let kind: string;
    if (cause?.type === "task:retrying") {
      kind = "backoff";
      const error = cause.data?.error as { code?: string; message?: string } | undefined;
      why = `backoff after attempt ${cause.attempt ?? "?"} failed${brief(error ?? null)}`;
    } else if (cause?.type === "task:released") {
      kind = "released";
      why = `released${typeof cause.data?.reason === "string" ? ` (${cause.data.reason})` : ""} with a delay`;
    } else {
      kind = "delay";
      why = "a delay given when it was enqueued";
    }
    reasons.push(
      reason("scheduled_later", `it is not due until ${iso(t.runAt)} (in ${Math.ceil((t.runAt - now) / 1000)} s): ${why}`, {
        runAt: t.runAt,
        inMs: t.runAt - now,
        cause: kind,
        attempt: cause?.type === "task:retrying" ? cause.attempt : null,
      }),
    );
  }

  const unfinished = t.status !== "completed" && t.status !== "failed" && t.status !== "cancelled";
  if (unfinished && persona === null) reasons.push(reason("persona_unknown", `its persona "${t.persona}" is not in the database`, { persona: t.persona }));
  if (unfinished && persona !== null && persona.retiredAt !== null) {
    reasons.push(
      reason("persona_retired", `its persona "${t.persona}" was retired at ${iso(persona.retiredAt)}; no supervisor serves it (\`roster personas unretire ${t.persona}\`)`, {
        persona: t.persona,
        retiredAt: persona.retiredAt,
      }),
    );
  }
  if (unfinished && persona?.external === true && (t.status === "pending" || t.status === "waiting")) {
    // No supervisor ever claims it (src/supervisor/producer.ts): whether one runs does not matter.
    reasons.push(reason("external_persona", `its persona "${t.persona}" is external: only MCP agents claim its tasks (claim_task), no supervisor runs them`, { persona: t.persona }));
  } else if (unfinished && !human && persona !== null && (t.status === "pending" || t.status === "waiting") && facts.supervisors.length === 0) {
    reasons.push(reason("no_supervisor", "no supervisor is running on this database (`roster start`)", { supervisors: 0 }));
  }
  const ready = t.status === "pending" && t.runAt <= now;
  if (ready && persona !== null) {
    // Concurrency is held by the store across every claimant (rule 15): the persona is full when
    // that many of its tasks are leased, by supervisors and MCP agents alike.
    if (facts.held >= persona.concurrency) {
      const more = facts.held - facts.holders.length;
      reasons.push(
        reason(
          "persona_at_limit",
          `persona "${t.persona}" is at its concurrency (${persona.concurrency} at once, across every supervisor and agent); the slots are held by ${facts.holders.map((h) => `task ${h.taskId}`).join(", ")}${more > 0 ? ` and ${more} more` : ""}`,
          { concurrency: persona.concurrency, held: facts.held, holders: facts.holders.map((h) => ({ taskId: h.taskId, agentId: h.agentId })) },
        ),
      );
    }
  }
  reasons.push(...gates);
  if (ready && reasons.length === 0) {
    reasons.push(
      reason("ready", `it is ready${t.readyAt === null ? "" : ` since ${iso(t.readyAt)}`} and nothing holds it back: a supervisor serving "${t.persona}" should claim it within a poll`, {
        readyAt: t.readyAt,
      }),
    );
  }
  return { taskId: t.id, title: t.title, persona: t.persona, status: t.status, at: now, reasons };
}
