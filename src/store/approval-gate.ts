/**
 * The approval gate, decided once for every engine (docs/ARCHITECTURE.md, "Task states"): a task
 * of a persona whose adapter kind is `human` that becomes ready (`pending`) parks in
 * `awaiting_approval`, with a request for a person, instead of entering the claim index.
 *
 * Each store calls it from the few writes that make a task pending — enqueue, a dependency
 * completing (or approved), a retry with backoff, a release, `roster retry`, an answer — in that
 * write's transaction, right after the write and before its own event. It was a pair of
 * triggers on task_status (migrations/0003_humans.sql, migrations/postgres/0004_humans.sql),
 * dropped by migrations/0008_human_gate_in_code.sql and migrations/postgres/0006: the update
 * trigger's body wrote task_status itself, which made SQLite pay about 30–45 µs on every
 * one-row status UPDATE, a claim or a completion included, even when its WHEN was false
 * (bench/RESULTS.md, history).
 */

import { z } from "zod";

/**
 * An approval's deadline and its default outcome, checked here, once, wherever they are given: a
 * human persona's adapter (src/personas/schema.ts: PERSONA_INVALID) and a task's `payload.approval`
 * (src/store/input.ts, at every enqueue: VALIDATION). A deadline must lie ahead and a default must
 * be one this gate applies, or the task would be decided at once, or wait forever, without a word.
 */
export const approvalSettingsFields = {
  /** After this long awaiting approval, `default` applies by itself (ms). */
  deadlineMs: z.number().int().min(1).optional(),
  default: z.enum(["approve", "reject"]).optional(),
};

/** A task payload's `approval` (the rest of the payload is the task's own): its two settings checked, other keys left alone. */
export const payloadApprovalSchema = z.object(approvalSettingsFields);

/** The adapter kind whose tasks park for a person. */
export const HUMAN_ADAPTER_KIND = "human";

/** What a person is asked when a task parks for approval. */
export interface ApprovalRequest {
  /** The task's title, and its description after a blank line when it has one (a plan in full). */
  question: string;
  /** When `defaultOutcome` applies by itself (epoch ms), or null: a person must decide. */
  deadlineAt: number | null;
  defaultOutcome: "approve" | "reject" | null;
}

/** A task that just became pending and may park, as the stores read it (payload and config as stored JSON text). */
export interface GateCandidate {
  title: string;
  description: string;
  payload: string | null;
  /** The persona's stored config (JSON text). */
  config: string;
}

function objectAt(value: unknown, key: string): Record<string, unknown> | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const inner = (value as Record<string, unknown>)[key];
  return inner !== null && typeof inner === "object" && !Array.isArray(inner) ? (inner as Record<string, unknown>) : undefined;
}

/** Whether a persona config (parsed) makes its tasks park for approval. */
export function isHumanConfig(config: unknown): boolean {
  return objectAt(config, "adapter")?.["kind"] === HUMAN_ADAPTER_KIND;
}

/** Whether a persona's stored config (JSON text) makes its tasks park for approval. */
export function isHumanConfigJson(config: string | null | undefined): boolean {
  if (config === null || config === undefined || !config.includes(HUMAN_ADAPTER_KIND)) return false;
  return isHumanConfig(JSON.parse(config));
}

function deadlineMs(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? Math.round(value) : null;
}

function outcome(value: unknown): "approve" | "reject" | null {
  return value === "approve" || value === "reject" ? value : null;
}

/**
 * The request of a task parking now: the deadline and default come from the task's payload
 * (`approval.deadlineMs`, `approval.default`) or else from its persona's adapter (`deadlineMs`,
 * `default`). Both are checked at enqueue (approvalSettingsFields); a stored value of the wrong
 * type (written before that check) is passed over here, as if absent, rather than failing the
 * write that readies the task (a dependency's completion, say).
 */
export function approvalRequest(task: GateCandidate, now: number): ApprovalRequest {
  const payload = objectAt(task.payload === null ? null : (JSON.parse(task.payload) as unknown), "approval");
  const adapter = objectAt(JSON.parse(task.config) as unknown, "adapter");
  const after = deadlineMs(payload?.["deadlineMs"]) ?? deadlineMs(adapter?.["deadlineMs"]);
  return {
    question: task.description === "" ? task.title : `${task.title}\n\n${task.description}`,
    deadlineAt: after === null ? null : now + after,
    defaultOutcome: outcome(payload?.["default"]) ?? outcome(adapter?.["default"]),
  };
}

/** The data of a parked task's `approval:requested` event. */
export function approvalRequestedData(requestId: number, request: ApprovalRequest): { requestId: number; deadlineAt: number | null; default: string | null } {
  return { requestId, deadlineAt: request.deadlineAt, default: request.defaultOutcome };
}

/**
 * Of tasks that just became pending, the personas to look at: each distinct persona once, so
 * an engine asks for a persona's kind once per write, and usually finds no human persona.
 */
export function personasOf(tasks: ReadonlyArray<{ persona: string }>): string[] {
  if (tasks.length === 1) return [tasks[0]!.persona];
  return [...new Set(tasks.map((t) => t.persona))];
}
