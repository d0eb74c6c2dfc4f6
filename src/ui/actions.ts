/**
 * The dashboard's actions: the CLI's (retry, cancel, approve, reject, answer, add a task,
 * add a plan), each recorded in the audit trail as the dashboard's user (ApiContext.by).
 * Every input is checked before anything is written; an error names the field.
 */
import { parsePlanText } from "../cli/plan-file.js";
import { formatIssues, planSchema, type TaskInput } from "../store/index.js";
import { UI_TEXT_MAX_CHARS, UiError, toUiError, type ApiContext } from "./api.js";

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
