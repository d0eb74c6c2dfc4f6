import { z } from "zod";
import { RosterError } from "../errors.js";
import { BACKOFF_KINDS } from "../policy/retry.js";
import { payloadApprovalSchema } from "./approval-gate.js";
import type { Json, TaskInput } from "./types.js";

/**
 * The task and plan shapes every boundary accepts (store, CLI plan files, MCP
 * create_tasks). Validation happens here, once, before anything is written.
 */
export const PRIORITY_MIN = -1000;
export const PRIORITY_MAX = 1000;
export const TITLE_MAX = 500;
export const DESCRIPTION_MAX = 64 * 1024;
export const MAX_PAYLOAD_BYTES_DEFAULT = 1024 * 1024;
export const BATCH_MAX = 100_000;

const REF_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

export const taskPolicyOverrideSchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    backoff: z.enum(BACKOFF_KINDS).optional(),
    baseMs: z.number().int().min(0).optional(),
    maxMs: z.number().int().min(0).optional(),
    jitter: z.number().min(0).max(1).optional(),
    timeoutMs: z.number().int().min(1).optional(),
    /** The task's budget over all its attempts, in USD and in tokens (docs/economics.md). */
    maxCostUsd: z.number().min(0).optional(),
    maxTokens: z.number().int().min(0).optional(),
    /** Tasks sharing a key never run more than concurrencyLimit (default 1) at once, across processes (docs/economics.md). */
    concurrencyKey: z.string().min(1).max(200).optional(),
    concurrencyLimit: z.number().int().min(1).max(10_000).optional(),
  })
  .strict()
  // Refused rather than adjusted (resolveTaskPolicy would raise maxMs to baseMs without a word):
  // a plan that says both means one of them is a mistake.
  .superRefine((policy, ctx) => {
    if (policy.baseMs !== undefined && policy.maxMs !== undefined && policy.baseMs > policy.maxMs) {
      ctx.addIssue({ code: "custom", path: ["baseMs"], message: `must not exceed policy.maxMs (${policy.maxMs}), got ${policy.baseMs}` });
    }
  });

export const taskInputSchema = z
  .object({
    ref: z.string().regex(REF_PATTERN, "must be 1-100 characters of letters, digits, _ . : -").optional(),
    persona: z.string().min(1, "must not be empty"),
    title: z.string().trim().min(1, "must not be empty").max(TITLE_MAX),
    description: z.string().max(DESCRIPTION_MAX).optional(),
    dependsOn: z
      .array(z.union([z.string().regex(REF_PATTERN, "must be a ref of this batch or a task id"), z.number().int().positive()]))
      .max(10_000)
      .optional(),
    priority: z.number().int().min(PRIORITY_MIN).max(PRIORITY_MAX).optional(),
    payload: z.unknown().optional(),
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    policy: taskPolicyOverrideSchema.optional(),
    delayMs: z.number().int().min(0).max(365 * 24 * 3_600_000).optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
  })
  .strict();

export const planSchema = z.object({ tasks: z.array(taskInputSchema).min(1, "a plan needs at least one task").max(BATCH_MAX) }).strict();

/** Formats zod issues as "where: what" lines, every problem listed. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: string): string {
  return issues
    .map((issue) => {
      const path = issue.path.map((part) => (typeof part === "number" ? `[${part}]` : `.${String(part)}`)).join("");
      // zod's "Invalid key in record" keeps the key's own rule in a nested issue: say that instead.
      const nested = issue.code === "invalid_key" ? issue.issues[0]?.message : undefined;
      return `${prefix}${path}: ${nested === undefined ? issue.message : `key "${String(issue.path.at(-1))}": ${nested}`}`;
    })
    .join("; ");
}

function taskLabel(input: unknown, index: number): string {
  const ref = typeof input === "object" && input !== null ? (input as { ref?: unknown }).ref : undefined;
  return typeof ref === "string" && loneSurrogateIndex(ref) === -1 ? `tasks[${index}] (ref "${ref}")` : `tasks[${index}]`;
}

/**
 * The index of the first lone surrogate in `text` (a UTF-16 half without its
 * pair: not well-formed Unicode), or -1. Such a string cannot be stored as it
 * is: SQLite's TEXT is UTF-8, and the driver turns the half into U+FFFD.
 */
export function loneSurrogateIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

const illFormed = (index: number) => `not well-formed Unicode (lone surrogate at index ${index})`;

/**
 * Every string in `value` (object keys too, at any depth) must be well-formed
 * Unicode; the first that is not is refused as VALIDATION naming where it is
 * (`tasks[0].payload.files[1]`) and the index of the lone half. A key is shown
 * JSON-escaped, so the message itself stays printable.
 */
export function assertWellFormed(value: unknown, where: string): void {
  const problem = illFormedIn(value, where);
  if (problem !== null) throw new RosterError("VALIDATION", problem, { details: { field: where } });
}

/** assertWellFormed's message for the first ill-formed string in `value`, or null: for callers that answer instead of throwing (MCP tools/call). */
export function illFormedIn(value: unknown, where: string): string | null {
  return findIllFormed(value, where, new Set());
}

/** A zod string that must be well-formed Unicode, for the schemas of other ways in (MCP arguments). */
export function wellFormedString() {
  return z.string().superRefine((text, ctx) => {
    const index = loneSurrogateIndex(text);
    if (index !== -1) ctx.addIssue({ code: "custom", message: illFormed(index) });
  });
}

function findIllFormed(value: unknown, where: string, seen: Set<unknown>): string | null {
  if (typeof value === "string") {
    const index = loneSurrogateIndex(value);
    return index === -1 ? null : `${where}: ${illFormed(index)}`;
  }
  if (typeof value !== "object" || value === null || seen.has(value)) return null;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = findIllFormed(value[i], `${where}[${i}]`, seen);
      if (problem !== null) return problem;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const index = loneSurrogateIndex(key);
    if (index !== -1) return `${where}: key ${JSON.stringify(key)}: ${illFormed(index)}`;
    const problem = findIllFormed(item, `${where}.${key}`, seen);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * Checks a payload or result: JSON-serialisable (no functions, cycles, BigInt,
 * non-finite numbers) and within the size limit. Returns its JSON text.
 */
export function serializeJson(value: unknown, where: string, maxBytes: number): string {
  const problem = findNonJson(value, where, new Set());
  if (problem !== null) {
    throw new RosterError("VALIDATION", `${problem} is not JSON-serialisable`, { details: { field: where } });
  }
  return withinSize(JSON.stringify(value), where, maxBytes);
}

/** JSON text within the size limit, else PAYLOAD_TOO_LARGE naming `where`. */
function withinSize(text: string, where: string, maxBytes: number): string {
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: short text needs no count.
  const bytes = text.length * 3 <= maxBytes ? 0 : Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) {
    throw new RosterError("PAYLOAD_TOO_LARGE", `${where} is ${bytes} bytes of JSON, over the limit of ${maxBytes}`, {
      details: { field: where, bytes, maxBytes },
    });
  }
  return text;
}

/**
 * A completion's result as it is stored: its JSON text, made once on the way from the
 * adapter to the database (issue 14). `resultJson` is text its producer already made with
 * JSON.stringify (the pool's worker serialises a result to check its size, so it sends the
 * text): taken as it is, its size checked. A `result` value is checked and serialised here.
 * Null: no result. Given both, VALIDATION (a fact is given once).
 */
export function completionJson(params: { result?: unknown; resultJson?: string }, maxBytes: number): string | null {
  if (params.resultJson === undefined) return params.result === undefined ? null : serializeJson(params.result, "result", maxBytes);
  if (params.result !== undefined) throw new RosterError("VALIDATION", "result: give result or resultJson, not both", { details: { field: "result" } });
  return withinSize(params.resultJson, "result", maxBytes);
}


function findNonJson(value: unknown, where: string, seen: Set<unknown>): string | null {
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `${where} (${String(value)})`;
    case "object": {
      if (value === null) return null;
      if (seen.has(value)) return `${where} (a circular reference)`;
      seen.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = findNonJson(value[i], `${where}[${i}]`, seen);
          if (problem !== null) return problem;
        }
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) return `${where} (an instance of ${(value as object).constructor?.name ?? "a class"})`;
        for (const [key, item] of Object.entries(value)) {
          const problem = findNonJson(item, `${where}.${key}`, seen);
          if (problem !== null) return problem;
        }
      }
      seen.delete(value);
      return null;
    }
    default:
      return `${where} (a ${typeof value})`;
  }
}

/**
 * A payload's `approval.deadlineMs` and `approval.default` (the approval gate's per-task settings,
 * src/store/approval-gate.ts) are refused when wrong, as in a persona file, rather than passed over
 * when the task parks: a task whose default was dropped would wait forever, one whose deadline is
 * not ahead would be decided at once.
 */
function checkPayloadApproval(payload: unknown, label: string, index: number): void {
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) return;
  // Only an object is read by the gate (approvalRequest); anything else under the key is the task's own.
  const approval = (payload as Record<string, unknown>)["approval"];
  if (approval === null || typeof approval !== "object" || Array.isArray(approval)) return;
  const parsed = payloadApprovalSchema.safeParse(approval);
  if (parsed.success) return;
  const first = parsed.error.issues[0];
  throw new RosterError("VALIDATION", formatIssues(parsed.error.issues, `${label}.payload.approval`), {
    details: { index, field: ["payload", "approval", ...(first?.path ?? []).map(String)].join(".") },
  });
}

export interface ValidatedTask extends TaskInput {
  payloadJson: string | null;
}

/**
 * Validates a batch before anything is written: shape, refs unique, dependencies
 * on refs that exist in the batch, no self-dependency, payload serialisable and
 * within limits. Persona existence, existing-id dependencies and cycles need the
 * database and are checked by the store in the same transaction.
 */
export function validateBatch(tasks: unknown, maxPayloadBytes: number): ValidatedTask[] {
  if (!Array.isArray(tasks)) throw new RosterError("VALIDATION", "tasks: must be an array of tasks", { details: { field: "tasks" } });
  if (tasks.length === 0) throw new RosterError("VALIDATION", "tasks: must hold at least one task", { details: { field: "tasks" } });
  if (tasks.length > BATCH_MAX) throw new RosterError("VALIDATION", `tasks: at most ${BATCH_MAX} tasks per batch`, { details: { field: "tasks" } });
  const out: ValidatedTask[] = [];
  const refs = new Map<string, number>();
  const keys = new Map<string, number>();
  tasks.forEach((raw, index) => {
    const label = taskLabel(raw, index);
    // First, so a string that would be stored altered is named as that, whatever else is wrong with it.
    const problem = findIllFormed(raw, label, new Set());
    if (problem !== null) throw new RosterError("VALIDATION", problem, { details: { index, field: "unicode" } });
    const parsed = taskInputSchema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw new RosterError("VALIDATION", formatIssues(parsed.error.issues, label), {
        details: { index, field: first?.path.join(".") ?? "" },
      });
    }
    const task = parsed.data as TaskInput;
    // One fact, one place (docs/ARCHITECTURE.md): the top-level maxAttempts is the short form of
    // policy.maxAttempts, so a task giving both (which one wins?) is refused, not silently merged.
    // (Checked here, not as a refinement, so the MCP tools can extend the schema.)
    if (task.maxAttempts !== undefined && task.policy?.maxAttempts !== undefined) {
      throw new RosterError("VALIDATION", `${label}.maxAttempts: is given twice, here (${task.maxAttempts}) and as policy.maxAttempts (${task.policy.maxAttempts}); give it once`, {
        details: { index, field: "maxAttempts" },
      });
    }
    checkPayloadApproval(task.payload, label, index);
    if (task.ref !== undefined) {
      if (refs.has(task.ref)) {
        throw new RosterError("DUPLICATE_REF", `${label}.ref: "${task.ref}" is already used by tasks[${refs.get(task.ref)}]`, {
          details: { index, field: "ref", ref: task.ref },
        });
      }
      refs.set(task.ref, index);
    }
    if (task.idempotencyKey !== undefined) {
      const other = keys.get(task.idempotencyKey);
      if (other !== undefined) {
        throw new RosterError("VALIDATION", `${label}.idempotencyKey: "${task.idempotencyKey}" is already used by tasks[${other}] of this batch`, {
          details: { index, field: "idempotencyKey" },
        });
      }
      keys.set(task.idempotencyKey, index);
    }
    const payloadJson = task.payload === undefined ? null : serializeJson(task.payload, `${label}.payload`, maxPayloadBytes);
    out.push({ ...task, payload: task.payload as Json | undefined, payloadJson });
  });
  out.forEach((task, index) => {
    const label = taskLabel(task, index);
    const seen = new Set<string | number>();
    for (const dep of task.dependsOn ?? []) {
      if (seen.has(dep)) throw new RosterError("VALIDATION", `${label}.dependsOn: ${JSON.stringify(dep)} is listed twice`, { details: { index, field: "dependsOn" } });
      seen.add(dep);
      if (typeof dep === "string") {
        if (dep === task.ref) {
          throw new RosterError("SELF_DEPENDENCY", `${label}.dependsOn: a task cannot depend on itself ("${dep}")`, { details: { index, field: "dependsOn", ref: dep } });
        }
        if (!refs.has(dep)) {
          throw new RosterError("DEPENDENCY_NOT_FOUND", `${label}.dependsOn: no task in this batch has ref "${dep}"`, { details: { index, field: "dependsOn", ref: dep } });
        }
      }
    }
  });
  const cycle = findRefCycle(out);
  if (cycle !== null) {
    const index = out.findIndex((task) => task.ref === cycle[0]);
    throw new RosterError("DEPENDENCY_CYCLE", `${taskLabel(out[index], index)}.dependsOn: dependency cycle ${cycle.join(" -> ")}`, {
      details: { index, field: "dependsOn", cycle },
    });
  }
  return out;
}

/** A cycle among batch refs, as a path that starts and ends on the same ref. */
function findRefCycle(tasks: ValidatedTask[]): string[] | null {
  const edges = new Map<string, string[]>();
  for (const task of tasks) {
    if (task.ref === undefined) continue;
    edges.set(task.ref, (task.dependsOn ?? []).filter((d): d is string => typeof d === "string"));
  }
  const state = new Map<string, 1 | 2>(); // 1 on the stack, 2 done
  for (const start of edges.keys()) {
    if (state.has(start)) continue;
    const stack: Array<{ ref: string; next: number }> = [{ ref: start, next: 0 }];
    state.set(start, 1);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const deps = edges.get(frame.ref) ?? [];
      if (frame.next >= deps.length) {
        state.set(frame.ref, 2);
        stack.pop();
        continue;
      }
      const dep = deps[frame.next++]!;
      const seen = state.get(dep);
      if (seen === 1) {
        const from = stack.findIndex((f) => f.ref === dep);
        return [...stack.slice(from).map((f) => f.ref), dep];
      }
      if (seen === undefined) {
        state.set(dep, 1);
        stack.push({ ref: dep, next: 0 });
      }
    }
  }
  return null;
}
